"""The explainer: preprocess, pick outputs, run a method, build the response.

Works on any callables, so the same spec can explain an export's signatures
and a live Keras model (`lambda **kw: {"out": model(kw)}`) alike.
"""

import warnings
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xai_callback.errors import USAGE_ERRORS, ExplanationFailedError, InputError, SpecError, short_message
from xai_callback.explain import engine
from xai_callback.explain.errors import BaselineError
from xai_callback.explain.granularity import FeatureLayout, check_granularity
from xai_callback.explain.methods import algorithm_for
from xai_callback.explain.methods.algorithm import APPROXIMATION_ERROR_WARNING, MethodResult
from xai_callback.explain.precision import computes_in_float16, float16_advice, rounding_share
from xai_callback.explain.result import Attribution, Explanation, ExplainResponse, to_json_value
from xai_callback.explain.settings import default_metadata, settings_from_vertex
from xai_callback.explain.units import explain_units
from xai_callback.signatures.inputs import as_input_dict
from xai_callback.signatures.specs import signature_io
from xai_callback.spec.fields import check_int
from xai_callback.spec.limits import LOCAL_LIMITS, coerce_limits
from xai_callback.spec.options import PYTHON_SPELLING

# |f(x) - f(baseline)| at most this share of |f| for every unit: the model
# ignores what is explained, and attributions are numerical noise.
INSENSITIVE_CHANGE = 1e-6


