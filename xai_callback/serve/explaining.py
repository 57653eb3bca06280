"""An `:explain` request (Vertex AI or KServe V1) -> the explainer call that answers it.

Body: `instances` (or columnar `inputs`), optional `parameters` and
`explanationSpecOverride` (Vertex's `ExplainRequest`). `parameters` become
keyword options of `ExportExplainer.explain_instances`, camelCase or
snake_case (`{"method": "sampled-shapley", "pathCount": 10}`); options the
explainer does not know are refused by it with their name.
`explanationSpecOverride.parameters` is merged over the export's stored
explanation parameters (a different `...Attribution` replaces the stored
method, which Vertex does not allow but a local explainer can do), and
`explanationSpecOverride.metadata.inputs.{feature}.inputBaselines` replace a
feature's baselines. Each request gets its own shallow copy of the explainer,
so overrides never leak into other requests and compiled traces are shared.
"""

import copy
import inspect
import math
import re
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xai_callback.errors import ExportVerificationError, InputError, SignatureError, SpecError, short_message
from xai_callback.explain.explainer import Explainer
from xai_callback.explain.settings import DEFAULT_PARAMETERS, GENERAL_OPTIONS, default_metadata
from xai_callback.serve.codec import COLUMNAR_KEY, ROW_KEY, decode, instances_of, request_object
from xai_callback.serve.errors import ServeError
from xai_callback.spec.metadata import attributed_fields
from xai_callback.spec.options import OPTIONS as METHOD_OPTIONS
from xai_callback.signatures.specs import signature_io

EXPLAIN_KEYS = (ROW_KEY, COLUMNAR_KEY, "parameters", "explanationSpecOverride", "deployedModelId")
# Options a request must not set: they are not JSON values.
REFUSED_OPTIONS = ("progress", "validate")
OVERRIDE_KEYS = ("parameters", "metadata", "examplesOverride")
GENERAL_PARAMETERS = ("topK", "outputIndices")
# What a request's `parameters` may set: `explain`'s keywords and every method's settings.
KNOWN_OPTIONS = frozenset(
    {name for name, p in inspect.signature(Explainer.explain).parameters.items()
     if name not in ("self", "inputs") and p.kind is not p.VAR_KEYWORD}
    | set(GENERAL_OPTIONS) | set(METHOD_OPTIONS)) - set(REFUSED_OPTIONS)


def explain_call(model, body, limits=None, booleans=False):
    """`(run, method)`: `run(progress)` computes the `ExplainResponse` dict of `body` on
    `model`; `method` names the attribution method (for metrics).

    Args:
        limits: `limits.ExplanationLimits` the request is held to (None: none).
        booleans: the body holds a JSON true/false (`codec.booleans_in`).

    Raises:
        ServeError: 400 for a body that does not fit (named key), settings
            past the limits, or a model that cannot be explained.
    """
    body = request_object(body, EXPLAIN_KEYS)
    instances, row_format = instances_of(body)
    if model.explainer is None:
        raise ServeError(400, f"Version {model.version} cannot be explained: {model.explain_problem}",
                         google_status="FAILED_PRECONDITION")
    options = explain_options(body.get("parameters"))
    override = body.get("explanationSpecOverride")
    explainer = overridden_explainer(model.explainer, override)
    if limits is not None:
        limits.check(options, (override or {}).get("parameters") if isinstance(override, Mapping) else None,
                     explainer.parameters or DEFAULT_PARAMETERS, _count(instances))
    # The explainer's instances are its instance signature's inputs: decoded here, on the
    # loop, so that errors name the instance and key as predict's do.
    arrays = decode(instances, row_format, model.inputs(model.explainer.instance_signature), booleans)

    def run(progress=None):
        tensors = {key: tf.constant(value) for key, value in arrays.items()}
        response = explainer.explain(tensors, progress=progress, **options)
        check_finite(response)
        return response.to_dict()

    return run, str(options.get("method") or _stored_method(explainer.parameters))


def _count(instances):
    """How many instances a row list or a `{key: column}` holds."""
    if isinstance(instances, Mapping):
        return max((len(v) for v in instances.values() if isinstance(v, list)), default=1)
    return len(instances)


def _stored_method(parameters):
    key = next((k for k in (parameters or DEFAULT_PARAMETERS) if k.endswith("Attribution")), "")
    return key.removesuffix("Attribution") or "integratedGradients"


def check_finite(response):
    """Refuses an explanation whose output or attributions are not finite numbers.

    JSON has no NaN or Infinity; written as null, Google's client reads a
    missing `approximationError` as 0.0, a perfect score. An instance whose
    output overflows has no meaningful attribution: it is that instance's error.
    """
    for index, explanation in enumerate(response.explanations):
        for attribution in explanation.attributions:
            values = {"instanceOutputValue": attribution.instance_output_value,
                      "baselineOutputValue": attribution.baseline_output_value,
                      "approximationError": attribution.approximation_error}
            for name, value in values.items():
                if not math.isfinite(float(value)):
                    raise ServeError(400, f"Instance {index}: the explained output "
                                          f"{attribution.output_name!r} gives {name} = {float(value)}, which "
                                          "is not a finite number; such an instance cannot be explained "
                                          "(check its values' range).")
            for feature, value in attribution.feature_attributions.items():
                if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                    raise ServeError(400, f"Instance {index}: the attribution of feature {feature!r} is "
                                          "not a finite number; such an instance cannot be explained "
                                          "(check its values' range).")


