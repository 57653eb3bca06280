"""Explanation spec: typed declaration of Vertex AI explanation metadata and
parameters, their JSON (Vertex v1 and legacy), and their checks against the
exported signatures.

`spec.methods` (the methods, their settings and limits: the registry) needs
no TensorFlow; the names below are imported on first use (PEP 562), because
the checks against signatures (`spec.crosscheck`) read TensorFlow specs.
"""

import importlib

# Public name -> the module of this package that defines it.
_PUBLIC = {
    "AttributionMethod": "methods",
    "ExplanationSpec": "explanation_spec",
    "Feature": "feature",
    "FeatureValueDomain": "visualization",
    "IntegratedGradients": "methods",
    "Limits": "limits",
    "Output": "output",
    "SampledShapley": "methods",
    "SmoothGrad": "smoothgrad",
    "Visualization": "visualization",
    "XRAI": "methods",
    "to_legacy_metadata": "legacy",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'xai_callback.spec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
