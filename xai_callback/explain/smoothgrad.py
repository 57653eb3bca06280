"""SmoothGrad on integrated gradients (Vertex's `smoothGradConfig`).

Integrated gradients of `noisySampleCount` noisy copies `x + N(0, sigma^2)` of
each instance, averaged (Smilkov et al., 2017). Sigma is `noiseSigma` for every
feature, or per feature from `featureNoiseSigma` (features not listed get no
noise). `approximationError` is the completeness gap of the averaged
attributions against the mean output change of the noisy copies, i.e. the
integration error only: noise changes the explained point on purpose.
"""

import copy

import tensorflow as tf

from xai_callback.errors import SpecError
from xai_callback.explain.base import positive_int
from xai_callback.explain.integrated_gradients import IntegratedGradients, integrated, path_result

DEFAULT_NOISY_SAMPLE_COUNT = 3
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
        step_count: trapezoid intervals of each integrated gradients run.
        noise_sigma: standard deviation of the noise for every feature.
        feature_noise_sigma: `{feature name: sigma}` instead of `noise_sigma`.
        noisy_sample_count: noisy copies per instance.
    """

    name = "smoothgrad"
    override_paths = {
        **IntegratedGradients.override_paths,
        "noise_sigma": ("smoothGradConfig", "noiseSigma"),
        "feature_noise_sigma": ("smoothGradConfig", "featureNoiseSigma"),
        "noisy_sample_count": ("smoothGradConfig", "noisySampleCount"),
    }

    def __init__(self, step_count, noise_sigma=None, feature_noise_sigma=None,
                 noisy_sample_count=DEFAULT_NOISY_SAMPLE_COUNT):
        super().__init__(step_count)
        if (noise_sigma is None) == (feature_noise_sigma is None):
            raise SpecError(
                "smoothGradConfig needs exactly one of noiseSigma (noise_sigma=) or "
                f"featureNoiseSigma (feature_noise_sigma=); received noiseSigma="
                f"{noise_sigma!r}, featureNoiseSigma={feature_noise_sigma!r}."
            )
        self.noise_sigma = noise_sigma
        self.feature_noise_sigma = _feature_sigmas(feature_noise_sigma)
        self.noisy_sample_count = positive_int(noisy_sample_count, "noisySampleCount")

    @classmethod
    def accepts(cls, config):
        return "smoothGradConfig" in config

    @classmethod
    def from_config(cls, config):
        smooth = config.get("smoothGradConfig") or {}
        return cls(
            IntegratedGradients.from_config(
                {k: v for k, v in config.items() if k != "smoothGradConfig"}
            ).step_count,
            noise_sigma=smooth.get("noiseSigma"),
            feature_noise_sigma=smooth.get("featureNoiseSigma"),
            noisy_sample_count=smooth.get("noisySampleCount", DEFAULT_NOISY_SAMPLE_COUNT),
        )

    def describe(self):
        sigma = self.noise_sigma if self.noise_sigma is not None else self.feature_noise_sigma
        return (f"{self.name}(stepCount={self.step_count}, sigma={sigma}, "
                f"noisySampleCount={self.noisy_sample_count})")

    def check_inputs(self, problem):
        super().check_inputs(problem)
        unknown = sorted(set(self.feature_noise_sigma or ()) - set(problem.feature_names.values()))
        if unknown:
            raise SpecError(
                f"featureNoiseSigma names {unknown}, which are not explained features "
                f"(features: {sorted(problem.feature_names.values())})."
            )

    def bind(self, problem):
        """The noise sigma of each model input (0 for unattributed ones)."""
        bound = copy.copy(self)
        bound.sigmas = {key: self._sigma(problem.feature_names[key]) for key in problem.baselines}
        return bound

    def cache_key(self):
        return (self.describe(), tuple(sorted(self.sigmas.items())))

    def start(self, state):
        """Each instance repeated `noisy_sample_count` times, noise on attributed inputs;
        each (unit, copy) is a unit of integrated gradients."""
        samples = self.noisy_sample_count
        inputs = {}
        for stream, key in enumerate(sorted(state["inputs"])):
            repeated = tf.repeat(state["inputs"][key], samples, axis=0)
            if self.sigmas.get(key):
                noise = self.sigmas[key] * tf.random.stateless_normal(
                    tf.shape(repeated), seed=tf.stack([state["seed"], NOISE_STREAM + stream]),
                    dtype=repeated.dtype)
                if key in state["frozen"]:  # padding stays padding
                    noise = tf.where(tf.repeat(state["frozen"][key], samples, axis=0), 0.0, noise)
                repeated = repeated + noise
            inputs[key] = repeated
        units = state["unit_instance"]
        return super().start({
            **state,
            "inputs": inputs,
            "unit_instance": tf.reshape(units[:, None] * samples + tf.range(samples, dtype=units.dtype), [-1]),
            "unit_mask": tf.repeat(state["unit_mask"], samples, axis=0),
            "frozen": {k: tf.repeat(v, samples, axis=0) for k, v in state["frozen"].items()},
        })

    def finish(self, state, rows, items):
        attributions, end_output, start_output = integrated(state, rows, items, self.step_count)
        samples = self.noisy_sample_count

        def mean(value):  # over the noisy copies of each unit
            shape = tf.shape(value, out_type=tf.int64)
            return tf.reduce_mean(tf.reshape(value, tf.concat([tf.constant([-1, samples], tf.int64), shape[1:]], 0)), axis=1)

        return path_result({k: mean(v) for k, v in attributions.items()}, mean(end_output), mean(start_output))

    def _sigma(self, feature_name):
        if self.noise_sigma is not None:
            return float(self.noise_sigma)
        return float(self.feature_noise_sigma.get(feature_name, 0.0))


def _feature_sigmas(value):
    """Vertex `{"noiseSigma": [{"name", "sigma"}]}` or `{name: sigma}` -> `{name: sigma}`."""
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("noiseSigma"), list):
        try:
            return {item["name"]: float(item["sigma"]) for item in value["noiseSigma"]}
        except (KeyError, TypeError, ValueError) as e:
            raise SpecError(
                'featureNoiseSigma must be {"noiseSigma": [{"name": ..., "sigma": ...}]}; '
                f"received {value!r}."
            ) from e
    if isinstance(value, dict):
        return {str(name): float(sigma) for name, sigma in value.items()}
    raise SpecError(f"featureNoiseSigma must be a dict; received {value!r}.")
