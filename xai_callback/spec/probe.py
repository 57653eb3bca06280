"""Gradient probe: do gradients flow from the explained output to each feature?

Dtype checks cannot see a `tf.stop_gradient`, an `argmax` or a cast to int
inside the model; one real gradient on a sample batch can.
"""

import numpy as np
import tensorflow as tf

from xai_callback.errors import SpecError
from xai_callback.spec.fields import Shown, describe
from xai_callback.spec.methods import method_from_parameters

_ADVICE = ("use SampledShapley(), which needs no gradients, or give xai_model a floating "
           "encoded tensor to attribute to (encodedTensorName)")


def probe_gradients(model_fn, metadata, parameters, sample_inputs):
    """Checks that the explained output has a nonzero gradient w.r.t. each feature.

    Args:
        model_fn: the explained signature (a concrete function called as
            `model_fn(**inputs)` and returning a dict of tensors).
        metadata, parameters: Vertex v1 JSON dicts.
        sample_inputs: `{input key: tensor-like}`, a small batch of
            `model_fn` inputs.

    Returns:
        `{feature name: largest |gradient|}`; empty for sampled Shapley,
        which takes no gradients.

    Raises:
        SpecError: naming the feature whose gradient is None or all zero.
    """
    method = method_from_parameters(parameters)
    if not method.GRADIENT_BASED:
        return {}
    inputs = {k: tf.convert_to_tensor(v) for k, v in sample_inputs.items()}
    targets = {}
    for name, body in metadata["inputs"].items():
        field = "encodedTensorName" if body.get("encodedTensorName") else "inputTensorName"
        key = body.get(field)
        if key not in inputs:
            raise SpecError(describe(f"feature {name!r}", field, key,
                                     f"expected a key of the sample inputs {sorted(inputs)}"))
        if not inputs[key].dtype.is_floating:
            raise SpecError(describe(f"feature {name!r}", field, key,
                                     f"input is {inputs[key].dtype.name}; no gradient can flow "
                                     f"to it: {_ADVICE}"))
        targets[name] = key
    (_, output), = metadata["outputs"].items()
    with tf.GradientTape() as tape:
        for key in set(targets.values()):
            tape.watch(inputs[key])
        outputs = model_fn(**inputs)
        score = _explained_score(outputs[output["outputTensorName"]],
                                 parameters.get("outputIndices"), output["outputTensorName"])
    grads = tape.gradient(score, {key: inputs[key] for key in set(targets.values())})
    largest = {}
    for name, key in targets.items():
        grad = grads[key]
        size = None if grad is None else float(tf.reduce_max(tf.abs(grad)))
        if not size:
            raise SpecError(describe(
                f"feature {name!r}", "gradient", Shown("None" if grad is None else "all zero"),
                f"the explained output {output['outputTensorName']!r} does not depend "
                f"differentiably on input {key!r} (stop_gradient, argmax, a cast to int or a "
                f"lookup on the path?): {_ADVICE}"))
        largest[name] = size
    return largest


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
