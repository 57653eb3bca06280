"""xai-callback: train with Keras, get an explanation-ready SavedModel.

`XaiExportCallback` goes into `model.fit(callbacks=[...])`; the engine
(`export_explainable_model`), the explanation spec, `validate` and `explain`
work without `fit`.

The public names are imported on first use (PEP 562), all at once as before:
`import xai_callback` alone (and so the `xai-callback` command line, which
lists its methods from `xai_callback.spec.methods`) does not import
TensorFlow; `xai_callback.XaiExportCallback` does.
"""

import importlib

from xai_callback._version import __version__

# Public name -> the module that defines it.
_PUBLIC = {
    "DestinationError": "xai_callback.errors",
    "ExplanationFailedError": "xai_callback.errors",
    "ExportFailedError": "xai_callback.errors",
    "ExportVerificationError": "xai_callback.errors",
    "SignatureError": "xai_callback.errors",
    "SpecError": "xai_callback.errors",
    "ExplainableExporter": "xai_callback.export.engine",
    "ExportResult": "xai_callback.export.result",
    "export_explainable_model": "xai_callback.export.engine",
    "parsing_receiver": "xai_callback.export.receivers",
    "raw_receiver": "xai_callback.export.receivers",
    "SignatureFunction": "xai_callback.signatures.functions",
    "XRAI": "xai_callback.spec",
    "ExplanationSpec": "xai_callback.spec",
    "Feature": "xai_callback.spec",
    "FeatureValueDomain": "xai_callback.spec",
    "IntegratedGradients": "xai_callback.spec",
    "Output": "xai_callback.spec",
    "SampledShapley": "xai_callback.spec",
    "SmoothGrad": "xai_callback.spec",
    "Visualization": "xai_callback.spec",
    "XaiExportCallback": "xai_callback.callbacks",
    "AttributionLogger": "xai_callback.callbacks.attribution_logger",
    "RuleResult": "xai_callback.contract.validation",
    "ValidationReport": "xai_callback.contract.validation",
    "validate": "xai_callback.contract.validation",
    # `xai_callback.explain` is the function; the subpackage stays importable
    # by its full name (`from xai_callback.explain import Explainer`) and is
    # callable as the function too.
    "ExplainResponse": "xai_callback.explain",
    "Explainer": "xai_callback.explain",
    "explain": "xai_callback.explain",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'xai_callback' has no attribute {name!r}")
    _load()
    return globals()[name]


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _load():
    """Binds every public name, importing their modules in the package's order.

    All at once, as the package once did eagerly: importing
    `xai_callback.explain` registers the rules of `validate` that run
    explanations, so `xai_callback.validate` always applies them.
    """
    for name, module in _PUBLIC.items():
        globals()[name] = getattr(importlib.import_module(module), name)
