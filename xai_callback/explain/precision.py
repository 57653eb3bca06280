"""Float16 models (Keras `mixed_float16`): what bounds their attributions' precision.

A model that computes in float16 rounds every output to ~3 significant digits
(float16's epsilon is 2**-10, about 1e-3), even when its signature casts
inputs and outputs to float32. Integrated gradients' completeness gap then
cannot fall below that rounding, and raising `stepCount` does not help: the
warning says so instead.
"""

import numpy as np
import tensorflow as tf

_HALF = tf.float16.as_datatype_enum
FLOAT16_EPSILON = 2.0 ** -10


def computes_in_float16(model_fn):
    """Whether the graph of `model_fn` (a concrete function) holds float16 tensors.

    Python callables (no graph) count as float32: their inputs and outputs
    are checked by the caller.
    """
    graph = getattr(model_fn, "graph", None)
    if graph is None:
        return False
    graph_def = graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return any(attr.type == _HALF or _HALF in attr.list.type
               for node in nodes for attr in node.attr.values())


def rounding_share(instance_output, baseline_output):
    """Worst share of `f(x) - f(baseline)` that one float16 rounding step of the outputs is."""
    instance = np.abs(np.asarray(instance_output, np.float64))
    baseline = np.abs(np.asarray(baseline_output, np.float64))
    change = np.abs(np.asarray(instance_output, np.float64) - baseline_output)
    return float(np.max(FLOAT16_EPSILON * np.maximum(instance, baseline) / (change + 1e-12)))


def float16_advice(share):
    """The warning's advice for a float16 model whose rounding is `share` of the output change."""
    return (f"the model computes in float16 (mixed_float16): rounding its outputs to float16 "
            f"alone moves f(x) - f(baseline) by up to about {share:.3g} of itself, which no "
            "stepCount removes (raising it lowers only the integration part of the gap); read "
            "the attributions to that precision, or explain a float32 copy of the model (global "
            "policy float32, same weights) for exact ones")
