"""Enum values of Vertex AI ExplanationMetadata (API v1), as spelled in its JSON."""

ENCODINGS = (
    "IDENTITY",
    "BAG_OF_FEATURES",
    "BAG_OF_FEATURES_SPARSE",
    "INDICATOR",
    "COMBINED_EMBEDDING",
    "CONCAT_EMBEDDING",
)
# Vertex needs `indexFeatureMapping` to name the features packed in one tensor.
ENCODINGS_WITH_INDEX_MAPPING = ("BAG_OF_FEATURES", "BAG_OF_FEATURES_SPARSE", "INDICATOR")

# `modality` is a free string in the API; these are the documented values.
NUMERIC = "numeric"
IMAGE = "image"
MODALITIES = (NUMERIC, IMAGE)

VISUALIZATION_TYPES = ("PIXELS", "OUTLINES")
POLARITIES = ("POSITIVE", "NEGATIVE", "BOTH")
COLOR_MAPS = ("PINK_GREEN", "VIRIDIS", "RED", "GREEN", "RED_GREEN", "PINK_WHITE_GREEN")
OVERLAY_TYPES = ("NONE", "ORIGINAL", "GRAYSCALE", "MASK_BLACK")