class Explainer:
    """Computes explanations for a model function and a Vertex explanation spec.

    Example:

    ```python
    explainer = Explainer(lambda **kw: {"out": model(kw["x"])}, metadata, parameters)
    response = explainer.explain({"x": np.array([[1.0, 2.0]])})
    ```

    Args:
        model_fn: `model_fn(**inputs) -> {key: tensor}`, the differentiable
            model (`xai_model`).
        metadata: Vertex `ExplanationMetadata` dict; None: every model input a
            numeric feature with baseline 0, the single output.
        parameters: Vertex `ExplanationParameters` dict; None: integrated
            gradients with 50 steps.
        preprocess_fn: optional `preprocess_fn(**raw) -> {key: tensor}` feeding
            `model_fn` (`xai_preprocess`).
        serving_fn: optional `serving_fn(**raw) -> {key: tensor}` whose outputs
            are reported as `predictions` (default: `model_fn`'s outputs).
        xai_features: optional content of `assets.extra/xai_features.json`
            (raw inputs behind each feature, token vocabularies); None: the
            metadata alone.
        limits: the `spec.limits.Limits` of the methods' counts (default
            None: `LOCAL_LIMITS`, no cap; `VERTEX_LIMITS` for Vertex AI's).
        spelling: how messages name options (`spec.options.Spelling`;
            default None: as Python keywords).

    Raises (from `explain`): usage errors as `ValueError`/`TypeError`
    (`SpecError`, `InputError`, `MethodNotSupportedError`, `BaselineError`);
    `xai_callback.errors.ExplanationFailedError` when TensorFlow fails while
    computing an explanation from valid settings (an internal error).
    """

    def __init__(self, model_fn, metadata=None, parameters=None, preprocess_fn=None,
                 serving_fn=None, xai_features=None, limits=None, spelling=None):
        self.model_fn = model_fn
        self.metadata = metadata
        self.parameters = parameters
        self.preprocess_fn = preprocess_fn
        self.serving_fn = serving_fn
        self.xai_features = xai_features
        self.limits = LOCAL_LIMITS if limits is None else coerce_limits(limits)
        self.spelling = spelling or PYTHON_SPELLING
        self._compiled = {}  # the traced graph code (method steps, units, report), reused by every call
        self._float16 = None

    def explain(self, inputs, *, method=None, granularity="raw", max_rows_per_call=None, seed=0,
                progress=None, **overrides):
        """Explains a batch.

        Args:
            inputs: the inputs of `preprocess_fn` (or `model_fn`) as
                `model.predict` takes them: a dict by input name, a list in
                input order, an array for a single input, scalars for inputs
                of shape `[None, 1]` (see `xai_callback.signatures.inputs.as_input_dict`).
            method: method name overriding the parameters (e.g.
                "integrated-gradients", "sampled-shapley", "smoothgrad").
            granularity: "raw" (default): one attribution per raw feature
                (one-hot slots and embedding dimensions summed, one per token,
                groups summed); "encoded": one per element of each explained
                tensor, as Vertex AI's service returns them.
            max_rows_per_call: rows per model call (memory bound); None: sized
                so one call's inputs hold about 1M values (at most 8192 rows).
            seed: seed for Shapley permutations and SmoothGrad noise.
            progress: optional `progress(rows_done, rows_total)` callback.
            **overrides: the method's options and `top_k`, `output_indices`,
                `output_key` (see `xai_callback.explain.settings.settings_from_vertex`).

        Returns:
            `ExplainResponse`.
        """
        check_granularity(granularity)  # before the model runs
        if max_rows_per_call is not None:
            check_int("explain", self.spelling.name("max_rows_per_call"), max_rows_per_call, 1)
        raw = self._input_tensors(inputs)
        model_inputs, model_outputs = self._run_model(raw)
        metadata = self.metadata or default_metadata(model_inputs, model_outputs)
        settings = settings_from_vertex(metadata, self.parameters, {"method": method, **overrides},
                                        self.limits, self.spelling)
        algorithm = algorithm_for(settings.method, self.spelling)
        layout = FeatureLayout(settings.features, granularity, self.xai_features)
        output_key = check_output(settings.output, model_outputs)
        output = np.asarray(model_outputs[output_key])
        baselines, feature_names = feature_baselines(settings.features, model_inputs)
        check_output_indices(settings.output_indices, output.shape[1:], output_key)
        try:
            unit_instance, unit_index, result, reported = explain_units(
                _run, algorithm, layout, self.model_fn, output_key, model_inputs,
                model_outputs[output_key], baselines,
                feature_names=feature_names,
                top_k=settings.top_k, output_indices=settings.output_indices, seed=seed,
                compile_fn=engine.compiled_call(self._compiled),
                max_rows_per_call=max_rows_per_call, progress=_reporting(progress),
                compiled=self._compiled)
        except _ProgressStopped as stop:  # the caller's own callback stopped it (a deadline)
            raise stop.error from None
        except USAGE_ERRORS:
            raise
        except Exception as e:  # TensorFlow failed on valid settings: not the caller's doing
            raise ExplanationFailedError(
                f"{algorithm.describe()} failed while computing the attributions of output "
                f"'{output_key}' ({type(e).__name__}: {short_message(e)}). This is an internal "
                "error, not a mistake in the request: please report it with this message.",
                cause=e, method=algorithm.describe()) from e
        units = [(int(i), tuple(int(j) for j in index))
                 for i, index in zip(np.asarray(unit_instance), np.asarray(unit_index))]
        result = MethodResult(**result)
        reported = {name: np.asarray(value) for name, value in reported.items()}
        rounding = None
        if self._computes_in_float16(model_inputs, model_outputs, output_key):
            rounding = rounding_share(
                [output[(i,) + index] for i, index in units], result.baseline_output)
        _warn_if_imprecise(result.approximation_error, algorithm, rounding)
        _warn_if_insensitive(units, result, output, reported)
        serving_outputs = self.serving_fn(**raw) if self.serving_fn else model_outputs
        tokens = {}
        if layout.has_tokens:
            found = engine.compiled_call(self._compiled)(
                ("tokens", layout.cache_key()), layout.tokens, (model_inputs,))
            tokens = {name: np.vectorize(lambda t: t.decode("utf-8", "replace"), otypes=[object])(
                np.asarray(value)) for name, value in found.items()}
        explanations = _explanations(units, result, reported, output, model_outputs, settings)
        shown = layout.display_inputs(model_inputs, raw, tokens)
        for i, explanation in enumerate(explanations):
            explanation.inputs = {name: value[i] for name, value in shown.items()}
            explanation.tokens = {name: list(value[i]) for name, value in tokens.items()}
        return ExplainResponse(
            explanations=explanations,
            predictions=_predictions(serving_outputs),
            method=algorithm.describe(),
            metadata=metadata,
            granularity=granularity,
        )

    def _run_model(self, raw):
        """`(xai_model inputs, xai_model outputs)` of the instances.

        The model refusing the instances' values (e.g. a lookup without an
        OOV index given an unknown string) is the caller's error.
        """
        try:
            model_inputs = dict(self.preprocess_fn(**raw)) if self.preprocess_fn else raw
            return model_inputs, dict(self.model_fn(**model_inputs))
        except tf.errors.InvalidArgumentError as e:
            raise InputError(f"The model cannot process these instances "
                             f"({type(e).__name__}: {short_message(e)}).") from e

    def _input_tensors(self, inputs):
        """`{key: tf.Tensor}` for the first function, from what users naturally pass."""
        first = self.preprocess_fn or self.model_fn
        if hasattr(first, "structured_input_signature"):
            owner = "xai_preprocess" if self.preprocess_fn is not None else "xai_model"
            return as_input_dict(inputs, signature_io(first)[0], owner, ordered=False)
        if not isinstance(inputs, Mapping):
            raise TypeError(
                "inputs must be a dict {input name: batch} for a Python model function; "
                f"received {type(inputs).__name__}.")
        return {key: tf.convert_to_tensor(value) for key, value in inputs.items()}

    def _computes_in_float16(self, model_inputs, model_outputs, output_key):
        if self._float16 is None:
            self._float16 = (
                model_outputs[output_key].dtype == tf.float16
                or any(t.dtype == tf.float16 for t in model_inputs.values())
                or computes_in_float16(self.model_fn))
        return self._float16


