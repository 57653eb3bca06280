"""Float16 models (Keras `mixed_float16`): what bounds their attributions' precision.

A model that computes in float16 rounds every output to ~3 significant digits
(float16's epsilon is 2**-10, about 1e-3), even when its signature casts
inputs and outputs to float32. Integrated gradients' completeness gap then
cannot fall below that rounding, and raising `stepCount` does not help: the
warning says so instead.
"""

import tensorflow as tf

_HALF = tf.float16.as_datatype_enum


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


def float16_advice():
    """The warning's advice for a float16 model."""
    return ("the model computes in float16 (mixed_float16), whose rounding (relative ~1e-3 "
            "of each output) bounds this completeness gap from below, so raising stepCount "
            "does not lower it; read attributions to about that precision, or export a "
            "float32 copy of the model (set the global policy to float32 and load the "
            "weights) for exact ones")
