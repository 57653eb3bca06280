"""The rehearsal: an export's own explanation, run on a few rows, its completeness checked.

"Explanation-ready" means explained. `ExplainableExporter.prepare()` (before
the first training batch, on the traced live functions) and `validate` (on the
export read from disk) run the export's method through the same `Explainer`
and engine that `explain`, `serve` and batch explanations use, on the first
rows of the sample, and check that the attributions add up:

| method | checked | allowed gap |
|---|---|---|
| integrated gradients | sum(attributions) against f(x) - f(baseline), per explained output | 5 % of the change (the service's advice), plus rounding |
| sampled Shapley | the same (it holds by construction) | 0.1 % of the change, plus rounding |
| SmoothGrad | its approximationError (the integration error against the noisy copies) | 5 % |
| any other | that it runs | |

A larger gap is measured again with 4x stepCount. When it shrinks, the export
is fine and stepCount is low for this model: a warning. When it does not, the
gradients do not integrate to the output change (a step, rounding or argmax on
the path: zero gradient where the output jumps), and the feature whose switch
to its baseline moves the output most beyond its attribution is named.
"""

import dataclasses
import warnings

import numpy as np
import tensorflow as tf

from xai_callback.errors import ExplanationFailedError, SpecError, short_message
from xai_callback.explain.explainer import Explainer, check_output, feature_baselines
from xai_callback.explain.methods import algorithm_for
from xai_callback.explain.methods.algorithm import APPROXIMATION_ERROR_WARNING
from xai_callback.explain.precision import FLOAT16_EPSILON, computes_in_float16
from xai_callback.explain.settings import settings_from_vertex
from xai_callback.names import XAI_MODEL, XAI_PREPROCESS
from xai_callback.signatures.specs import signature_io

# Rows explained: a few instances (one could add up by chance), fewer for large examples (images).
REHEARSAL_ROWS = 4
REHEARSAL_VALUES = 65536
# Allowed completeness gap, relative to |f(x) - f(baseline)|, by method name.
COMPLETENESS = {"integrated-gradients": APPROXIMATION_ERROR_WARNING, "sampled-shapley": 1e-3}
# Rounding allowed on top, relative to max(|f(x)|, |f(baseline)|).
FLOAT32_ROUNDING = 1e-4
FLOAT16_ROUNDING = 8 * FLOAT16_EPSILON
# A gap that does not fall below this share when stepCount is 4x is not integration error.
CONVERGENCE = 0.5
STEP_FACTOR = 4
_ERRORS = (SpecError, ExplanationFailedError, tf.errors.OpError, TypeError, ValueError, LookupError)


class RehearsalError(SpecError):
    """The export's explanation fails, or its attributions do not add up.

    Attributes:
        feature: the metadata feature named as the cause (or None).
    """

    def __init__(self, message, feature=None):
        super().__init__(message)
        self.feature = feature


@dataclasses.dataclass
class Rehearsal:
    """How the explanation went.

    Attributes:
        method: the method as `describe()` gives it.
        instances: how many instances were explained.
        worst_gap: the largest completeness gap relative to |f(x) - f(baseline)|
            (NaN: the method is not checked for completeness).
        allowed: the gap allowed for the method, relative.
        warning: what the user should look at (a low stepCount), or None.
        response: the `ExplainResponse`.
    """

    method: str
    instances: int
    worst_gap: float
    allowed: float
    warning: str = None
    response: object = None

    def describe(self, source="the sample"):
        text = f"{self.method} explains {self.instances} instance(s) of {source}"
        if np.isfinite(self.worst_gap):
            text += (f"; attributions add up to f(x) - f(baseline) within "
                     f"{self.worst_gap:.2%} (allowed {self.allowed:.2%})")
        return text


