"""Reading Vertex ExplanationMetadata JSON into `Feature` and `Output` objects."""

from xai_callback.spec.feature import Feature
from xai_callback.spec.fields import check_known_keys, check_str, spec_error, type_error
from xai_callback.spec.output import Output

METADATA_KEYS = ("inputs", "outputs", "featureAttributionsSchemaUri", "latentSpaceSource")
# Optional top-level strings: where Vertex describes its attribution output, and
# the latent-space source of example-based explanations.
METADATA_STRING_KEYS = ("featureAttributionsSchemaUri", "latentSpaceSource")
BASELINE_FIELDS = ("inputBaselines", "encodedBaselines")


def attributed_fields(body):
    """`(tensor name field, baselines field)` a metadata input is attributed
    with: its encoded tensor and `encodedBaselines` when `encodedTensorName`
    is set (an embedding, say: gradients and coalitions act on it), else its
    input tensor and `inputBaselines`."""
    if body.get("encodedTensorName"):
        return "encodedTensorName", "encodedBaselines"
    return "inputTensorName", "inputBaselines"


def features_from_metadata(metadata, with_baselines=True):
    """`[Feature]` of `metadata.inputs`; `with_baselines=False` skips the
    baseline fields, so their rule can be reported on its own."""
    check_known_keys("metadata", metadata, METADATA_KEYS)
    inputs = metadata.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise type_error("metadata", "inputs", inputs,
                         "expected a non-empty map {feature name: InputMetadata}")
    features = []
    for name, body in inputs.items():
        if not isinstance(body, dict):
            raise type_error("metadata", f"inputs[{name!r}]", body, "expected an InputMetadata map")
        if not with_baselines:
            body = {k: v for k, v in body.items() if k not in BASELINE_FIELDS}
        features.append(Feature.from_vertex(body, name=name))
    return features


def output_from_metadata(metadata):
    """The one `Output` of `metadata.outputs` (Vertex allows exactly one)."""
    outputs = metadata.get("outputs")
    if not isinstance(outputs, dict):
        raise type_error("metadata", "outputs", outputs, "expected a map {name: OutputMetadata}")
    if len(outputs) != 1:
        raise spec_error("metadata", "outputs", sorted(outputs),
                         "expected exactly one explained output")
    (name, body), = outputs.items()
    if not isinstance(body, dict):
        raise type_error("metadata", f"outputs[{name!r}]", body, "expected an OutputMetadata map")
    return Output.from_vertex(body, name=name)


def check_metadata_fields(metadata):
    """Field names, types and enum values of a metadata dict (not baselines)."""
    features_from_metadata(metadata, with_baselines=False)
    output_from_metadata(metadata)
    for key in METADATA_STRING_KEYS:
        check_str("metadata", key, metadata.get(key), optional=True)
