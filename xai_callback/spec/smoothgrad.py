"""`SmoothGrad`: the `smoothGradConfig` of integrated gradients and XRAI."""

from xai_callback.errors import SpecError
from xai_callback.spec.base import SpecObject
from xai_callback.spec.fields import (
    check_known_keys,
    check_number,
    check_str,
    describe,
    spec_error,
    type_error,
)
from xai_callback.spec.limits import coerce_limits

DEFAULT_NOISY_SAMPLE_COUNT = 3


class SmoothGrad(SpecObject):
    """Averages gradients over noisy copies of the input (`smoothGradConfig`).

    Example:
        IntegratedGradients(smooth_grad=SmoothGrad(noise_sigma=0.1, noisy_sample_count=5))

    Args:
        noise_sigma: standard deviation of the Gaussian noise added to every
            (normalised) feature, > 0 (default None).
        feature_noise_sigma: `{feature name: sigma}` when features differ in
            scale (default None). Give exactly one of the two: the API
            documents no default noise, and without one the export could not
            be explained.
        noisy_sample_count: noisy copies per input, 1 to 50 (default 3).
        limits: the `Limits` the counts must keep (default None: Vertex AI's).
    """

    # Vertex JSON fields of SmoothGradConfig, FeatureNoiseSigma and its entries.
    VERTEX_KEYS = ("noiseSigma", "featureNoiseSigma", "noisySampleCount")
    FEATURE_NOISE_SIGMA_KEYS = ("noiseSigma",)
    NOISE_SIGMA_ENTRY_KEYS = ("name", "sigma")
    # The options (`explain(..., noise_sigma=...)`) that set its fields.
    OPTIONS = ("noise_sigma", "feature_noise_sigma", "noisy_sample_count")

    def __init__(self, noise_sigma=None, feature_noise_sigma=None,
                 noisy_sample_count=DEFAULT_NOISY_SAMPLE_COUNT, *, limits=None):
        where = "SmoothGrad"
        limits = coerce_limits(limits)
        self.noise_sigma = check_number(where, "noise_sigma", noise_sigma, 0, low_open=True,
                                        optional=True)
        self.feature_noise_sigma = _check_sigmas(where, feature_noise_sigma)
        if self.noise_sigma is not None and self.feature_noise_sigma is not None:
            raise SpecError(describe(where, "feature_noise_sigma", feature_noise_sigma,
                                     f"give it or noise_sigma ({noise_sigma}), not both"))
        if self.noise_sigma is None and self.feature_noise_sigma is None:
            raise SpecError(describe(where, "noise_sigma", None,
                                     "give noise_sigma (one sigma for every feature, e.g. 0.1 "
                                     "for inputs scaled to [0, 1]) or feature_noise_sigma "
                                     "({feature name: sigma}): the noise has no default"))
        self.noisy_sample_count = limits.count(where, "noisy_sample_count", noisy_sample_count,
                                               "max_noisy_sample_count")

    def get_config(self):
        return {"noise_sigma": self.noise_sigma,
                "feature_noise_sigma": self.feature_noise_sigma,
                "noisy_sample_count": self.noisy_sample_count}

    def to_vertex(self):
        out = {"noisySampleCount": self.noisy_sample_count}
        if self.noise_sigma is not None:
            out["noiseSigma"] = self.noise_sigma
        if self.feature_noise_sigma is not None:
            out["featureNoiseSigma"] = {"noiseSigma": [
                {"name": name, "sigma": sigma} for name, sigma in self.feature_noise_sigma.items()]}
        return out

    @classmethod
    def from_vertex(cls, body, where="smoothGradConfig", limits=None):
        check_known_keys(where, body, cls.VERTEX_KEYS)
        sigmas = body.get("featureNoiseSigma")
        if sigmas is not None:
            check_known_keys(f"{where}.featureNoiseSigma", sigmas, cls.FEATURE_NOISE_SIGMA_KEYS)
            entries = sigmas.get("noiseSigma", [])
            if not all(isinstance(e, dict) and set(e) <= set(cls.NOISE_SIGMA_ENTRY_KEYS)
                       for e in entries):
                raise spec_error(where, "featureNoiseSigma.noiseSigma", entries,
                                 "expected a list of {\"name\": ..., \"sigma\": ...}")
            sigmas = {e.get("name"): e.get("sigma") for e in entries}
        coerce_limits(limits).count(f"{where}.noisySampleCount", "noisy_sample_count",
                                    body.get("noisySampleCount"),
                                    "max_noisy_sample_count", default=DEFAULT_NOISY_SAMPLE_COUNT)
        return cls(noise_sigma=body.get("noiseSigma"), feature_noise_sigma=sigmas,
                   noisy_sample_count=body.get("noisySampleCount", DEFAULT_NOISY_SAMPLE_COUNT),
                   limits=limits)


def _check_sigmas(where, value):
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise type_error(where, "feature_noise_sigma", value,
                         "expected a non-empty dict {feature name: sigma}")
    return {check_str(where, "feature_noise_sigma name", name):
            check_number(where, f"feature_noise_sigma[{name!r}]", sigma, 0, low_open=True)
            for name, sigma in value.items()}


def smooth_config_with(stored, options):
    """The SmoothGrad config: the stored one with the options on top (None: none)."""
    given = {k: options[k] for k in SmoothGrad.OPTIONS if k in options}
    if not given:
        return stored
    config = dict(stored or {})
    # One sigma replaces per-feature sigmas and the other way round.
    if "noise_sigma" in given:
        config["feature_noise_sigma"] = None
    if "feature_noise_sigma" in given:
        config["noise_sigma"] = None
    config.update(given)
    return config if config.get("noise_sigma") or config.get("feature_noise_sigma") else None
