"""xai-callback: train with Keras, get an explanation-ready SavedModel.

`XaiExportCallback` goes into `model.fit(callbacks=[...])`; the engine
(`export_explainable_model`), the explanation spec, `validate` and `explain`
work without `fit`.
"""

from xai_callback._version import __version__
from xai_callback.errors import (
    DestinationError,
    ExportFailedError,
    ExportVerificationError,
    SignatureError,
    SpecError,
)
from xai_callback.export.engine import ExplainableExporter, ExportResult, export_explainable_model
from xai_callback.export.receivers import parsing_receiver, raw_receiver
from xai_callback.signatures.functions import SignatureFunction
from xai_callback.spec import (
    XRAI,
    ExplanationSpec,
    Feature,
    FeatureValueDomain,
    IntegratedGradients,
    Output,
    SampledShapley,
    SmoothGrad,
    Visualization,
)
from xai_callback.callbacks import XaiExportCallback
from xai_callback.callbacks.attribution_logger import AttributionLogger
from xai_callback.contract.validation import RuleResult, ValidationReport, validate

# After this import `xai_callback.explain` is the function; the subpackage stays
# importable by its full name (`from xai_callback.explain import Explainer`).
from xai_callback.explain import ExplainResponse, Explainer, explain  # noqa: E402

__all__ = [
    "__version__",
    "AttributionLogger",
    "DestinationError",
    "ExplainResponse",
    "ExplainableExporter",
    "Explainer",
    "ExplanationSpec",
    "Feature",
    "FeatureValueDomain",
    "IntegratedGradients",
    "Output",
    "SampledShapley",
    "SmoothGrad",
    "Visualization",
    "XRAI",
    "ExportFailedError",
    "ExportResult",
    "ExportVerificationError",
    "SignatureError",
    "SignatureFunction",
    "SpecError",
    "RuleResult",
    "ValidationReport",
    "XaiExportCallback",
    "explain",
    "export_explainable_model",
    "parsing_receiver",
    "raw_receiver",
    "validate",
]
