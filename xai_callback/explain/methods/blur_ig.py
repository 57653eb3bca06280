"""Integrated gradients from a blurred image (Vertex's `blurBaselineConfig`).

Vertex AI: "a linear path from the maximally blurred image to the input image
is created", motivated by Blur IG (Xu et al., 2020): each image's baseline is
the image itself blurred with a Gaussian of sigma `maxBlurSigma` pixels over
its height and width (PAIR saliency's `gaussian_blur`, scipy's filter with
zero padding), so attributions say what the details add to the blurred whole.
Integrated gradients then runs on that straight path, one image at a time
(each has its own baseline); features that are not images keep their
metadata baselines. `baselineOutputValue` is f(blurred image) and
`approximationError` the completeness gap of integrated gradients against it.

The blur is host code (scipy), so `xai_explain` does not compute this method.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from xai_callback.explain.images import image_keys, saliency_core, units_of_instances
from xai_callback.explain.methods.algorithm import AttributionAlgorithm
from xai_callback.explain.methods.integrated_gradients import IntegratedGradients
from xai_callback.spec import methods as spec


class BlurIG(AttributionAlgorithm):
    """Integrated gradients whose image baselines are the blurred images.

    Example:

    ```python
    explain(export_dir, instances, method="blur-ig", max_blur_sigma=10, step_count=50)
    ```

    Args:
        spec: `spec.methods.IntegratedGradients` (or `XRAI`) with
            `max_blur_sigma` (pixels) and `step_count`.
        spelling: how messages name options.
    """

    SPEC = spec.IntegratedGradients
    names = ("blur-ig",)
    in_graph = False

    def __init__(self, spec, spelling=None):
        super().__init__(spec, spelling)
        self.max_blur_sigma = float(spec.max_blur_sigma)
        self.integrated = IntegratedGradients(spec, spelling)

    def describe(self):
        return f"{self.name}(stepCount={self.integrated.step_count}, maxBlurSigma={self.max_blur_sigma})"

    def precision_advice(self, worst_error):
        return self.integrated.precision_advice(worst_error)

    def check_inputs(self, problem):
        saliency_core("blurBaselineConfig (blur-ig)")
        image_keys(problem, "blurBaselineConfig (blur-ig)", self.spelling, require_all=False)
        self.integrated.check_inputs(problem)

    def run_on_host(self, problem, run):
        """Integrated gradients per instance, from its blurred images."""
        blur = saliency_core("blurBaselineConfig (blur-ig)").gaussian_blur
        images = image_keys(problem, "blurBaselineConfig (blur-ig)", self.spelling, require_all=False)
        parts = []
        for instance, units in units_of_instances(problem.unit_instance):
            inputs = {k: v[instance:instance + 1] for k, v in problem.inputs.items()}
            baselines = dict(problem.baselines)
            for key in images:
                image = np.asarray(inputs[key][0], np.float64)
                blurred = blur(image, self.max_blur_sigma).astype(inputs[key].dtype.as_numpy_dtype)
                count = len(baselines[key])  # as many as the other features have
                baselines[key] = tf.constant(np.repeat(blurred[None], count, axis=0))
            one = dataclasses.replace(
                problem, inputs=inputs, baselines=baselines,
                unit_instance=tf.zeros([len(units)], tf.int64),
                unit_mask=tf.gather(problem.unit_mask, units),
                frozen={k: v[instance:instance + 1] for k, v in problem.frozen.items()},
                progress=None)
            parts.append(run(one, self.integrated))
        return {
            "attributions": {key: np.concatenate([p["attributions"][key] for p in parts])
                             for key in problem.baselines},
            "baseline_output": np.concatenate([p["baseline_output"] for p in parts]),
            "approximation_error": np.concatenate([p["approximation_error"] for p in parts]),
        }