def rehearse(model_fn, metadata, parameters, inputs, *, preprocess_fn=None, xai_features=None,
             rows=None):
    """Explains the first rows of `inputs` with the stored method and checks completeness.

    Example:

    ```python
    done = rehearse(loaded.signatures["xai_model"], metadata, parameters, sample,
                    preprocess_fn=loaded.signatures["xai_preprocess"])
    print(done.describe())
    ```

    Args:
        model_fn: the explained function (`xai_model`), called `model_fn(**inputs)`.
        metadata: the export's Vertex metadata dict.
        parameters: its parameters dict (None: integrated gradients, 50 steps).
        inputs: `{key: batch}` of `preprocess_fn`'s inputs (else `model_fn`'s).
        preprocess_fn: `xai_preprocess`, or None.
        xai_features: the content of `xai_features.json`, or None.
        rows: how many rows to explain; None: `REHEARSAL_ROWS`, fewer for
            large examples.

    Returns:
        A `Rehearsal`.

    Raises:
        RehearsalError: the explanation fails (the message says why, and
            names the feature where it can), or its attributions do not add
            up and a larger stepCount does not make them.
    """
    inputs = {key: tf.convert_to_tensor(value) for key, value in inputs.items()}
    inputs = {key: value[:rows or _rows(inputs)] for key, value in inputs.items()}
    explainer = Explainer(model_fn, metadata, parameters, preprocess_fn=preprocess_fn,
                          xai_features=xai_features)
    settings = _settings(metadata, parameters)
    method = settings.method
    described = _described(method)
    allowed = COMPLETENESS.get(method.name, APPROXIMATION_ERROR_WARNING)
    response = _explain(explainer, inputs, described)
    gaps = _gaps(response, method.name)
    if not np.any(np.isfinite(gaps)):
        return Rehearsal(described, len(response.explanations), float("nan"), allowed,
                         response=response)
    rounding = FLOAT16_ROUNDING if computes_in_float16(model_fn) else FLOAT32_ROUNDING
    excess = _excess(response, gaps, allowed, rounding)
    worst = float(np.nanmax(gaps))
    done = Rehearsal(described, len(response.explanations), worst, allowed,
                     response=response)
    if excess <= 0:
        return done
    step_count = getattr(method, "step_count", None)
    if step_count is not None:
        finer = _explain(explainer, inputs, described, step_count=step_count * STEP_FACTOR)
        finer_gaps = _gaps(finer, method.name)
        if np.nanmax(finer_gaps) <= CONVERGENCE * worst or _excess(finer, finer_gaps, allowed,
                                                                   rounding) <= 0:
            done.warning = (
                f"{described}: the attributions miss f(x) - f(baseline) by up to "
                f"{worst:.2%} (allowed {allowed:.2%}); with stepCount {step_count * STEP_FACTOR} "
                f"{float(np.nanmax(finer_gaps)):.2%}: raise stepCount for this model.")
            return done
    feature, detail = _culprit(explainer, inputs, settings, response)
    raise RehearsalError(
        f"{described}: the attributions do not add up to f(x) - f(baseline): they miss "
        f"it by up to {worst:.2%} (allowed {allowed:.2%})"
        + (f", and still by {float(np.nanmax(finer_gaps)):.2%} with stepCount "
           f"{step_count * STEP_FACTOR}" if step_count is not None else "")
        + f". {detail}The gradients do not see what moves the output (a step, rounding, argmax "
        "or a cast on the path). Use SampledShapley(), which needs no gradients, or make the "
        "model differentiable there.", feature=feature)


def _described(method):
    """The method as explanations name it, e.g. `integrated-gradients(stepCount=50)`."""
    try:
        return algorithm_for(method).describe()
    except SpecError as e:
        raise RehearsalError(f"the stored method cannot run here: {e}") from e


