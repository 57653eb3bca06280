"""SmoothGrad on integrated gradients (Vertex's `smoothGradConfig`).

Integrated gradients of `noisySampleCount` noisy copies `x + N(0, sigma^2)` of
each instance, averaged (Smilkov et al., 2017). Sigma is `noiseSigma` for every
feature, or per feature from `featureNoiseSigma` (features not listed get no
noise).

What is reported, precisely (`docs/methods.md`): the attributions are the mean
over the copies of integrated gradients from the baseline to each copy;
`baselineOutputValue` is f(baseline) and `instanceOutputValue` f(x), the
un-noised instance; `approximationError` is the completeness gap of the
averaged attributions against the mean output change of the copies,
`|sum(attributions) - (mean_i f(x + noise_i) - f(baseline))| / |mean_i f(x + noise_i) - f(baseline)|`,
i.e. the integration error only, which a larger `stepCount` lowers. So
`sum(attributions)` differs from `instanceOutputValue - baselineOutputValue` by
`mean_i f(x + noise_i) - f(x)` besides that error: the smoothing itself, which
no setting removes (noise changes the explained point on purpose).
"""

import copy

import numpy as np
import tensorflow as tf

from xai_callback.errors import MethodNotSupportedError, SpecError
from xai_callback.explain.methods.integrated_gradients import IntegratedGradients, integrated, path_result

# Streams of the stateless noise: one per model input, after Shapley's orders.
NOISE_STREAM = 100


class SmoothGrad(IntegratedGradients):
    """Integrated gradients averaged over noisy copies of each instance.

    Example:

    ```python
    explain(export_dir, instances, method="smoothgrad", noise_sigma=0.1,
            noisy_sample_count=10)
    ```

    Args:
        spec: `spec.methods.IntegratedGradients` (or `XRAI`) with a
            `smooth_grad` (`spec.smoothgrad.SmoothGrad`: `noise_sigma` for
            every feature or `feature_noise_sigma` `{feature name: sigma}`,
            and `noisy_sample_count` copies per instance).
        spelling: how messages name options.
    """

    names = ("smoothgrad",)

    def __init__(self, spec, spelling=None):
        super().__init__(spec, spelling)
        if spec.max_blur_sigma is not None:
            raise MethodNotSupportedError(
                f"{spec.VERTEX_KEY} with both smoothGradConfig and blurBaselineConfig is not "
                "computed locally: keep one of them.")
        smooth = spec.smooth_grad
        self.noise_sigma = smooth.noise_sigma
        self.feature_noise_sigma = smooth.feature_noise_sigma
        self.noisy_sample_count = smooth.noisy_sample_count

    def describe(self):
        sigma = self.noise_sigma if self.noise_sigma is not None else self.feature_noise_sigma
        return (f"{self.name}(stepCount={self.step_count}, sigma={sigma}, "
                f"noisySampleCount={self.noisy_sample_count})")

    def check_inputs(self, problem):
        super().check_inputs(problem)
        unknown = sorted(set(self.feature_noise_sigma or ()) - set(problem.feature_names.values()))
        if unknown:
            raise SpecError(
                f"featureNoiseSigma ({self.spelling.name('feature_noise_sigma')}) names "
                f"{unknown}, which are not explained features (features: "
                f"{sorted(problem.feature_names.values())}).")

    def bind(self, problem):
        """The noise sigma of each model input (0 for unattributed ones)."""
        bound = copy.copy(self)
        bound.sigmas = {key: self._sigma(problem.feature_names[key]) for key in problem.baselines}
        return bound

    def cache_key(self):
        # The counts and sigmas are tensors of `state`; which inputs get noise is structure.
        return (self.name, tuple(sorted(key for key, sigma in self.sigmas.items() if sigma)))

    def settings_state(self):
        return {**super().settings_state(), "noisy_sample_count": np.int64(self.noisy_sample_count),
                "noise_sigma": {key: np.float64(sigma) for key, sigma in self.sigmas.items() if sigma}}

    def start(self, state):
        """Each instance repeated `noisy_sample_count` times, noise on attributed inputs;
        each (unit, copy) is a unit of integrated gradients."""
        samples = state["noisy_sample_count"]
        inputs = {}
        for stream, key in enumerate(sorted(state["inputs"])):
            repeated = tf.repeat(state["inputs"][key], samples, axis=0)
            if key in state["noise_sigma"]:
                noise = tf.cast(state["noise_sigma"][key], repeated.dtype) * tf.random.stateless_normal(
                    tf.shape(repeated), seed=tf.stack([state["seed"], NOISE_STREAM + stream]),
                    dtype=repeated.dtype)
                if key in state["frozen"]:  # padding stays padding
                    noise = tf.where(tf.repeat(state["frozen"][key], samples, axis=0), 0.0, noise)
                repeated = repeated + noise
            inputs[key] = repeated
        units = state["unit_instance"]
        copies = tf.cast(samples, units.dtype)
        return super().start({
            **state,
            "inputs": inputs,
            "unit_instance": tf.reshape(units[:, None] * copies + tf.range(copies), [-1]),
            "unit_mask": tf.repeat(state["unit_mask"], samples, axis=0),
            "frozen": {k: tf.repeat(v, samples, axis=0) for k, v in state["frozen"].items()},
        })

    def finish(self, state, rows, items):
        attributions, end_output, start_output = integrated(state, rows, items)
        copies = tf.constant([-1], tf.int64), state["noisy_sample_count"][None]

        def mean(value):  # over the noisy copies of each unit
            shape = tf.shape(value, out_type=tf.int64)
            return tf.reduce_mean(tf.reshape(value, tf.concat([*copies, shape[1:]], 0)), axis=1)

        return path_result({k: mean(v) for k, v in attributions.items()}, mean(end_output), mean(start_output))

    def _sigma(self, feature_name):
        if self.noise_sigma is not None:
            return float(self.noise_sigma)
        return float(self.feature_noise_sigma.get(feature_name, 0.0))
