"""Attribution methods: `IntegratedGradients`, `SampledShapley`, `XRAI`, `SmoothGrad`."""

from xai_callback.errors import SpecError
from xai_callback.spec.base import SpecObject
from xai_callback.spec.fields import (
    check_choice,
    check_int,
    check_known_keys,
    check_number,
    check_str,
    check_str_list,
    describe,
    spec_error,
    type_error,
)


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
    """

    # Vertex JSON fields of SmoothGradConfig, FeatureNoiseSigma and its entries.
    VERTEX_KEYS = ("noiseSigma", "featureNoiseSigma", "noisySampleCount")
    FEATURE_NOISE_SIGMA_KEYS = ("noiseSigma",)
    NOISE_SIGMA_ENTRY_KEYS = ("name", "sigma")

    def __init__(self, noise_sigma=None, feature_noise_sigma=None, noisy_sample_count=3):
        where = "SmoothGrad"
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
        self.noisy_sample_count = check_int(where, "noisy_sample_count", noisy_sample_count, 1, 50)

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
    def from_vertex(cls, body, where="smoothGradConfig"):
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
        return cls(noise_sigma=body.get("noiseSigma"), feature_noise_sigma=sigmas,
                   noisy_sample_count=body.get("noisySampleCount", 3))


def _check_sigmas(where, value):
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise type_error(where, "feature_noise_sigma", value,
                         "expected a non-empty dict {feature name: sigma}")
    return {check_str(where, "feature_noise_sigma name", name):
            check_number(where, f"feature_noise_sigma[{name!r}]", sigma, 0, low_open=True)
            for name, sigma in value.items()}


class AttributionMethod(SpecObject):
    """Base of the attribution methods; `VERTEX_KEY` names it in the parameters."""

    VERTEX_KEY = None
    GRADIENT_BASED = False
    IMAGES_ONLY = False

    def to_parameters(self):
        """`{VERTEX_KEY: body}`, the method's part of ExplanationParameters."""
        return {self.VERTEX_KEY: self.to_vertex()}


class _GradientMethod(AttributionMethod):
    """Shared fields of integrated gradients and XRAI."""

    GRADIENT_BASED = True
    # Vertex JSON fields of the method and of its BlurBaselineConfig.
    VERTEX_KEYS = ("stepCount", "smoothGradConfig", "blurBaselineConfig")
    BLUR_KEYS = ("maxBlurSigma",)

    def __init__(self, step_count=50, smooth_grad=None, max_blur_sigma=None):
        where = type(self).__name__
        self.step_count = check_int(where, "step_count", step_count, 1, 100)
        self.smooth_grad = SmoothGrad.coerce(smooth_grad, where, "smooth_grad")
        self.max_blur_sigma = check_number(where, "max_blur_sigma", max_blur_sigma, 0,
                                           low_open=True, optional=True)

    def get_config(self):
        return {"step_count": self.step_count,
                "smooth_grad": self.smooth_grad.get_config() if self.smooth_grad else None,
                "max_blur_sigma": self.max_blur_sigma}

    def to_vertex(self):
        out = {"stepCount": self.step_count}
        if self.smooth_grad is not None:
            out["smoothGradConfig"] = self.smooth_grad.to_vertex()
        if self.max_blur_sigma is not None:
            out["blurBaselineConfig"] = {"maxBlurSigma": self.max_blur_sigma}
        return out

    @classmethod
    def from_vertex(cls, body, where=None):
        where = where or cls.VERTEX_KEY
        check_known_keys(where, body, cls.VERTEX_KEYS)
        smooth = body.get("smoothGradConfig")
        blur = body.get("blurBaselineConfig")
        if blur is not None:
            check_known_keys(f"{where}.blurBaselineConfig", blur, cls.BLUR_KEYS)
        return cls(
            step_count=body.get("stepCount"),
            smooth_grad=None if smooth is None else SmoothGrad.from_vertex(
                smooth, f"{where}.smoothGradConfig"),
            max_blur_sigma=None if blur is None else blur.get("maxBlurSigma"),
        )


