"""Attribution methods: `IntegratedGradients`, `SampledShapley`, `XRAI`, `SmoothGrad`.

The one definition of each method's settings (fields, defaults, limits) and
the registry of methods, without TensorFlow: `explain` builds its settings
from these objects, and the command line lists `METHOD_NAMES` without
importing TensorFlow. Each method's algorithm is one module of
`xai_callback/explain/methods/`, bound to its class here.
"""

from xai_callback.errors import MethodNotSupportedError, SpecError
from xai_callback.spec.base import SpecObject
from xai_callback.spec.limits import coerce_limits
from xai_callback.spec.smoothgrad import SmoothGrad, smooth_config_with
from xai_callback.spec.fields import (
    check_choice,
    check_int,
    check_known_keys,
    check_number,
    check_str_list,
    describe,
    spec_error,
    type_error,
)

# The defaults, written once: Vertex AI's documented starting points (and
# `smoothgrad.DEFAULT_NOISY_SAMPLE_COUNT`).
DEFAULT_STEP_COUNT = 50
DEFAULT_PATH_COUNT = 10


class AttributionMethod(SpecObject):
    """Base of the attribution methods.

    Class attributes (what the registry knows without TensorFlow):
        VERTEX_KEY: its field in ExplanationParameters.
        NAME: what users pass as `method=` / `--method`.
        GRADIENT_BASED: needs differentiable (float) inputs.
        IMAGES_ONLY: explains image features only.
        LOCAL: computed by `xai_callback.explain` (and so by `serve`).
        IN_GRAPH: computed by the `xai_explain` signature too; when not,
            `NOT_IN_GRAPH` says why.
        EXTRA: the pip extra its local computation needs (None: none).
        NAMES: `{name: the Python options it takes}`: the names users pass
            as `method=` for this class (its variants too) and, for each, the
            options (`explain(..., step_count=...)`) that set its fields.
    """

    VERTEX_KEY = None
    NAME = None
    GRADIENT_BASED = False
    IMAGES_ONLY = False
    LOCAL = True
    IN_GRAPH = True
    NOT_IN_GRAPH = None
    EXTRA = None
    NAMES = {}

    @property
    def name(self):
        """The method's name as users pass it (e.g. "smoothgrad" for integrated
        gradients with a `SmoothGrad` config)."""
        return self.NAME

    def in_graph_problem(self):
        """Why `xai_explain` cannot compute this method with these settings, or None."""
        return None if self.IN_GRAPH else self.NOT_IN_GRAPH

    @classmethod
    def with_options(cls, config, options, name, chosen, limits, spelling):
        """The method called `name`: `config` (the stored one's, or `{}`) with the
        `options` of `NAMES[name]` on top (see `spec.options.method_with_options`).

        Args:
            chosen: whether the caller named the method (rather than keeping
                the stored one).
            limits: the `Limits` its counts keep.
            spelling: how messages name the options.
        """
        merged = {k: v for k, v in {**config, **options}.items() if v is not None}
        return cls.from_config(merged, limits=limits)

    def to_parameters(self):
        """`{VERTEX_KEY: body}`, the method's part of ExplanationParameters."""
        return {self.VERTEX_KEY: self.to_vertex()}


