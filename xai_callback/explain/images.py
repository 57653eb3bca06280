"""What the image methods (XRAI, blurred baselines) share: PAIR `saliency`, image checks.

PAIR's `saliency` library (with scikit-image and scipy) is the optional extra
`[image]`: it is imported only when an image method runs.
"""

import numpy as np

from xai_callback.errors import MethodNotSupportedError

IMAGE = "image"


def saliency_core(method):
    """`saliency.core`, or a `MethodNotSupportedError` saying how to install it."""
    try:
        import saliency.core as core
    except ImportError as e:
        raise MethodNotSupportedError(
            f"{method} is computed with PAIR's saliency library, which is not installed "
            f"({e}); install the image extra: pip install 'xai-callback[image]'.") from e
    return core


def image_keys(problem, method, spelling, require_all):
    """The attributed inputs that are images of shape `[height, width, channels]`.

    Args:
        problem: the `Problem` (its `modalities` and input shapes).
        method: the method's Vertex name, for messages (e.g. "xraiAttribution").
        spelling: how messages name options.
        require_all: refuse any attributed input that is not an image (XRAI),
            else refuse only when there is none (blurred baselines).

    Raises:
        MethodNotSupportedError: naming the feature, its modality or shape,
            and what to use instead.
    """
    keys = []
    for key in problem.attributed_keys:
        name = problem.feature_names[key]
        modality = problem.modalities.get(key, "numeric")
        if modality != IMAGE:
            if require_all:
                raise MethodNotSupportedError(
                    f"{method} explains images only, but feature '{name}' has modality "
                    f"{modality!r}: use {spelling('method', 'integrated-gradients')} or "
                    f"{spelling('method', 'sampled-shapley')} (or declare the feature with "
                    "modality 'image').")
            continue
        shape = problem.inputs[key].shape[1:]
        if shape.rank != 3:
            raise MethodNotSupportedError(
                f"{method} needs images of shape [height, width, channels], but image feature "
                f"'{name}' is input '{key}' of shape {shape.as_list()} per instance: give the "
                "model's image input a channel axis (e.g. [28, 28, 1]).")
        keys.append(key)
    if not keys:
        raise MethodNotSupportedError(
            f"{method} blurs image features, and no explained feature is an image (features: "
            f"{sorted(problem.feature_names.values())}); use "
            f"{spelling('method', 'integrated-gradients')}.")
    return keys


def units_of_instances(unit_instance):
    """`[(instance, unit indices)]` in instance order (units are ordered by instance)."""
    unit_instance = np.asarray(unit_instance)
    return [(int(i), np.flatnonzero(unit_instance == i)) for i in np.unique(unit_instance)]
