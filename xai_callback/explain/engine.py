"""The batched row engine: one graph implementation of each method, run two ways.

A method is graph code in three steps over a `state` dict of tensors (the
problem's `inputs`, `baselines`, `frozen`, `unit_instance`, `unit_mask`, the
method's `settings_state()` such as `step_count`, plus what `start` adds):

- `start(state) -> state`: its own tensors (interpolation weights, Shapley
  orders drawn with a stateless seed, SmoothGrad's noisy copies);
- `chunk(evaluate, state, start, stop) -> {"rows": ..., "items": ...}`: rows
  `start..stop-1` of its work, built from `state` and `evaluate`d (explained
  output, optionally with gradients); `rows` leaves are per row, `items`
  leaves are partial sums per work item, from item `start // rows_per_item`;
- `finish(state, rows, items) -> MethodResult`: attributions, f(baseline) and
  the approximation error, from every row's and item's results.

`run` (the Python explainer) runs `start` and `finish` as compiled functions
and loops over chunks of at most `Problem.rows_per_call()` rows in Python (the
memory bound, with progress); each chunk is one `tf.function` traced once per
method, output and input signature (batch sizes free; counts are tensors, so a
new stepCount traces nothing) and kept by the explainer, so a chunk costs one
dispatch, and repeated `explain` calls trace nothing. `run_in_graph` (the
`xai_explain` signature) runs the same three functions inside one graph,
chunks in a `tf.while_loop`. Row and item results are accumulated in float64
either way.
"""

import threading

import numpy as np
import tensorflow as tf

from xai_callback.explain.methods.algorithm import AttributionAlgorithm

_INDEX = tf.TensorSpec([], tf.int64)
# Held while a compiled function is traced (see `compiled`); re-entrant for nested traces.
_TRACING = threading.RLock()
# Compiled functions kept per cache (explainer), least recently used dropped
# first. Settings a request varies (counts, sigmas, seed, topK, outputIndices)
# are tensor arguments and trace nothing new; what does is structure: the
# method, output, granularity, input shapes past the batch (about 1 MB each).
# 24 hold every in-graph method (prepare + at most 3 functions each, ~10 in
# all) for two outputs or granularities; a dropped one is traced again.
MAX_COMPILED = 24