def _run(problem, method, **report):
    """`engine.run`; a baseline the model cannot process is named, not a traceback."""
    try:
        return engine.run(problem, method, **report)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
            tf.errors.FailedPreconditionError):
        failing = _failing_baseline(problem)
        if failing is None:
            raise
        feature, baseline, error = failing
        values = np.ravel(baseline)
        # A broadcast scalar baseline is shown as the scalar the metadata holds.
        shown = to_json_value(values[0] if values.size and (values == values[0]).all() else baseline)
        raise BaselineError(
            f"Baseline {shown!r} of feature '{feature}' cannot be processed by the model "
            f"({type(error).__name__}: {short_message(error).rstrip('.')}). Give a baseline "
            "the model accepts (for a lookup: a vocabulary value, or its OOV token when it has "
            "one); `xai-callback validate` checks every baseline.",
            feature=feature, baseline=shown) from None


def _failing_baseline(problem):
    """`(feature name, baseline, error)` of the first baseline the model refuses, or None."""
    first = {key: value[:1] for key, value in problem.inputs.items()}
    for key, baselines in problem.baselines.items():
        for baseline in np.asarray(baselines):
            rows = {**first, key: tf.convert_to_tensor(baseline[None], first[key].dtype)}
            try:
                problem.model_fn(**rows)
            except tf.errors.OpError as e:
                return problem.feature_names[key], baseline, e
    return None