def _rows(inputs):
    per_row = sum(max(1, int(np.prod(v.shape[1:]))) for v in inputs.values())
    return int(np.clip(REHEARSAL_VALUES // per_row, 1, REHEARSAL_ROWS))


def _settings(metadata, parameters):
    try:
        return settings_from_vertex(metadata, parameters)
    except _ERRORS as e:
        raise RehearsalError(f"the stored explanation settings cannot run here: {short_message(e)}") from e


def _explain(explainer, inputs, described, **overrides):
    """`explainer.explain` with the stored method; its quality warnings are judged here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return explainer.explain(inputs, seed=0, **overrides)
    except _ERRORS as e:
        raise RehearsalError(
            f"{described} fails on the sample: {type(e).__name__}: {short_message(e)}",
            feature=getattr(e, "feature", None)) from e


def _gaps(response, method_name):
    """`[units]` completeness gaps relative to |f(x) - f(baseline)| (NaN: not checked)."""
    gaps = []
    for explanation in response.explanations:
        for attribution in explanation.attributions:
            if method_name in COMPLETENESS:
                total = sum(float(np.sum(v)) for v in attribution.feature_attributions.values())
                change = attribution.instance_output_value - attribution.baseline_output_value
                gaps.append(abs(total - change) / max(abs(change), 1e-12))
            else:
                gaps.append(attribution.approximation_error)
    return np.asarray(gaps, np.float64)


def _excess(response, gaps, allowed, rounding):
    """How far the worst unit's gap is beyond `allowed` plus rounding (<= 0: within)."""
    worst = -np.inf
    units = [a for e in response.explanations for a in e.attributions]
    for gap, attribution in zip(gaps, units):
        if not np.isfinite(gap):
            continue
        change = abs(attribution.instance_output_value - attribution.baseline_output_value)
        scale = max(abs(attribution.instance_output_value), abs(attribution.baseline_output_value))
        worst = max(worst, gap * change - allowed * change - rounding * scale)
    return worst


def _culprit(explainer, inputs, settings, response):
    """`(feature name, sentence)` of the feature whose switch to its baseline moves the output
    most beyond its attribution (first instance), or `(None, "")`."""
    try:
        model_inputs = (dict(explainer.preprocess_fn(**inputs)) if explainer.preprocess_fn
                        else dict(inputs))
        first = {key: tf.convert_to_tensor(value)[:1] for key, value in model_inputs.items()}
        baselines, names = feature_baselines(settings.features, first)
        outputs = explainer.model_fn(**first)
        output_key = check_output(settings.output, outputs)
        instance = np.asarray(outputs[output_key], np.float64)
        unit = response.explanations[0].attributions[0]
        index = (0,) + tuple(unit.output_index)
        found = []
        for key, base in baselines.items():
            switched = dict(first)
            switched[key] = tf.cast(base[:1], first[key].dtype)
            value = np.asarray(explainer.model_fn(**switched)[output_key], np.float64)
            moved = float(instance[index] - value[index])
            attributed = float(np.sum(unit.feature_attributions.get(names[key], np.nan)))
            if np.isfinite(attributed):
                found.append((abs(moved - attributed), names[key], moved, attributed))
    except _ERRORS:
        return None, ""
    if not found:
        return None, ""
    _, name, moved, attributed = max(found)
    return name, (f"Feature {name!r}: switching it alone to its baseline moves the output by "
                  f"{moved:.4g}, but its attribution is {attributed:.4g}. ")


def rehearse_signatures(signatures, metadata, parameters, sample, xai_features=None, *,
                        explained=XAI_MODEL):
    """`rehearse` on an export's signatures (loaded, or the live concrete functions), as
    `explain` runs them: `sample` through `xai_preprocess` when it takes the sample.

    Args:
        signatures: `{name: function}` called with keyword inputs.
        metadata, parameters: the export's Vertex JSON dicts.
        sample: `{key: batch}` of `serving_default` inputs, or of `explained`'s
            inputs when there is no `xai_preprocess` taking them.
        xai_features: the content of `xai_features.json`, or None.
        explained: the explained signature's name.

    Returns:
        A `Rehearsal`, or None when `sample` fits neither `xai_preprocess` nor
        the explained signature.
    """
    preprocess = signatures.get(XAI_PREPROCESS)
    if preprocess is not None and set(signature_io(preprocess)[0]) <= set(sample):
        inputs = {key: sample[key] for key in signature_io(preprocess)[0]}
    else:
        preprocess = None
        keys = signature_io(signatures[explained])[0]
        if not set(keys) <= set(sample):
            return None  # a custom serving_default taking other inputs: nothing to feed
        inputs = {key: sample[key] for key in keys}
    return rehearse(signatures[explained], metadata, parameters, inputs, preprocess_fn=preprocess,
                    xai_features=xai_features)


def check_before_training(signatures, metadata, parameters, sample, xai_features=None):
    """`rehearse_signatures` on the live functions in `prepare()`; a failure names the way out.

    Raises:
        RehearsalError: what `explain`, `serve` and `validate` would refuse.
    """
    try:
        return rehearse_signatures(signatures, metadata, parameters, sample, xai_features)
    except RehearsalError as e:
        raise RehearsalError(
            f"The export would not be explained: {e} (checked before the first training batch, "
            "by running the explanation on the verification sample through the engine explain "
            "and serve use; verify=False skips the checks).", feature=e.feature) from None
