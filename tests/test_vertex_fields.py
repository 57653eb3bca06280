"""Our Vertex v1 field lists against Google's own message definitions.

`validate` refuses unknown keys (a typo would otherwise be ignored), so a field
of the official `ExplanationMetadata` / `ExplanationParameters` messages that is
missing from our lists would make a valid export fail. The definitions come
from `google-cloud-aiplatform` (the `test` extra; never a runtime dependency).
"""

import pytest
from google.cloud.aiplatform_v1.types import explanation, explanation_metadata

from xai_callback.spec import enums
from xai_callback.spec.feature import Feature
from xai_callback.spec.metadata import METADATA_KEYS
from xai_callback.spec.methods import (
    BY_VERTEX_KEY,
    XRAI,
    Examples,
    IntegratedGradients,
    SampledShapley,
    SmoothGrad,
)
from xai_callback.spec.output import Output
from xai_callback.spec.parameters import PARAMETER_KEYS
from xai_callback.spec.visualization import FeatureValueDomain, Visualization

METADATA = explanation_metadata.ExplanationMetadata
INPUT = METADATA.InputMetadata


def json_fields(message):
    """The camelCase JSON names of a proto-plus message's fields."""
    return sorted(field.json_name for field in message.pb().DESCRIPTOR.fields)


OUR_FIELDS = {  # official message -> the JSON keys our checks accept
    "ExplanationMetadata": (METADATA, METADATA_KEYS),
    "InputMetadata": (INPUT, Feature.VERTEX_FIELDS.values()),
    "FeatureValueDomain": (INPUT.FeatureValueDomain, FeatureValueDomain.VERTEX_FIELDS.values()),
    "Visualization": (INPUT.Visualization, Visualization.VERTEX_FIELDS.values()),
    "OutputMetadata": (METADATA.OutputMetadata, Output.VERTEX_FIELDS.values()),
    "ExplanationParameters": (explanation.ExplanationParameters, PARAMETER_KEYS),
    "IntegratedGradientsAttribution": (explanation.IntegratedGradientsAttribution,
                                       IntegratedGradients.VERTEX_KEYS),
    "XraiAttribution": (explanation.XraiAttribution, XRAI.VERTEX_KEYS),
    "SampledShapleyAttribution": (explanation.SampledShapleyAttribution,
                                  SampledShapley.VERTEX_FIELDS.values()),
    "SmoothGradConfig": (explanation.SmoothGradConfig, SmoothGrad.VERTEX_KEYS),
    "FeatureNoiseSigma": (explanation.FeatureNoiseSigma, SmoothGrad.FEATURE_NOISE_SIGMA_KEYS),
    "NoiseSigmaForFeature": (explanation.FeatureNoiseSigma.NoiseSigmaForFeature,
                             SmoothGrad.NOISE_SIGMA_ENTRY_KEYS),
    "BlurBaselineConfig": (explanation.BlurBaselineConfig, IntegratedGradients.BLUR_KEYS),
    "Examples": (explanation.Examples, Examples.VERTEX_FIELDS.values()),
    "ExampleGcsSource": (explanation.Examples.ExampleGcsSource, Examples.GCS_SOURCE_FIELDS),
    "Presets": (explanation.Presets, Examples.PRESETS_FIELDS),
}


@pytest.mark.parametrize("name", sorted(OUR_FIELDS))
def test_field_list_matches_the_official_message(name):
    message, ours = OUR_FIELDS[name]
    assert sorted(ours) == json_fields(message), name


def test_every_method_of_the_official_oneof_is_known():
    oneof = explanation.ExplanationParameters.pb().DESCRIPTOR.oneofs_by_name["method"]
    assert sorted(field.json_name for field in oneof.fields) == sorted(BY_VERTEX_KEY)


def enum_names(enum):
    """Values a user sets: the `*_UNSPECIFIED` default means "not set"."""
    return sorted(member.name for member in enum if not member.name.endswith("UNSPECIFIED"))


@pytest.mark.parametrize("enum, ours", [
    (INPUT.Encoding, enums.ENCODINGS),
    (INPUT.Visualization.Type, enums.VISUALIZATION_TYPES),
    (INPUT.Visualization.Polarity, enums.POLARITIES),
    (INPUT.Visualization.ColorMap, enums.COLOR_MAPS),
    (INPUT.Visualization.OverlayType, enums.OVERLAY_TYPES),
    (explanation.Examples.ExampleGcsSource.DataFormat, Examples.DATA_FORMATS),
    (explanation.Presets.Query, Examples.QUERIES),
    (explanation.Presets.Modality, Examples.MODALITIES),
], ids=lambda value: getattr(value, "__name__", ""))
def test_enum_values_match_the_official_enum(enum, ours):
    assert sorted(ours) == enum_names(enum)
