"""Loading an export so that its gradients can be taken inside a `tf.function`.

`explain`, `serve` and `validate` take gradients of a loaded signature inside
compiled functions (`explain/engine.py`). TensorFlow builds that gradient by
adding a function's intermediate tensors to its outputs; for a recurrent layer
(LSTM, GRU, Bidirectional) those include the variables a `tf.while_loop`
passes through, which are resource tensors. A resource output of a `While` op
carries "handle data" (the variable's dtype and shape) when the loop is built,
but loading rebuilds each function from its `FunctionDef`, which keeps handle
data only for the function's own arguments and results
(`function_def_to_graph._set_handle_data`). The gradient then fails with
`ValueError: Internal error: Tried to take gradients (or similar) of a variable
without handle data: Tensor(".../lstm_1/while:7" ...)`. An eager
`tf.GradientTape` takes another route and works, which is why a probe outside
`tf.function` did not see it.

`restore_handle_data` gives those tensors back what the loop was built with:
a `While` op passes its loop variables through, so output `i` has input `i`'s
handle data; a call or conditional returns its function's results, whose
handle data loading did keep.
"""

import weakref

import tensorflow as tf
from tensorflow.python.ops import handle_data_util

_LOOPS = ("While", "StatelessWhile")
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")
_CONDITIONALS = ("If", "StatelessIf", "Case", "StatelessCase")
# Loaded SavedModels already restored (restoring is idempotent; this skips the walk).
_RESTORED = weakref.WeakSet()


def load_export(export_dir):
    """`tf.saved_model.load(export_dir)` with `restore_handle_data` applied.

    Example:

    ```python
    loaded = load_export("exports/reviews/3")
    with tf.GradientTape() as tape: ...  # also inside a tf.function
    ```
    """
    loaded = tf.saved_model.load(str(export_dir))
    restore_handle_data(loaded)
    return loaded


def restore_handle_data(loaded):
    """Restores the handle data of the loop variables in a loaded SavedModel's functions.

    Args:
        loaded: what `tf.saved_model.load` returned.

    Returns:
        How many tensors got their handle data back (0 for models without
        loops, and when called again).
    """
    try:
        if loaded in _RESTORED:
            return 0
    except TypeError:  # not weak-referenceable: restore every time, it is idempotent
        pass
    restored = 0
    seen = set()
    for signature in loaded.signatures.values():
        for graph in _graphs(signature.graph, seen):
            restored += _restore_graph(graph)
    try:
        _RESTORED.add(loaded)
    except TypeError:
        pass
    return restored


def _graphs(graph, seen):
    """`graph` and the graphs of every function it calls, each once (depth first)."""
    yield graph
    for op in graph.get_operations():
        for name in _called_functions(op):
            if name in seen:
                continue
            seen.add(name)
            function = graph._get_function(name)  # noqa: SLF001 - no public lookup by name
            if function is not None and getattr(function, "graph", None) is not None:
                yield from _graphs(function.graph, seen)


def _called_functions(op):
    """Names of the functions `op` calls (its function-valued attributes)."""
    names = []
    for attr in op.node_def.attr.values():
        if attr.func.name:
            names.append(attr.func.name)
        names.extend(f.name for f in attr.list.func)
    return names


def _restore_graph(graph):
    restored = 0
    for op in graph.get_operations():
        if op.type in _LOOPS:
            sources = list(op.inputs)
        elif op.type in _CALLS or op.type in _CONDITIONALS:
            sources = _function_results(graph, op)
        else:
            continue
        for source, target in zip(sources, op.outputs):
            if target.dtype != tf.resource or _has_handle_data(target):
                continue
            if source is not None and _has_handle_data(source):
                handle_data_util.copy_handle_data(source, target)
                restored += 1
    return restored


def _function_results(graph, op):
    """The result tensors of the function `op` calls (the first branch of a conditional)."""
    names = _called_functions(op)
    function = graph._get_function(names[0]) if names else None  # noqa: SLF001
    outputs = getattr(getattr(function, "graph", None), "outputs", None)
    return list(outputs) if outputs is not None else []


def _has_handle_data(tensor):
    data = handle_data_util.get_handle_data(tensor)
    return data is not None and data.is_set and len(data.shape_and_type) > 0


def has_loops(fn):
    """Whether `fn` (a concrete function) or a function it calls holds a `tf.while_loop`."""
    return any(op.type in _LOOPS for graph in _graphs(fn.graph, set())
               for op in graph.get_operations())
