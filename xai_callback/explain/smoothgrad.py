"""SmoothGrad on integrated gradients (Vertex's `smoothGradConfig`).

Integrated gradients of `noisySampleCount` noisy copies `x + N(0, sigma^2)` of
each instance, averaged (Smilkov et al., 2017). Sigma is `noiseSigma` for every
feature, or per feature from `featureNoiseSigma` (features not listed get no
noise). `approximationError` is the completeness gap of the averaged
attributions against the mean output change of the noisy copies, i.e. the
integration error only: noise changes the explained point on purpose.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from xai_callback.errors import SpecError
from xai_callback.explain.base import MethodResult, positive_int, relative_gap, summed
from xai_callback.explain.integrated_gradients import IntegratedGradients, integrate

DEFAULT_NOISY_SAMPLE_COUNT = 3


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

    def attribute(self, problem):
        samples = self.noisy_sample_count
        noisy = dataclasses.replace(
            problem,
            inputs=self._noisy_inputs(problem),
            unit_instance=(problem.unit_instance[:, None] * samples + np.arange(samples)).ravel(),
            unit_mask=np.repeat(problem.unit_mask, samples, axis=0),
            frozen={k: np.repeat(v, samples, axis=0) for k, v in problem.frozen.items()},
        )
        attributions, end_output, start_output = integrate(noisy, self.step_count)
        units = problem.num_units
        attributions = {
            k: v.reshape((units, samples) + v.shape[1:]).mean(axis=1) for k, v in attributions.items()
        }
        end_output = end_output.reshape(units, samples).mean(axis=1)
        start_output = start_output.reshape(units, samples).mean(axis=1)
        gap = summed(attributions) - (end_output - start_output)
        return MethodResult(attributions, start_output, relative_gap(gap, end_output, start_output))

    def _noisy_inputs(self, problem):
        """Each instance repeated `noisy_sample_count` times, noise on attributed inputs."""
        rng = np.random.default_rng(problem.seed)
        inputs = {}
        for key, value in problem.inputs.items():
            repeated = tf.repeat(value, self.noisy_sample_count, axis=0)
            sigma = self._sigma(problem.feature_names.get(key)) if key in problem.baselines else 0.0
            if sigma:
                noise = rng.normal(0.0, sigma, tuple(repeated.shape)).astype(value.dtype.as_numpy_dtype)
                if key in problem.frozen:  # padding stays padding
                    noise[np.repeat(problem.frozen[key], self.noisy_sample_count, axis=0)] = 0
                repeated = repeated + noise
            inputs[key] = repeated
        return inputs

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
