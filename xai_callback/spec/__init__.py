"""Explanation spec: typed declaration of Vertex AI explanation metadata and
parameters, their JSON (Vertex v1 and legacy), and their checks against the
exported signatures.

`spec.methods` (the methods, their settings and limits: the registry) needs
no TensorFlow; the names below are imported on first use (PEP 562), because
the checks against signatures (`spec.crosscheck`) read TensorFlow specs.
"""

from xai_callback.imports import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _PUBLIC.items()},
                                    globals())