class _GradientMethod(AttributionMethod):
    """Shared fields of integrated gradients and XRAI."""

    GRADIENT_BASED = True
    # Vertex JSON fields of the method and of its BlurBaselineConfig.
    VERTEX_KEYS = ("stepCount", "smoothGradConfig", "blurBaselineConfig")
    BLUR_KEYS = ("maxBlurSigma",)
    SMOOTH_OPTIONS = SmoothGrad.OPTIONS

    def __init__(self, step_count=DEFAULT_STEP_COUNT, smooth_grad=None, max_blur_sigma=None, *,
                 limits=None):
        where = type(self).__name__
        limits = coerce_limits(limits)
        self.step_count = limits.count(where, "step_count", step_count, "max_step_count")
        if isinstance(smooth_grad, dict):
            smooth_grad = SmoothGrad.from_config(smooth_grad, limits=limits)
        self.smooth_grad = SmoothGrad.coerce(smooth_grad, where, "smooth_grad")
        self.max_blur_sigma = check_number(where, "max_blur_sigma", max_blur_sigma, 0,
                                           low_open=True, optional=True)

    def get_config(self):
        return {"step_count": self.step_count,
                "smooth_grad": self.smooth_grad.get_config() if self.smooth_grad else None,
                "max_blur_sigma": self.max_blur_sigma}

    @classmethod
    def with_options(cls, config, options, name, chosen, limits, spelling):
        """Options on the stored fields; "smoothgrad" needs a noise, "blur-ig" a
        sigma, and a chosen "integrated-gradients" has neither."""
        smooth = smooth_config_with(config.get("smooth_grad"), options)
        blur = options.get("max_blur_sigma", config.get("max_blur_sigma"))
        if name == IntegratedGradients.SMOOTHGRAD and smooth is None:
            per_feature = (f" or {spelling('feature_noise_sigma')} ({{feature name: sigma}})"
                           if spelling.has("feature_noise_sigma") else "")
            raise SpecError(f"method 'smoothgrad' needs a noise: pass {spelling('noise_sigma')} "
                            "(one sigma for every feature, e.g. 0.1 for inputs scaled to [0, 1])"
                            f"{per_feature}.")
        if name == IntegratedGradients.BLUR_IG and blur is None:
            raise SpecError(f"method 'blur-ig' needs {spelling('max_blur_sigma')}: the sigma (in "
                            "pixels) of the most blurred image, its baseline, e.g. 10.")
        if chosen and name in (IntegratedGradients.NAME, IntegratedGradients.BLUR_IG):
            smooth = None
        if chosen and name in (IntegratedGradients.NAME, IntegratedGradients.SMOOTHGRAD):
            blur = None
        step_count = options.get("step_count", config.get("step_count"))
        return cls(**({} if step_count is None else {"step_count": step_count}),
                   smooth_grad=smooth, max_blur_sigma=blur, limits=limits)

    def to_vertex(self):
        out = {"stepCount": self.step_count}
        if self.smooth_grad is not None:
            out["smoothGradConfig"] = self.smooth_grad.to_vertex()
        if self.max_blur_sigma is not None:
            out["blurBaselineConfig"] = {"maxBlurSigma": self.max_blur_sigma}
        return out

    @classmethod
    def from_vertex(cls, body, where=None, limits=None):
        where = where or cls.VERTEX_KEY
        check_known_keys(where, body, cls.VERTEX_KEYS)
        smooth = body.get("smoothGradConfig")
        blur = body.get("blurBaselineConfig")
        if blur is not None:
            check_known_keys(f"{where}.blurBaselineConfig", blur, cls.BLUR_KEYS)
        # Named by its JSON field and its argument.
        coerce_limits(limits).count(f"{where}.stepCount", "step_count", body.get("stepCount"),
                                    "max_step_count")
        return cls(
            step_count=body.get("stepCount"),
            smooth_grad=None if smooth is None else SmoothGrad.from_vertex(
                smooth, f"{where}.smoothGradConfig", limits=limits),
            max_blur_sigma=None if blur is None else blur.get("maxBlurSigma"),
            limits=limits,
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
    NAME = "integrated-gradients"
    # Names of the variants: with a SmoothGrad config, with a blurred baseline.
    SMOOTHGRAD, BLUR_IG = "smoothgrad", "blur-ig"
    NAMES = {NAME: ("step_count",),
             SMOOTHGRAD: ("step_count", *_GradientMethod.SMOOTH_OPTIONS),
             BLUR_IG: ("step_count", "max_blur_sigma")}

    @property
    def name(self):
        if self.smooth_grad is not None:
            return self.SMOOTHGRAD
        return self.BLUR_IG if self.max_blur_sigma is not None else self.NAME

    def in_graph_problem(self):
        if self.max_blur_sigma is not None:
            return ("its blurred baselines (blurBaselineConfig) are computed per instance with "
                    "scipy's Gaussian filter (PAIR saliency), which is not a graph op")
        return None


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
    NAME = "xrai"
    NAMES = {NAME: ("step_count", *_GradientMethod.SMOOTH_OPTIONS, "max_blur_sigma")}
    IMAGES_ONLY = True
    IN_GRAPH = False
    NOT_IN_GRAPH = ("its image segmentation (Felzenszwalb's, in PAIR saliency and scikit-image) is "
                    "not a graph op, so no SavedModel signature can compute it")
    EXTRA = "image"


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
    NAME = "sampled-shapley"
    VERTEX_FIELDS = {"path_count": "pathCount"}
    NAMES = {NAME: ("path_count",)}

    def __init__(self, path_count=DEFAULT_PATH_COUNT, *, limits=None):
        self.path_count = coerce_limits(limits).count("SampledShapley", "path_count", path_count,
                                                      "max_path_count")

    @classmethod
    def from_vertex(cls, body, where=None, limits=None):
        kwargs = cls.vertex_kwargs(body, where or cls.VERTEX_KEY)
        coerce_limits(limits).count(f"{where or cls.VERTEX_KEY}.pathCount", "path_count",
                                    kwargs.get("path_count"), "max_path_count")
        return cls(**kwargs, limits=limits)


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
    NAME = "examples"
    LOCAL = False
    IN_GRAPH = False
    NOT_IN_GRAPH = "example-based explanations search a Vertex AI index of training examples"
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

    @classmethod
    def from_vertex(cls, body, where=None, limits=None):
        return cls(**cls.vertex_kwargs(body, where or cls.VERTEX_KEY))


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


# -- the registry: every method, in one place, without TensorFlow ------------

METHODS = (IntegratedGradients, SampledShapley, XRAI, Examples)
BY_VERTEX_KEY = {cls.VERTEX_KEY: cls for cls in METHODS}
# What users pass as `method=` / `--method`, and the class each name makes.
# "smoothgrad" and "blur-ig" are integrated gradients with a SmoothGrad config
# or a blurred baseline (Vertex AI's smoothGradConfig, blurBaselineConfig).
METHOD_NAMES = {name: cls for cls in METHODS for name in cls.NAMES}
# Other spellings users type for those names.
NAME_ALIASES = {"ig": "integrated-gradients", "shapley": "sampled-shapley",
                "smooth-grad": "smoothgrad", "blurig": "blur-ig"}
_BY_NAME = {
    **{cls.__name__.lower(): cls for cls in METHODS},
    **{key.lower(): cls for key, cls in BY_VERTEX_KEY.items()},
    "integrated_gradients": IntegratedGradients,
    "sampled_shapley": SampledShapley,
    "integrated-gradients": IntegratedGradients,
    "sampled-shapley": SampledShapley,
}


def method_name(name, spelling=None):
    """The registered name (`METHOD_NAMES`) that `name` means (an alias, any case,
    `_` for `-`, or a Vertex parameters key such as "xraiAttribution").

    Raises:
        MethodNotSupportedError: naming `name` (spelt by `spelling`, a
            `spec.options.Spelling`) and the names there are.
    """
    wanted = name.lower().replace("_", "-") if isinstance(name, str) else name
    wanted = NAME_ALIASES.get(wanted, wanted)
    if wanted in METHOD_NAMES:
        return wanted
    by_key = {key.lower(): cls for key, cls in BY_VERTEX_KEY.items()}
    if wanted in by_key and by_key[wanted].LOCAL:
        return by_key[wanted].NAME
    option = spelling("method", name) if spelling is not None else f"method={name!r}"
    raise MethodNotSupportedError(f"Unknown explanation method {option}; choose one of "
                                  f"{list(METHOD_NAMES)}.")


def check_in_graph(method):
    """Refuses a method `xai_explain` (`explain_signature=True`) cannot compute, with why.

    Raises:
        MethodNotSupportedError: naming the method, the reason, and the routes
            that do explain it.
    """
    problem = method.in_graph_problem()
    if problem is not None:
        raise MethodNotSupportedError(
            f"explain_signature=True cannot compute {method.name} ({method.VERTEX_KEY}): "
            f"{problem}. Export without explain_signature (the Python explainer, "
            "`xai-callback explain` and `xai-callback serve` compute it), or choose a method a "
            "signature can run (integrated gradients, SmoothGrad, sampled Shapley).")


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


def method_from_parameters(parameters, limits=None):
    """The `AttributionMethod` of a parameters dict (exactly one method), its
    counts within `limits` (default None: Vertex AI's)."""
    key = check_one_method(parameters)
    return BY_VERTEX_KEY[key].from_vertex(parameters[key], where=key, limits=limits)


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
