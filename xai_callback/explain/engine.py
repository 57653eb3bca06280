"""The batched row engine: the rows of every unit through the model in a few compiled calls.

A method describes one chunk of its rows as graph code, `chunk_fn(evaluate,
state, start, stop)`: build rows `start..stop-1` from `state`, `evaluate` them
(explained output, optionally with gradients), reduce. The engine runs it on
chunks of at most `Problem.rows_per_call()` rows (the memory bound), as one
`tf.function` traced once per method, output and input signature (batch sizes
free) and kept by the explainer, so a chunk costs one dispatch instead of
dozens of eager ops, and repeated `explain` calls trace nothing.
"""

import numpy as np
import tensorflow as tf

_INDEX = tf.TensorSpec([], tf.int64)


def run_chunks(problem, total_rows, chunk_fn, state, consume):
    """Runs `chunk_fn` over rows `[0, total_rows)`, chunk by chunk.

    Args:
        problem: the `Problem`; `state` gets its tensors as `inputs`,
            `baselines`, `frozen`, `unit_instance` and `unit_mask`.
        total_rows: number of rows.
        chunk_fn: module-level graph code (its identity keys the trace cache),
            `chunk_fn(evaluate, state, start, stop) -> nested tensors`, where
            `evaluate(rows, unit, watch=()) -> (values [rows], {key: gradient})`
            gives each row's explained output and its gradient with respect to
            the inputs in `watch`.
        state: `{name: array or nested dict of arrays}` the method's own inputs.
        consume: `consume(start, stop, result)`, `result` as numpy arrays.
    """
    state = tf.nest.map_structure(tf.convert_to_tensor, {
        "inputs": problem.inputs,
        "baselines": problem.baselines,
        "frozen": problem.frozen,
        "unit_instance": problem.unit_instance,
        "unit_mask": problem.unit_mask,
        **state,
    })
    compiled = _compiled(problem, chunk_fn, state)
    chunk = problem.rows_per_call()
    for start in range(0, total_rows, chunk):
        stop = min(start + chunk, total_rows)
        result = compiled(state, tf.constant(start, tf.int64), tf.constant(stop, tf.int64))
        consume(start, stop, tf.nest.map_structure(np.asarray, result))
        if problem.progress is not None:
            problem.progress(stop, total_rows)


def _compiled(problem, chunk_fn, state):
    """`chunk_fn` as a `tf.function` over `state`'s signature, cached in `problem.compiled`."""
    specs = tf.nest.map_structure(_any_batch, state)
    key = (chunk_fn, problem.output_key, repr(specs))  # repr: names, dtypes and shapes
    if key not in problem.compiled:
        model_fn, output_key = problem.model_fn, problem.output_key

        def chunk(state, start, stop):
            def evaluate(rows, unit, watch=()):
                mask = tf.gather(state["unit_mask"], unit)
                watched = {k: rows[k] for k in watch}
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(watched)
                    values = _selected_output(model_fn(**rows)[output_key], mask)
                if not watch:
                    return values, {}
                return values, tape.gradient(
                    values, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO)

            return chunk_fn(evaluate, state, start, stop)

        # Autograph only for Python model functions (tensor-dependent `if`s ran
        # eagerly before); signatures are graphs already and trace 2x faster without.
        graph_model = isinstance(model_fn, tf.types.experimental.ConcreteFunction)
        # The concrete function: calling it skips tf.function's dispatch (~0.5 ms a call).
        problem.compiled[key] = tf.function(
            chunk, input_signature=[specs, _INDEX, _INDEX], autograph=not graph_model
        ).get_concrete_function()
    return problem.compiled[key]


def _any_batch(tensor):
    """The tensor's spec with a free leading dimension (instances, units, rows vary by call)."""
    shape = tensor.shape.as_list()
    return tf.TensorSpec([None] + shape[1:] if shape else [], tensor.dtype)


def _selected_output(output, mask):
    """The explained output element of each row, `[rows]`."""
    dtype = output.dtype if output.dtype.is_floating else tf.float32
    product = tf.cast(output, dtype) * tf.cast(mask, dtype)
    return tf.reduce_sum(tf.reshape(product, [tf.shape(product)[0], -1]), axis=1)


def gather_instances(state, instance_index):
    """`{key: tensor}` of every model input for the given instance indices."""
    return {key: tf.gather(value, instance_index) for key, value in state["inputs"].items()}


def start_points(state, rows, instance, baseline):
    """`{key: start of each row's path}`: its baseline, but the instance's value where frozen.

    Args:
        rows: `{key: [rows, ...]}` instance values of the rows.
        instance, baseline: `[rows]` instance and baseline index of each row.
    """
    starts = {}
    for key, base in state["baselines"].items():
        start = tf.gather(base, baseline)
        if key in state["frozen"]:
            start = tf.where(tf.gather(state["frozen"][key], instance), rows[key], start)
        starts[key] = start
    return starts


def broadcast_rows(values, like):
    """Reshapes a `[rows]` tensor to broadcast against `like` `[rows, ...]`."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))