def run(problem, method, report=None, report_key=None):
    """Runs `method` on `problem` chunk by chunk from Python; returns its result (numpy).

    `report(attributions, unit_instance, frozen)`, graph code keyed by
    `report_key`, runs in the same compiled call as `finish`; its value is the
    result's "reported" entry.
    """
    method = method.bind(problem)
    method_key = method.cache_key()  # Shapley's holds its player maps: build it once a call
    state = tf.nest.map_structure(tf.convert_to_tensor, problem_state(problem, method))
    if type(method).start is not AttributionAlgorithm.start:  # a method without one adds nothing
        state = _compiled(problem, ("start", method_key), method.start, (state,))(state)
    total_rows = int(method.total_rows(state))
    per_item = method.rows_per_item(state)
    rows, items = None, None
    begin, end = tf.constant(0, tf.int64), tf.constant(0, tf.int64)
    chunk_fn = _compiled(problem, ("chunk", method_key), _with_evaluate(problem, method.chunk),
                         (state, begin, end))
    chunk = problem.rows_per_call()
    for begin in range(0, total_rows, chunk):
        stop = min(begin + chunk, total_rows)
        result = tf.nest.map_structure(np.asarray, chunk_fn(state, tf.constant(begin, tf.int64),
                                                            tf.constant(stop, tf.int64)))
        if rows is None:
            rows = tf.nest.map_structure(lambda r: np.zeros((total_rows,) + r.shape[1:]), result["rows"])
            items = tf.nest.map_structure(
                lambda s: np.zeros((total_rows // per_item,) + s.shape[1:]), result["items"])
        for acc, value in zip(tf.nest.flatten(rows), tf.nest.flatten(result["rows"])):
            acc[begin:stop] = value
        first = begin // per_item
        for acc, value in zip(tf.nest.flatten(items), tf.nest.flatten(result["items"])):
            acc[first:first + len(value)] += value
        if problem.progress is not None:
            problem.progress(stop, total_rows)
    originals = (tf.convert_to_tensor(problem.unit_instance),
                 tf.nest.map_structure(tf.convert_to_tensor, problem.frozen))
    finish = _compiled(problem, ("finish", method_key, report_key),
                       _finish_and_report(method, report), (state, rows, items, originals))
    return tf.nest.map_structure(np.asarray, finish(state, rows, items, originals))


def _finish_and_report(method, report):
    def finish(state, rows, items, originals):
        result = method.finish(state, rows, items)
        if report is not None:
            result = {**result, "reported": report(result["attributions"], *originals)}
        return result

    return finish


def run_in_graph(problem, method, rows_per_call, report=None, report_key=None):
    """`run` as graph code: the chunks in a `tf.while_loop`; the result as tensors."""
    method = method.bind(problem)
    state = method.start(tf.nest.map_structure(tf.convert_to_tensor, problem_state(problem, method)))
    total_rows = tf.cast(method.total_rows(state), tf.int64)
    per_item = tf.cast(method.rows_per_item(state), tf.int64)
    chunk_fn = _with_evaluate(problem, method.chunk)
    # One chunk's structure (its leaves' example shapes and dtypes) sizes the accumulators.
    probe = chunk_fn(state, tf.constant(0, tf.int64), tf.minimum(total_rows, 1))
    rows = tf.nest.map_structure(lambda r: tf.zeros(_rows_shape(total_rows, r), tf.float64),
                                 probe["rows"])
    items = tf.nest.map_structure(lambda s: tf.zeros(_rows_shape(total_rows // per_item, s),
                                                     tf.float64), probe["items"])

    def body(begin, rows, items):
        stop = tf.minimum(begin + rows_per_call, total_rows)
        result = chunk_fn(state, begin, stop)
        positions = tf.range(begin, stop)[:, None]
        rows = tf.nest.map_structure(
            lambda acc, value: tf.tensor_scatter_nd_update(acc, positions, tf.cast(value, tf.float64)),
            rows, result["rows"])

        def add(acc, value):
            first = begin // per_item
            where = tf.range(first, first + tf.shape(value, out_type=tf.int64)[0])[:, None]
            return tf.tensor_scatter_nd_add(acc, where, tf.cast(value, tf.float64))

        return stop, rows, tf.nest.map_structure(add, items, result["items"])

    _, rows, items = tf.while_loop(
        lambda begin, *_: begin < total_rows, body,
        (tf.constant(0, tf.int64), rows, items))
    return _finish_and_report(method, report)(state, rows, items,
                                              (problem.unit_instance, problem.frozen))


def problem_state(problem, method):
    """The tensors `method`'s graph code reads: the problem's and the method's settings."""
    return {
        **method.settings_state(),
        "inputs": problem.inputs,
        "baselines": problem.baselines,
        "frozen": problem.frozen,
        "unit_instance": problem.unit_instance,
        "unit_mask": problem.unit_mask,
        "seed": tf.cast(problem.seed, tf.int64),
    }


def _rows_shape(count, like):
    return tf.concat([[count], tf.shape(like, out_type=tf.int64)[1:]], axis=0)


def _with_evaluate(problem, chunk_fn):
    """`chunk_fn(evaluate, state, start, stop)` with the problem's model bound as `evaluate`."""
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

    return chunk


def _compiled(problem, key, fn, args):
    """`fn` compiled for `args`' signature, cached in `problem.compiled`."""
    # Autograph only for Python model functions (tensor-dependent `if`s ran
    # eagerly before); signatures are graphs already and trace 2x faster without.
    graph_model = isinstance(problem.model_fn, tf.types.experimental.ConcreteFunction)
    return compiled(problem.compiled, (key, problem.output_key), fn, args, autograph=not graph_model)


def compiled(cache, key, fn, args, autograph=False):
    """`fn` as a concrete `tf.function` for the signature of `args` (leading dimensions
    free), cached in `cache` under `key` and that signature."""
    key = (key, tuple(_leaf_signature(args)))
    found = cache.pop(key, None)
    if found is not None:
        cache[key] = found  # the most recently used last (dicts keep insertion order)
        return found
    # TensorFlow builds the gradient functions of a loaded signature without
    # a lock: two threads tracing at once can fail ("'NoneType' object is
    # not iterable"). Traces are made one at a time; calls run in parallel.
    with _TRACING:
        found = cache.get(key)
        if found is None:
            # The concrete function: calling it skips tf.function's dispatch (~0.5 ms a call).
            found = cache[key] = tf.function(
                fn, input_signature=[_specs(a) for a in args],
                autograph=autograph).get_concrete_function()
            while len(cache) > MAX_COMPILED:
                cache.pop(next(iter(cache)), None)  # the least recently used
    return found


def compiled_call(cache):
    """`call(key, fn, args)`: `fn(*args)` run as a cached compiled function."""
    def call(key, fn, args):
        args = tf.nest.map_structure(tf.convert_to_tensor, args)
        return compiled(cache, key, fn, args)(*args)

    return call


def _leaf_signature(structure, path=()):
    """`(path, dtype, shape without the leading dimension)` of each leaf (cheaper than specs)."""
    if isinstance(structure, dict):
        for key in sorted(structure):
            yield from _leaf_signature(structure[key], path + (key,))
    elif isinstance(structure, (list, tuple)):
        for index, value in enumerate(structure):
            yield from _leaf_signature(value, path + (index,))
    else:
        shape = structure.shape
        yield path, structure.dtype, tuple(shape[1:]) if len(shape) else None


def _specs(structure):
    """Specs with a free leading dimension (instances, units, rows vary by call)."""
    def spec(value):
        value = tf.convert_to_tensor(value)
        shape = value.shape.as_list()
        return tf.TensorSpec([None] + shape[1:] if shape else [], value.dtype)

    return tf.nest.map_structure(spec, structure)


def _selected_output(output, mask):
    """The explained output element of each row, `[rows]`."""
    dtype = output.dtype if output.dtype.is_floating else tf.float32
    product = tf.cast(output, dtype) * tf.cast(mask, dtype)
    return tf.reduce_sum(tf.reshape(product, [tf.shape(product)[0], -1]), axis=1)


def leading(tensor):
    """The leading dimension: a Python int when known (eager), else a graph tensor."""
    size = tensor.shape[0]
    return size if size is not None else tf.shape(tensor, out_type=tf.int64)[0]


def num_units(state):
    return leading(state["unit_instance"])


def num_baselines(state):
    return leading(next(iter(state["baselines"].values())))


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


def start_deltas(state, key):
    """`x - baseline` of every unit, `[units, num_baselines, *example]` float64, 0 where frozen."""
    x = tf.cast(tf.gather(state["inputs"][key], state["unit_instance"]), tf.float64)
    delta = x[:, None] - tf.cast(state["baselines"][key], tf.float64)[None]
    if key in state["frozen"]:
        frozen = tf.gather(state["frozen"][key], state["unit_instance"])[:, None]
        delta = tf.where(frozen, tf.zeros_like(delta), delta)
    return delta


def broadcast_rows(values, like):
    """Reshapes a `[rows]` tensor to broadcast against `like` `[rows, ...]`."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))


def relative_gap(gap, instance_output, baseline_output):
    """`|gap| / |f(x) - f(baseline)|`, the reported approximation error (graph code).

    For integrated gradients `gap` is the completeness gap
    `sum(attributions) - (f(x) - f(baseline))`, which is zero for the exact
    path integral and shrinks as `stepCount` rises. A tiny term in the
    denominator keeps an instance equal to its baseline from dividing by zero.
    """
    change = tf.abs(instance_output - baseline_output)
    scale = tf.abs(instance_output) + tf.abs(baseline_output)
    return tf.abs(gap) / (change + 1e-6 * scale + 1e-12)


def summed(attributions):
    """Sum of every unit's attributions over all features, `[num_units]`."""
    return tf.add_n([tf.reduce_sum(tf.reshape(a, [tf.shape(a)[0], -1]), axis=1)
                     for a in attributions.values()])
