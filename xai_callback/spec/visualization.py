"""`Visualization` and `FeatureValueDomain`: optional parts of an input's metadata."""

from xai_callback.spec import enums
from xai_callback.spec.base import SpecObject
from xai_callback.spec.fields import check_choice, check_number, describe
from xai_callback.errors import SpecError


class Visualization(SpecObject):
    """How Vertex draws image attributions (`InputMetadata.visualization`).

    Example:
        Visualization(type="OUTLINES", polarity="BOTH", color_map="RED_GREEN")

    Args:
        type: "PIXELS" or "OUTLINES" (default None: the service's default for
            the method).
        polarity: "POSITIVE" (default), "NEGATIVE" or "BOTH".
        color_map: "PINK_GREEN", "VIRIDIS", "RED", "GREEN", "RED_GREEN" or
            "PINK_WHITE_GREEN" (default None: PINK_GREEN for integrated
            gradients, VIRIDIS for XRAI, chosen by the service).
        clip_percent_upperbound: attributions above this percentile are not
            highlighted; in (0, 100], default 99.9.
        clip_percent_lowerbound: attributions below this percentile are not
            highlighted; in [0, 100), below the upper bound, default 62.
        overlay_type: "NONE" (default), "ORIGINAL", "GRAYSCALE" or "MASK_BLACK".
    Enum values are matched case-insensitively and stored in UPPERCASE.
    """

    VERTEX_FIELDS = {
        "type": "type",
        "polarity": "polarity",
        "color_map": "colorMap",
        "clip_percent_upperbound": "clipPercentUpperbound",
        "clip_percent_lowerbound": "clipPercentLowerbound",
        "overlay_type": "overlayType",
    }

    def __init__(self, type=None, polarity="POSITIVE", color_map=None,
                 clip_percent_upperbound=99.9, clip_percent_lowerbound=62.0,
                 overlay_type="NONE"):
        where = "Visualization"
        self.type = check_choice(where, "type", type, enums.VISUALIZATION_TYPES, optional=True)
        self.polarity = check_choice(where, "polarity", polarity, enums.POLARITIES)
        self.color_map = check_choice(where, "color_map", color_map, enums.COLOR_MAPS,
                                      optional=True)
        self.clip_percent_upperbound = check_number(
            where, "clip_percent_upperbound", clip_percent_upperbound, 0, 100, low_open=True)
        self.clip_percent_lowerbound = check_number(
            where, "clip_percent_lowerbound", clip_percent_lowerbound, 0, 100)
        if self.clip_percent_lowerbound >= self.clip_percent_upperbound:
            raise SpecError(describe(
                where, "clip_percent_lowerbound", clip_percent_lowerbound,
                f"expected less than clip_percent_upperbound ({clip_percent_upperbound})"))
        self.overlay_type = check_choice(where, "overlay_type", overlay_type, enums.OVERLAY_TYPES)


class FeatureValueDomain(SpecObject):
    """Range and normalisation of a feature's values (`featureValueDomain`).

    Example:
        FeatureValueDomain(min_value=0, max_value=120, original_mean=38.5, original_stddev=12.1)

    Args:
        min_value: smallest valid value (default None).
        max_value: largest valid value, >= min_value (default None).
        original_mean: mean before the input was standardised (default None).
        original_stddev: standard deviation before standardisation, > 0
            (default None).
    """

    VERTEX_FIELDS = {
        "min_value": "minValue",
        "max_value": "maxValue",
        "original_mean": "originalMean",
        "original_stddev": "originalStddev",
    }

    def __init__(self, min_value=None, max_value=None, original_mean=None, original_stddev=None):
        where = "FeatureValueDomain"
        self.min_value = check_number(where, "min_value", min_value, optional=True)
        self.max_value = check_number(where, "max_value", max_value, optional=True)
        self.original_mean = check_number(where, "original_mean", original_mean, optional=True)
        self.original_stddev = check_number(
            where, "original_stddev", original_stddev, 0, low_open=True, optional=True)
        if None not in (self.min_value, self.max_value) and self.min_value > self.max_value:
            raise SpecError(describe(where, "max_value", max_value,
                                     f"expected >= min_value ({min_value})"))