class IntegratedGradients(_GradientMethod):
    """Integrated gradients: path integral of gradients from the baselines.

    Example:
        IntegratedGradients(step_count=100, smooth_grad=SmoothGrad(noise_sigma=0.1))

    Args:
        step_count: steps of the path integral, 1 to 100 (default 50); raise
            it when the approximation error exceeds 5%.
        smooth_grad: optional `SmoothGrad` (or its config) (default None).
        max_blur_sigma: use blurred-image baselines up to this sigma, > 0
            (default None: no blur baseline).
    """

    VERTEX_KEY = "integratedGradientsAttribution"


class XRAI(_GradientMethod):
    """XRAI: integrated gradients aggregated over image regions (images only).

    Example:
        XRAI(step_count=50)

    Args:
        step_count: steps of the path integral, 1 to 100 (default 50).
        smooth_grad: optional `SmoothGrad` (or its config) (default None).
        max_blur_sigma: use blurred-image baselines up to this sigma, > 0
            (default None).
    """

    VERTEX_KEY = "xraiAttribution"
    IMAGES_ONLY = True


class SampledShapley(AttributionMethod):
    """Sampled Shapley: averages marginal contributions over feature orders.

    Needs no gradients, so it suits non-differentiable inputs (ints, strings,
    lookups, trees).

    Example:
        SampledShapley(path_count=20)

    Args:
        path_count: feature permutations sampled, 1 to 50 (default 10).
    """

    VERTEX_KEY = "sampledShapleyAttribution"
    VERTEX_FIELDS = {"path_count": "pathCount"}

    def __init__(self, path_count=10):
        self.path_count = check_int("SampledShapley", "path_count", path_count, 1, 50)


class Examples(AttributionMethod):
    """Example-based explanations (`examples`): nearest neighbours, not attributions.

    Vertex returns the training examples closest to an instance in the
    model's latent space (`metadata.latentSpaceSource`). Declared here so
    that exports carrying it validate; it takes no gradients and is not
    computed by local `explain`.

    Example:
        Examples(neighbor_count=5, presets={"query": "FAST", "modality": "TABULAR"},
                 example_gcs_source={"dataFormat": "JSONL",
                                     "gcsSource": {"uris": ["gs://bucket/examples.jsonl"]}})

    Args:
        neighbor_count: neighbours returned per query, >= 1 (default None:
            the service's default).
        example_gcs_source: `{"dataFormat": "JSONL", "gcsSource": {"uris":
            [...]}}`, the examples to search (default None).
        nearest_neighbor_search_config: the index configuration, free JSON
            (default None); give it or `presets`, not both.
        presets: `{"query": "PRECISE"|"FAST", "modality": "IMAGE"|"TEXT"|
            "TABULAR"}` (default None).
    """

    VERTEX_KEY = "examples"
    VERTEX_FIELDS = {
        "neighbor_count": "neighborCount",
        "example_gcs_source": "exampleGcsSource",
        "nearest_neighbor_search_config": "nearestNeighborSearchConfig",
        "presets": "presets",
    }
    GCS_SOURCE_FIELDS = ("dataFormat", "gcsSource")
    PRESETS_FIELDS = ("query", "modality")
    DATA_FORMATS = ("JSONL",)
    QUERIES = ("PRECISE", "FAST")
    MODALITIES = ("IMAGE", "TEXT", "TABULAR")

    def __init__(self, neighbor_count=None, example_gcs_source=None,
                 nearest_neighbor_search_config=None, presets=None):
        where = "Examples"
        self.neighbor_count = check_int(where, "neighbor_count", neighbor_count, 1, optional=True)
        self.example_gcs_source = _check_gcs_source(where, example_gcs_source)
        if nearest_neighbor_search_config is not None and presets is not None:
            raise SpecError(describe(where, "presets", presets,
                                     "give it or nearest_neighbor_search_config, not both"))
        self.nearest_neighbor_search_config = nearest_neighbor_search_config
        self.presets = _check_presets(where, presets)


