"""XRAI (Kapishnikov et al., 2019; Vertex's `xraiAttribution`), with PAIR's saliency library.

Integrated gradients first (this package's engine, with the export's
baselines, `stepCount`, and its `smoothGradConfig` or `blurBaselineConfig`
when set), then XRAI's regions with `saliency.core.XRAI` (its Felzenszwalb
segmentation at several scales and its greedy ranking of regions by
attribution density), given those attributions as `base_attribution`.

What is reported (`docs/methods.md`): `featureAttributions` of an image
feature have the image's shape `[height, width, channels]`; every pixel holds
the attribution density of the region XRAI put it in (the mean over that
region of the pixels' integrated gradients, channels summed), spread evenly
over its channels. So a region's values add up to its integrated gradients,
and all of them to the sum of the integrated gradients: XRAI redistributes,
it does not change the total. (PAIR's default takes the largest channel of a
pixel, which loses that sum; here the channels of a pixel are summed
first.) `baselineOutputValue` is f(baseline) and `approximationError` the
completeness gap of those integrated gradients, which Vertex AI documents as
lowered by a larger `stepCount`.

The segmentation is not a graph op: only the Python explainer (and so
`xai-callback explain` and `serve`) computes XRAI, not `xai_explain`.
"""

import numpy as np

from xai_callback.explain.images import image_keys, saliency_core
from xai_callback.explain.methods.algorithm import AttributionAlgorithm
from xai_callback.explain.methods.blur_ig import BlurIG
from xai_callback.explain.methods.integrated_gradients import IntegratedGradients
from xai_callback.explain.methods.smoothgrad import SmoothGrad
from xai_callback.spec import methods as spec

WHAT = "xraiAttribution (XRAI)"


class XRAI(AttributionAlgorithm):
    """XRAI regions over integrated gradients.

    Example:

    ```python
    explain(export_dir, images, method="xrai", step_count=50)
    ```

    Args:
        spec: `spec.methods.XRAI`: `step_count`, and optionally `smooth_grad`
            or `max_blur_sigma` for the integrated gradients it starts from.
        spelling: how messages name options.
    """

    SPEC = spec.XRAI
    names = ("xrai",)
    in_graph = False

    def __init__(self, spec, spelling=None):
        super().__init__(spec, spelling)
        self.base = _base_method(spec, self.spelling)

    def describe(self):
        base = self.base.describe()
        return f"{self.name}({base.split('(', 1)[1]}" if "(" in base else self.name

    def precision_advice(self, worst_error):
        return self.base.precision_advice(worst_error)

    def check_inputs(self, problem):
        saliency_core(WHAT)
        image_keys(problem, WHAT, self.spelling, require_all=True)
        self.base.check_inputs(problem)

    def run_on_host(self, problem, run):
        """Integrated gradients, then each image's attributions gathered into XRAI's regions."""
        core = saliency_core(WHAT)
        result = self.base.run_on_host(problem, run) if not self.base.in_graph else run(problem, self.base)
        images = {key: np.asarray(problem.inputs[key]) for key in problem.baselines}
        instance_of = np.asarray(problem.unit_instance)
        attributions = {}
        for key, values in result["attributions"].items():
            values = np.asarray(values, np.float64)
            attributions[key] = np.stack([
                regions(core, images[key][instance], unit_values)
                for instance, unit_values in zip(instance_of, values)])
        return {**result, "attributions": attributions}


def regions(core, image, pixel_attributions):
    """XRAI of one image: `[height, width, channels]`, each pixel its region's density
    spread over the channels (see the module docstring)."""
    channels = image.shape[-1]
    per_pixel = pixel_attributions.sum(axis=-1)
    # XRAI reduces channels with their max: equal channels make that the sum.
    base = np.repeat(per_pixel[..., None], channels, axis=-1)
    image = np.asarray(image, np.float64)
    # A flat image has no edges to segment (and saliency would divide by its zero range).
    segments = [np.ones(image.shape[:2], bool)] if np.ptp(image) == 0 else None
    mask = core.XRAI().GetMask(image, None, base_attribution=base, segments=segments)
    return np.repeat(np.asarray(mask, np.float64)[..., None] / channels, channels, axis=-1)


def _base_method(spec_method, spelling):
    """The integrated gradients XRAI starts from: plain, SmoothGrad or blurred baselines."""
    if spec_method.smooth_grad is not None:
        return SmoothGrad(spec_method, spelling)
    if spec_method.max_blur_sigma is not None:
        return BlurIG(spec_method, spelling)
    return IntegratedGradients(spec_method, spelling)
