"""Explanation spec: typed declaration of Vertex AI explanation metadata and
parameters, their JSON (Vertex v1 and legacy), and their checks against the
exported signatures."""

from xai_callback.spec.explanation_spec import ExplanationSpec
from xai_callback.spec.feature import Feature
from xai_callback.spec.legacy import to_legacy_metadata
from xai_callback.spec.methods import XRAI, AttributionMethod, IntegratedGradients, SampledShapley, SmoothGrad
from xai_callback.spec.output import Output
from xai_callback.spec.visualization import FeatureValueDomain, Visualization

__all__ = [
    "AttributionMethod",
    "ExplanationSpec",
    "Feature",
    "FeatureValueDomain",
    "IntegratedGradients",
    "Output",
    "SampledShapley",
    "SmoothGrad",
    "Visualization",
    "XRAI",
    "to_legacy_metadata",
]
