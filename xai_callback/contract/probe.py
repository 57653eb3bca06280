"""Gradient probe: do gradients flow from the explained output to each feature?

Dtype checks cannot see a `tf.stop_gradient`, an `argmax` or a cast to int
inside the model; one real gradient on a small batch can. The batch lies on
the integrated-gradients path (baseline -> sample), where attributions are
taken, not only at the sample.

Two outcomes differ in kind:
- no gradient at all (None, or an integer tensor) is STRUCTURAL: the graph
  has no differentiable path, whatever the weights. `probe_gradients` raises.
- an all-zero gradient is a property of the WEIGHTS (a sigmoid saturated to
  1.0 in float32, ReLU units that are all dead): the export is fine, its
  gradient attributions are just zero there. `probe_gradients` reports 0.0
  and callers warn (`zero_gradient_message`).
"""

import numpy as np
import tensorflow as tf

from xai_callback.errors import SpecError, short_message
from xai_callback.spec.fields import Shown, describe
from xai_callback.spec.metadata import attributed_fields
from xai_callback.spec.methods import method_from_parameters

_ADVICE = ("use SampledShapley(), which needs no gradients, or give xai_model a floating "
           "encoded tensor to attribute to (encodedTensorName)")
# Points of the path `baseline + alpha * (sample - baseline)`; 1.0 is the sample.
PATH_ALPHAS = (1 / 3, 2 / 3, 1.0)
# Sample rows probed: up to PROBE_ROWS, fewer for large examples (one image of
# 224x224x3 is 150k values) so the probe stays a small part of an export.
PROBE_ROWS = 4
PROBE_VALUES = 65536


def probe_gradients(model_fn, metadata, parameters, sample_inputs, cache=None):
    """The largest |gradient| of the explained output w.r.t. each feature on the IG path.

    Example:

    ```python
    largest = probe_gradients(loaded.signatures["xai_model"], metadata, parameters,
                              {"feats": x[:4]})
    zero = zero_gradient_message(largest, metadata)  # None, or text for a warning
    ```

    Args:
        model_fn: the explained signature (a concrete function called as
            `model_fn(**inputs)` and returning a dict of tensors).
        metadata, parameters: Vertex v1 JSON dicts.
        sample_inputs: `{input key: tensor-like}`, a small batch of
            `model_fn` inputs. Its first rows (up to `PROBE_ROWS`, fewer
            for large examples) are moved along the path from each
            feature's baseline (`PATH_ALPHAS`).
        cache: a dict the compiled gradient is kept in for the next probe
            of the same function (the exporter probes its live functions
            before and after training); None: compiled afresh.

    Returns:
        `{feature name: largest |gradient|}` (0.0 when the gradient is all
        zero along the path); empty for methods that take no gradients.

    Raises:
        SpecError: naming the feature that no gradient can reach (an
            integer input, or a gradient of None: stop_gradient, a cast to
            int, argmax or a lookup on the path).
    """
    method = method_from_parameters(parameters)
    if not method.GRADIENT_BASED:
        return {}
    inputs = {k: tf.convert_to_tensor(v) for k, v in sample_inputs.items()}
    fixed_batch = _has_fixed_batch(model_fn)
    if not fixed_batch:
        rows = _probe_rows(inputs)
        inputs = {k: v[:rows] for k, v in inputs.items()}
    targets, baselines = {}, {}
    for name, body in metadata["inputs"].items():
        field, baselines_field = attributed_fields(body)
        key = body.get(field)
        if key not in inputs:
            raise SpecError(describe(f"feature {name!r}", field, key,
                                     f"expected a key of the sample inputs {sorted(inputs)}"))
        if not inputs[key].dtype.is_floating:
            raise SpecError(describe(f"feature {name!r}", field, key,
                                     f"input is {inputs[key].dtype.name}; no gradient can flow "
                                     f"to it: {_ADVICE}"))
        targets[name] = key
        baselines.setdefault(key, body.get(baselines_field))
    # A signature with a fixed batch size takes the sample as it is.
    path = inputs if fixed_batch else _path_batch(inputs, baselines)
    (_, output), = metadata["outputs"].items()
    key = output["outputTensorName"]
    # Run errors (keys, dtypes, shapes) surface here, before any gradient.
    _explained_score(model_fn(**path)[key], parameters.get("outputIndices"), key)
    grads = _graph_gradients(model_fn, path, list(baselines), key, parameters.get("outputIndices"),
                             cache)
    largest = {}
    for name, key in targets.items():
        if grads[key] is None:
            raise SpecError(describe(
                f"feature {name!r}", "gradient", Shown("None"),
                f"the explained output {output['outputTensorName']!r} does not depend "
                f"differentiably on input {key!r} (stop_gradient, argmax, a cast to int or a "
                f"lookup on the path?): {_ADVICE}"))
        largest[name] = float(tf.reduce_max(tf.abs(grads[key])))
    return largest