class _ProgressStopped(Exception):
    """Carries what the caller's `progress` callback raised past the internal-error wrapping."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _reporting(progress):
    """`progress` whose exceptions stay the caller's (e.g. a server's deadline), not internal errors."""
    if progress is None:
        return None

    def report(*args):
        try:
            return progress(*args)
        except Exception as e:  # noqa: BLE001 - re-raised as it was by `explain`
            raise _ProgressStopped(e) from e

    return report


def check_output(output, model_outputs):
    if output.key not in model_outputs:
        raise SpecError(
            f"Metadata output '{output.name}' names tensor '{output.key}', which the "
            f"model does not return (outputs: {sorted(model_outputs)})."
        )
    return output.key


def feature_baselines(features, model_inputs):
    """`({tensor key: [num_baselines, *example]}, {tensor key: feature name})` of
    the metadata `features`, every feature with the same number of baselines."""
    baselines = {f.tensor_key: baseline_array(f, model_inputs) for f in features}
    check_baseline_counts(features, baselines)
    return baselines, {f.tensor_key: f.name for f in features}


def baseline_array(feature, model_inputs):
    """`[num_baselines, *example_shape]` baselines of `feature` in its input's dtype.

    `model_inputs` holds tensors or `tf.TensorSpec`s; where one example's shape
    is not fully known (a signature's spec), the baselines keep their own
    shape, padded to the example's rank, and broadcast when they are used.
    """
    if feature.tensor_key not in model_inputs:
        raise SpecError(
            f"Metadata input '{feature.name}' names tensor '{feature.tensor_key}', which "
            f"is not a model input (inputs: {sorted(model_inputs)})."
        )
    value = model_inputs[feature.tensor_key]
    example = tf.TensorShape(value.shape[1:])
    dtype = object if value.dtype == tf.string else value.dtype.as_numpy_dtype
    out = []
    for baseline in feature.attributed_baselines:
        if value.dtype == tf.string:
            baseline = np.vectorize(lambda s: s.encode() if isinstance(s, str) else s,
                                    otypes=[object])(np.asarray(baseline, object))
            if not all(isinstance(b, bytes) for b in np.ravel(baseline)):
                raise SpecError(
                    f"Metadata input '{feature.name}' is the string input "
                    f"'{feature.tensor_key}', but its baseline {to_json_value(baseline)!r} is not "
                    "a string: give inputBaselines with a string the model accepts (e.g. a "
                    "lookup's OOV token or a common value).")
        array = np.asarray(baseline, dtype=dtype)
        try:
            if example.is_fully_defined():
                out.append(np.broadcast_to(array, tuple(example.as_list())))
            else:
                out.append(array.reshape((1,) * (example.rank - array.ndim) + array.shape))
        except (ValueError, TypeError) as e:
            raise SpecError(
                f"Baseline of metadata input '{feature.name}' ({np.shape(baseline)} "
                f"values) does not broadcast to one example of '{feature.tensor_key}' "
                f"{example.as_list()}: {e}."
            ) from e
    common = np.broadcast_shapes(*(a.shape for a in out))
    return np.stack([np.broadcast_to(a, common) for a in out])


def check_baseline_counts(features, baselines):
    """All features get the same number of baselines (single ones repeat)."""
    counts = {len(b) for b in baselines.values()}
    count = max(counts)
    for feature in features:
        got = len(baselines[feature.tensor_key])
        if got == 1 and count > 1:
            baselines[feature.tensor_key] = np.repeat(baselines[feature.tensor_key], count, axis=0)
        elif got != count:
            raise SpecError(
                f"Metadata input '{feature.name}' has {got} baselines but another input "
                f"has {count}: give each input one baseline or the same number."
            )


def check_output_indices(output_indices, example_shape, output_key):
    """outputIndices fit one example of the explained output."""
    for index in output_indices or ():
        index = tuple(np.atleast_1d(index).astype(int).tolist())
        if len(index) != len(example_shape) or any(
                not 0 <= i < n for i, n in zip(index, example_shape)):
            raise SpecError(
                f"outputIndices entry {list(index)} is outside output '{output_key}' "
                f"of shape {list(example_shape)} per instance."
            )


def _warn_if_imprecise(errors, method, float16_rounding=None):
    """Warns above `APPROXIMATION_ERROR_WARNING`, saying what would lower the error.

    `float16_rounding`: for float16 models, the share of the output change that
    float16 rounding alone accounts for; when it explains the error, the advice
    names it instead of a setting that cannot help.
    """
    worst = np.nanmax(errors) if np.any(np.isfinite(errors)) else np.nan
    if worst > APPROXIMATION_ERROR_WARNING:
        advice = method.precision_advice(worst)
        if float16_rounding is not None and method.needs_gradients and float16_rounding >= worst / 10:
            advice = float16_advice(float16_rounding)
        warnings.warn(
            f"approximationError reaches {worst:.3f} (> {APPROXIMATION_ERROR_WARNING}) with "
            f"{method.describe()}: {advice}.",
            stacklevel=3,
        )


def _warn_if_insensitive(units, result, output, reported):
    """Warns when f(x) == f(baseline) for every unit, or every attribution is ~0."""
    instance = np.array([float(output[(i,) + index]) for i, index in units])
    baseline = np.asarray(result.baseline_output, np.float64)
    scale = np.maximum(np.abs(instance), np.abs(baseline)) + 1e-12
    same = np.all(np.abs(instance - baseline) <= INSENSITIVE_CHANGE * scale)
    largest = np.concatenate(
        [np.abs(np.reshape(v, (len(units), -1))) for v in reported.values()], axis=1).max(axis=1)
    negligible = np.all(largest <= INSENSITIVE_CHANGE * scale)
    if same or negligible:
        what = ("f(x) == f(baseline) for every instance" if same
                else "every attribution is below 1e-6 of the output")
        warnings.warn(
            f"The explained output does not respond to the explained inputs ({what}; largest "
            f"|attribution| {float(np.max(largest)):.3g}): the model seems to ignore them, or the "
            "baselines equal the instances. The attributions are numerical noise: do not read "
            "them as importances.",
            stacklevel=3,
        )


def _explanations(units, result, reported, output, model_outputs, settings):
    by_instance = [Explanation(attributions=[]) for _ in range(output.shape[0])]
    names = _display_names(settings.output, model_outputs)
    for u, (i, index) in enumerate(units):
        by_instance[i].attributions.append(Attribution(
            baseline_output_value=float(result.baseline_output[u]),
            instance_output_value=float(output[(i,) + index]),
            feature_attributions={name: value[u] for name, value in reported.items()},
            output_index=list(index),
            output_display_name=names(i, index),
            output_name=settings.output.name,
            approximation_error=float(result.approximation_error[u]),
        ))
    return by_instance


def _display_names(output, model_outputs):
    """`names(instance, index) -> str` from indexDisplayNameMapping or displayNameMappingKey."""
    if output.index_display_name_mapping is not None:
        table = np.asarray(output.index_display_name_mapping, dtype=object)
        return lambda i, index: str(table[index]) if index else ""
    if output.display_name_mapping_key:
        if output.display_name_mapping_key not in model_outputs:
            raise SpecError(
                f"displayNameMappingKey '{output.display_name_mapping_key}' is not a model "
                f"output (outputs: {sorted(model_outputs)})."
            )
        table = np.asarray(model_outputs[output.display_name_mapping_key])
        return lambda i, index: to_json_value(table[(i,) + index]) if index else ""
    return lambda i, index: ""


def _predictions(outputs):
    """Outputs in TF Serving's row format: bare values for a single output."""
    arrays = {key: np.asarray(value) for key, value in outputs.items()}
    count = len(next(iter(arrays.values())))
    if len(arrays) == 1:
        (only,) = arrays.values()
        return [to_json_value(only[i]) for i in range(count)]
    return [{key: to_json_value(a[i]) for key, a in sorted(arrays.items())} for i in range(count)]

