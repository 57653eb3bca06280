"""The legacy AI Platform metadata dialect (`explanation_metadata.json`).

Written only on request (`legacy_metadata=True`): Vertex rejects it (lowercase
enums, snake_case), and the service that read it closed on 2025-01-31. It is
derived from the Vertex JSON so the two can never disagree.
"""

_INPUT_FIELDS = {
    "inputTensorName": "input_tensor_name",
    "inputBaselines": "input_baselines",
    "encoding": "encoding",
    "modality": "modality",
    "featureValueDomain": "domain",
    "indexFeatureMapping": "index_feature_mapping",
    "encodedTensorName": "encoded_tensor_name",
    "encodedBaselines": "encoded_baselines",
    "indicesTensorName": "indices_tensor_name",
    "denseShapeTensorName": "dense_shape_tensor_name",
    "groupName": "group_name",
    "visualization": "visualization",
}
_DOMAIN_FIELDS = {
    "minValue": "min",
    "maxValue": "max",
    "originalMean": "original_mean",
    "originalStddev": "original_stddev",
}
_VISUALIZATION_FIELDS = {
    "type": "type",
    "polarity": "polarity",
    "colorMap": "color_map",
    "clipPercentUpperbound": "clip_above_percentile",
    "clipPercentLowerbound": "clip_below_percentile",
    "overlayType": "overlay_type",
}
_OUTPUT_FIELDS = {
    "outputTensorName": "output_tensor_name",
    "indexDisplayNameMapping": "index_name_mapping",
    "displayNameMappingKey": "index_name_mapping_key",
}
# Enum values the legacy dialect spells in lowercase.
_ENUM_FIELDS = ("encoding", "type", "polarity", "colorMap", "overlayType")


def to_legacy_metadata(metadata, parameters=None):
    """The legacy snake_case metadata dict for Vertex metadata JSON.

    Args:
        metadata: Vertex v1 ExplanationMetadata JSON (from `ExplanationSpec.build`).
        parameters: accepted so callers can pass the pair `build` returns; the
            legacy dialect has no method field (the method was a deploy flag,
            `gcloud ai-platform versions create --explanation-method`).
    """
    del parameters  # see docstring
    inputs = {}
    for name, body in metadata["inputs"].items():
        entry = _rename(body, _INPUT_FIELDS)
        if "domain" in entry:
            entry["domain"] = _rename(entry["domain"], _DOMAIN_FIELDS)
        if "visualization" in entry:
            entry["visualization"] = _rename(entry["visualization"], _VISUALIZATION_FIELDS)
        inputs[name] = entry
    outputs = {name: _rename(body, _OUTPUT_FIELDS) for name, body in metadata["outputs"].items()}
    return {"inputs": inputs, "outputs": outputs, "framework": "tensorflow2",
            "tags": ["explainable_ai_sdk"]}


def _rename(body, fields):
    return {fields[key]: value.lower() if key in _ENUM_FIELDS else value
            for key, value in body.items()}