def _graph_gradients(model_fn, path, watched, output_key, output_indices, cache=None):
    """`{input key: gradient or None}` of the explained score, taken inside a `tf.function`.

    `explain` differentiates inside compiled functions (`explain/engine.py`),
    where TensorFlow builds gradients another way than an eager tape does
    (loaded loops need their handle data: `contract/loaded.py`): the probe
    takes the same route, so what it passes, `explain` can differentiate.

    Raises:
        SpecError: TensorFlow cannot build the gradient at all.
    """
    def gradients(path):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([path[key] for key in watched])
            score = _explained_score(model_fn(**path)[output_key], output_indices, output_key)
        return tape.gradient(score, {key: path[key] for key in watched})

    key = (id(model_fn), tuple(watched), output_key, repr(output_indices))
    try:
        if cache is None or key not in cache:
            compiled = tf.function(gradients, autograph=False, reduce_retracing=True)
            if cache is None:
                return compiled(path)
            cache[key] = (model_fn, compiled)  # model_fn kept: its id stays its own
        return cache[key][1](path)
    except (ValueError, LookupError, TypeError) as e:
        raise SpecError(
            f"The gradient of output {output_key!r} w.r.t. inputs {sorted(watched)} cannot be "
            f"built inside a tf.function, as explanations build it ({type(e).__name__}: "
            f"{short_message(e)}). Load exports with xai_callback.contract.loaded.load_export "
            f"(recurrent layers' loops need it), or {_ADVICE}.") from e


def zero_gradient_message(largest, metadata, when="on the exported weights"):
    """Text for a warning when some features got an all-zero gradient, else None."""
    zero = sorted(name for name, size in largest.items() if not size)
    if not zero:
        return None
    (_, output), = metadata["outputs"].items()
    return (f"The gradient of output {output['outputTensorName']!r} is all zero {when} for "
            f"feature(s) {zero}, at the sample and along the integrated-gradients path from "
            "the baseline: gradient attributions will be zero there. This is a property of the "
            "weights (an output saturated in float32, e.g. a sigmoid at 1.0, or dead ReLU "
            "units), not of the export, which is written and valid. Consider SampledShapley(), "
            "explaining the logits (output_key) instead of the probabilities, or other "
            "baselines.")


def _probe_rows(inputs):
    """How many sample rows to probe: PROBE_ROWS, or fewer for large examples."""
    per_row = sum(max(1, int(np.prod(v.shape[1:]))) for v in inputs.values())
    return int(np.clip(PROBE_VALUES // per_row, 1, PROBE_ROWS))


def _has_fixed_batch(model_fn):
    specs = tf.nest.flatten(getattr(model_fn, "structured_input_signature", ()))
    return any(isinstance(s, tf.TensorSpec) and s.shape.rank and s.shape[0] is not None
               for s in specs)


def _path_batch(inputs, baselines):
    """Rows `baseline + alpha * (x - baseline)` for every alpha and baseline.

    Inputs without a baseline (not attributed) repeat their sample rows.
    Batch order: (baseline, alpha, sample row).
    """
    counts = {len(b) for b in baselines.values() if b}
    repeats = len(PATH_ALPHAS) * max(counts or {1})
    path = {}
    for key, value in inputs.items():
        if key not in baselines:
            path[key] = tf.concat([value] * repeats, axis=0)
            continue
        rows = []
        for baseline in _baseline_arrays(baselines[key], value, repeats // len(PATH_ALPHAS)):
            for alpha in PATH_ALPHAS:
                rows.append(baseline + tf.cast(alpha, value.dtype) * (value - baseline))
        path[key] = tf.concat(rows, axis=0)
    return path


def _baseline_arrays(baselines, value, count):
    """`count` baselines as tensors broadcast to one example (zero when unset or unfit)."""
    example = value.shape[1:]
    found = []
    for baseline in (baselines or [0.0]):
        try:
            array = np.broadcast_to(np.asarray(baseline, value.dtype.as_numpy_dtype), example)
        except (ValueError, TypeError):  # the baselines rule reports it
            array = np.zeros(example, value.dtype.as_numpy_dtype)
        found.append(tf.constant(array[None]))
    return (found * count)[:count]


def _explained_score(output, output_indices, key):
    """A scalar whose gradient is the explained output's: the sum over the batch
    of the top explained value (the argmax, or the top of `output_indices`)."""
    if not output.dtype.is_floating:
        raise SpecError(describe(
            "metadata output", "outputTensorName", key,
            f"that output is {output.dtype.name}; gradients flow only through floating outputs "
            f"(explain the scores, not the argmax): {_ADVICE}"))
    flat = tf.reshape(output, [tf.shape(output)[0], -1])
    if output_indices is not None:
        example = output.shape.as_list()[1:]
        rows = np.asarray(output_indices).reshape(len(output_indices), -1)
        flat = tf.gather(flat, np.ravel_multi_index(rows.T, example), axis=1)
    return tf.reduce_sum(tf.reduce_max(flat, axis=1))