def explain_options(parameters):
    """`parameters` as snake_case keyword options of `explain_instances`."""
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ServeError(400, f"'parameters' must be a JSON object of explanation options; "
                              f"received {parameters!r}.")
    options = {}
    for key, value in parameters.items():
        name = re.sub(r"(?<!^)([A-Z])", r"_\1", str(key)).lower()
        if name in REFUSED_OPTIONS:
            raise ServeError(400, f"'parameters' cannot set {key!r}.")
        if name not in KNOWN_OPTIONS:
            raise ServeError(400, f"Unknown explanation option {key!r} in 'parameters'; it takes "
                                  f"{sorted(KNOWN_OPTIONS)} (camelCase or snake_case).")
        options[name] = value
    return options


def overridden_explainer(explainer, override):
    """`explainer`, or a copy with `explanationSpecOverride` applied."""
    if not override:
        return explainer
    request_object(override, OVERRIDE_KEYS, "'explanationSpecOverride'")
    if override.get("examplesOverride"):
        raise ServeError(400, "'examplesOverride' asks for example-based explanations, which are "
                              "not available here (feature attributions only).")
    changed = copy.copy(explainer)  # shares the compiled traces (`_compiled`)
    if override.get("parameters"):
        changed.parameters = merged_parameters(explainer.parameters, override["parameters"])
    if override.get("metadata"):
        changed.metadata = metadata_with_baselines(explainer, override["metadata"])
    return changed


def merged_parameters(stored, override):
    """The export's ExplanationParameters with `override`'s fields on top."""
    if not isinstance(override, Mapping):
        raise ServeError(400, "'explanationSpecOverride.parameters' must be a JSON object; "
                              f"received {override!r}.")
    merged = copy.deepcopy(stored if stored is not None else DEFAULT_PARAMETERS)
    for key, value in override.items():
        if key.endswith("Attribution"):
            if key not in merged:
                for old in [k for k in merged if k.endswith("Attribution")]:
                    del merged[old]
                merged[key] = {}
            if not isinstance(value, Mapping):
                raise ServeError(400, f"'explanationSpecOverride.parameters.{key}' must be a JSON "
                                      f"object; received {value!r}.")
            merged[key] = _deep_merge(merged[key], value)
        elif key in GENERAL_PARAMETERS:
            merged[key] = value
        else:
            raise ServeError(400, f"Unknown key {key!r} in 'explanationSpecOverride.parameters'; "
                                  f"it takes an ...Attribution method and {list(GENERAL_PARAMETERS)}.")
    return merged


def metadata_with_baselines(explainer, override):
    """The explainer's metadata with the overridden baselines (see `_overridden_baselines`)."""
    inputs = override.get("inputs") if isinstance(override, Mapping) else None
    if not isinstance(inputs, Mapping) or set(override) - {"inputs"}:
        raise ServeError(400, "'explanationSpecOverride.metadata' takes only "
                              '{"inputs": {FEATURE: {"inputBaselines": [...]}}}; '
                              f"received {override!r}.")
    metadata = copy.deepcopy(explainer.metadata or _default_metadata(explainer))
    features = metadata.get("inputs") or {}
    for name, entry in inputs.items():
        if name not in features:
            raise ServeError(400, f"'explanationSpecOverride.metadata.inputs' names feature "
                                  f"{name!r}, which the model does not have (features: "
                                  f"{sorted(features)}).")
        if not isinstance(entry, Mapping) or set(entry) - {"inputBaselines"}:
            raise ServeError(400, f"The override of feature {name!r} may set only 'inputBaselines'; "
                                  f"received {entry!r}.")
        if "inputBaselines" in entry:
            if not isinstance(entry["inputBaselines"], list) or not entry["inputBaselines"]:
                raise ServeError(400, f"'inputBaselines' of feature {name!r} must be a non-empty "
                                      f"list; received {entry['inputBaselines']!r}.")
            features[name][_overridden_baselines(name, features[name])] = entry["inputBaselines"]
    return metadata


def _overridden_baselines(name, feature):
    """The baselines field an `inputBaselines` override of `feature` sets.

    Vertex overrides only `inputBaselines`. A feature attributed on an
    encoded tensor uses `encodedBaselines`; when that tensor is its input
    tensor (a split embedding: both name the `xai_model` input), the
    override's baselines are that tensor's.
    """
    tensor_field, baselines_field = attributed_fields(feature)
    if feature[tensor_field] != feature.get("inputTensorName"):
        raise ServeError(400, f"Feature {name!r} is attributed on its encoded tensor "
                              f"{feature[tensor_field]!r} with 'encodedBaselines', which an "
                              "'inputBaselines' override cannot set: its input "
                              f"{feature.get('inputTensorName')!r} is another tensor. Change the "
                              "export's metadata instead.")
    return baselines_field


def _default_metadata(explainer):
    inputs, outputs = signature_io(explainer.model_fn)
    return default_metadata(inputs, outputs)


def _deep_merge(base, extra):
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def explain_error(error):
    """An exception of an explanation as the `ServeError` to answer.

    The client's: this package's errors about the request (instances, settings,
    the chosen method), inputs TensorFlow refuses (InvalidArgument), and an
    export that cannot be explained (FAILED_PRECONDITION). Anything else failed
    here (inside TensorFlow, or a bug): a 500, with TensorFlow's first line.
    """
    if isinstance(error, ServeError):
        return error
    if isinstance(error, ExportVerificationError):
        return ServeError(400, str(error), google_status="FAILED_PRECONDITION")
    if isinstance(error, (SpecError, InputError, SignatureError)):
        return ServeError(400, str(error))
    if isinstance(error, tf.errors.InvalidArgumentError):
        return ServeError(400, "The model rejected the input: " + short_message(error))
    return ServeError(500, f"The explanation failed on the server ({type(error).__name__}: "
                           f"{short_message(error)}); the server log has the details.")
