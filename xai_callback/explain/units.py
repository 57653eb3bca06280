"""The units of a batch (which outputs are explained), the method run on them, the report.

Shared by the Python explainer (`Explainer.explain`, which runs it eagerly
with the method's chunks compiled and looped from Python, `engine.run`) and by
the `xai_explain` signature (`xai_callback.explain.signature`, which traces it
into the SavedModel with the chunks in a `tf.while_loop`,
`engine.run_in_graph`), so both compute the same numbers with the same code.
Methods with host code (`in_graph = False`: XRAI, blur baselines) run only in
the Python explainer.
"""

import numpy as np
import tensorflow as tf

from xai_callback.explain.methods.algorithm import Problem


def units_per_instance(example_shape, top_k=1, output_indices=None):
    """How many outputs of one instance are explained (see `select_units`)."""
    if not example_shape.rank:
        return 1
    if output_indices is not None:
        return len(output_indices)
    size = int(np.prod(example_shape.as_list()))
    return size if top_k == -1 else min(int(top_k), size)


def select_units(output, top_k=1, output_indices=None):
    """The explained output elements ("units"): `outputIndices` of each instance, else its top k.

    Ties keep the lower index first (as `tf.math.top_k` and a stable sort do).

    Args:
        output: `[instances, *example]` the explained output.
        top_k: explain the k largest elements of each instance; -1: all.
            An int or an integer scalar tensor.
        output_indices: `[indices, rank of the example]` (a list of index
            tuples, an array or a tensor) explained for every instance
            instead of the top k; None: top k.

    Returns:
        `(unit_instance [units] int64, unit_index [units, rank] int64,
        unit_mask [units, *example] float32)`, units ordered by instance,
        then by the rank of the output (or the order of `output_indices`).
    """
    output = tf.convert_to_tensor(output)
    example = output.shape[1:]
    rank = example.rank
    size = int(np.prod(example.as_list())) if example.is_fully_defined() else None
    count = tf.shape(output, out_type=tf.int64)[0]
    flat = tf.reshape(output, tf.stack([count, -1]))
    if rank == 0:
        chosen = tf.zeros([count, 1], tf.int64)
    elif output_indices is not None:
        rows = tf.reshape(tf.cast(output_indices, tf.int64), [-1, rank])
        strides = np.cumprod([1] + example.as_list()[:0:-1])[::-1]  # of the row-major flat index
        positions = tf.reduce_sum(rows * tf.constant(strides, tf.int64), axis=1)
        chosen = tf.tile(positions[None], tf.stack([count, 1]))
    else:
        top_k = tf.cast(top_k, tf.int32)
        k = tf.where(tf.equal(top_k, -1), size, tf.minimum(top_k, size))
        chosen = tf.cast(tf.math.top_k(tf.cast(flat, tf.float64), k=k, sorted=True).indices, tf.int64)
    per_instance = tf.shape(chosen, out_type=tf.int64)[1]
    unit_instance = tf.repeat(tf.range(count), per_instance)
    flat_index = tf.reshape(chosen, [-1])
    if rank == 0:
        unit_index = tf.zeros([tf.size(flat_index), 0], tf.int64)
        unit_mask = tf.ones_like(flat_index, tf.float32)
    else:
        unit_index = tf.transpose(tf.unravel_index(flat_index, example.as_list()))
        unit_mask = tf.reshape(tf.one_hot(flat_index, size, dtype=tf.float32),
                               tf.concat([[-1], example.as_list()], 0))
    return unit_instance, tf.reshape(unit_index, [-1, rank]), unit_mask


def explain_units(run, method, layout, model_fn, output_key, model_inputs, output, baselines,
                  feature_names, *, top_k=1, output_indices=None, seed=0, compile_fn=None,
                  **problem_options):
    """Units, the method's result and the reported attributions of a batch.

    Args:
        run: `run(problem, method, report=None, report_key=None) ->
            {"attributions", "baseline_output", "approximation_error"(,
            "reported")}`: `engine.run` (Python loop
            over compiled chunks) or a wrapper of `engine.run_in_graph`.
        method: the `AttributionAlgorithm` (one with `in_graph = False` only
            from the Python explainer: `run` is then called by its host code).
        layout: the `granularity.FeatureLayout`.
        model_fn, output_key: the explained function and output.
        model_inputs: `{key: tensor}` inputs of `model_fn` for the batch.
        output: `model_fn`'s explained output on them.
        baselines: `{attributed key: [num_baselines, ...]}`, each
            broadcastable to one example of its input.
        feature_names: `{attributed key: feature name}`.
        top_k, output_indices: which outputs are explained (`select_units`).
        seed: seed of the random numbers the method draws.
        compile_fn: `compile_fn(name, fn, args) -> result of fn(*args)`: how
            the graph steps before and after the method run (the Python
            explainer runs them compiled); None: called directly (in a graph).
        **problem_options: further `Problem` fields (`max_rows_per_call`,
            `progress`, `compiled`).

    Returns:
        `(unit_instance, unit_index, result, reported)`: the units, the
        method's per-tensor result and `{reported name: [units, ...]}`.
    """
    call = compile_fn or (lambda name, fn, args: fn(*args))

    def prepare(model_inputs, output, baselines, selected):
        unit_instance, unit_index, unit_mask = select_units(output, **selected)
        broadcast = {key: _broadcast(base, model_inputs[key]) for key, base in baselines.items()}
        return unit_instance, unit_index, unit_mask, layout.frozen(model_inputs), broadcast

    # topK and outputIndices are arguments, not constants: a request's new value traces nothing.
    if output_indices is None:
        selected = {"top_k": np.int64(top_k)}
    else:
        rank = len(tf.convert_to_tensor(output).shape) - 1
        selected = {"output_indices": np.asarray(output_indices, np.int64).reshape(len(output_indices), rank)}
    unit_instance, unit_index, unit_mask, frozen, baselines = call(
        ("prepare", layout.cache_key(), tuple(selected)), prepare,
        (model_inputs, output, baselines, selected))
    shapes = {key: tf.convert_to_tensor(model_inputs[key]).shape[1:] for key in baselines}
    problem = Problem(
        model_fn=model_fn,
        output_key=output_key,
        inputs=model_inputs,
        baselines=baselines,
        unit_instance=unit_instance,
        unit_mask=unit_mask,
        feature_names=feature_names,
        frozen=frozen,
        modalities={f.tensor_key: f.modality for f in layout.features if f.tensor_key in baselines},
        players=(layout.player_maps({k: s.as_list() for k, s in shapes.items()})
                 if all(s.is_fully_defined() for s in shapes.values()) else None),
        seed=seed,
        **problem_options,
    )
    method.check_inputs(problem)
    if not method.in_graph:
        result = method.run_on_host(problem, run)
        reported = layout.reduce(result["attributions"], unit_instance, frozen)
    elif layout.reduces or frozen:
        result = run(problem, method, report=layout.reduce, report_key=layout.cache_key())
        reported = result.pop("reported")
    else:
        result = run(problem, method)
        reported = layout.reduce(result["attributions"], unit_instance)
    return unit_instance, unit_index, result, reported


def _broadcast(baseline, like):
    """`[num_baselines, *example]`: each baseline broadcast to one example of `like`."""
    baseline = tf.convert_to_tensor(baseline, tf.convert_to_tensor(like).dtype)
    shape = tf.concat([tf.shape(baseline)[:1], tf.shape(like)[1:]], 0)
    return tf.broadcast_to(baseline, shape)