def _check_gcs_source(where, value):
    if value is None:
        return None
    field = "example_gcs_source"
    check_known_keys(f"{where} {field}", value, Examples.GCS_SOURCE_FIELDS)
    check_choice(where, f"{field}.dataFormat", value.get("dataFormat"), Examples.DATA_FORMATS,
                 optional=True)
    source = value.get("gcsSource")
    if source is not None:
        check_known_keys(f"{where} {field}.gcsSource", source, ("uris",))
        check_str_list(where, f"{field}.gcsSource.uris", source.get("uris"))
    return value


def _check_presets(where, value):
    if value is None:
        return None
    check_known_keys(f"{where} presets", value, Examples.PRESETS_FIELDS)
    check_choice(where, "presets.query", value.get("query"), Examples.QUERIES, optional=True)
    check_choice(where, "presets.modality", value.get("modality"), Examples.MODALITIES)
    return value


METHODS = (IntegratedGradients, SampledShapley, XRAI, Examples)
BY_VERTEX_KEY = {cls.VERTEX_KEY: cls for cls in METHODS}
_BY_NAME = {
    **{cls.__name__.lower(): cls for cls in METHODS},
    **{key.lower(): cls for key, cls in BY_VERTEX_KEY.items()},
    "integrated_gradients": IntegratedGradients,
    "sampled_shapley": SampledShapley,
}


def method_keys(parameters):
    """The attribution method keys present in `parameters`, in order."""
    return [key for key in parameters if key in BY_VERTEX_KEY]


def check_one_method(parameters):
    """Returns the single method key; refuses none or several.

    Google's client keeps the last of several methods silently; we refuse.
    """
    keys = method_keys(parameters)
    if len(keys) != 1:
        raise SpecError(describe(
            "parameters", "attribution method", keys,
            f"expected exactly one of {list(BY_VERTEX_KEY)}"
            + (" (Google's client would silently keep only the last)" if keys else "")))
    return keys[0]


def method_from_parameters(parameters):
    """The `AttributionMethod` of a parameters dict (exactly one method)."""
    key = check_one_method(parameters)
    return BY_VERTEX_KEY[key].from_vertex(parameters[key], where=key)



def get(identifier, where="ExplanationSpec", field="method"):
    """An `AttributionMethod` from an instance, a name, a config or Vertex JSON.

    Accepts None (integrated gradients, 50 steps), an instance, a name
    ("integrated_gradients", "SampledShapley", "xraiAttribution", ...), a
    Keras-style `{"class_name": ..., "config": {...}}`, or the Vertex form
    `{"integratedGradientsAttribution": {"stepCount": 50}}` naming exactly one
    method.
    """
    if identifier is None:
        return IntegratedGradients()
    if isinstance(identifier, AttributionMethod):
        return identifier
    if isinstance(identifier, str):
        return _class_named(identifier, where, field)()
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            check_known_keys(f"{where} {field}", identifier, ("class_name", "config"))
            cls = _class_named(identifier["class_name"], where, field)
            return cls.from_config(identifier.get("config") or {})
        check_known_keys(f"{where} {field}", identifier, BY_VERTEX_KEY)
        return method_from_parameters(identifier)
    raise type_error(where, field, identifier,
                     "expected an attribution method object, its name, or a dict config")


def _class_named(name, where, field):
    key = name.lower() if isinstance(name, str) else name
    if key not in _BY_NAME:
        raise spec_error(where, field, name,
                         f"expected one of {[cls.__name__ for cls in METHODS]}")
    return _BY_NAME[key]


def serialize(method):
    """Keras-style `{"class_name", "config"}` of a method."""
    return {"class_name": type(method).__name__, "config": method.get_config()}
