"""Local explanations: batched integrated gradients vs a per-step loop and the floor.

Same run, runs interleaved round by round (benchmarks/common.py), medians:
- batched `Explainer.explain` (all steps of all instances in a few calls),
  at the default chunk size and at a small `max_rows_per_call`;
- a plain Python loop over the steps: one signature call per step with all
  instances in it (and, fewer rounds, one call per instance and step);
- the floor: one gradient call through `xai_model` on all rows, prebuilt,
  eagerly (the issue's definition) and compiled into a `tf.function` (a
  stricter floor: the explainer compiles its chunks too);
- peak memory (ru_maxrss of a fresh subprocess per run, at most 5 rounds) at
  the default chunk size and at a small and a large `max_rows_per_call`, on
  an image model whose rows are large.

Run:  .venv/bin/python benchmarks/bench_explain.py [--repeats 15] [--quick]
(--quick: 8 instances x 10 steps, one memory round without the large chunk; < 30 s)
"""

import argparse
import gc
import os
import resource
import tempfile

import common

import numpy as np  # noqa: E402  (common quiets TF first)
import tensorflow as tf  # noqa: E402

from xai_callback.publish import storage  # noqa: E402
from xai_callback.explain import load_explainer  # noqa: E402
from xai_callback.explain.methods.algorithm import default_rows_per_call  # noqa: E402

SMALL_CHUNK = 64
LARGE_CHUNK = 4096  # every row of the image run in one call
CLASSES = 10
VARIANTS = ("batched", "batched_small_chunk", "step_loop", "floor", "floor_compiled")


def mlp_export(path, features=32, width=256):
    """A tanh MLP classifier, float32[None, features] -> probabilities."""
    rng = np.random.default_rng(0)
    module = tf.Module()
    module.w = [tf.Variable(rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32))
                for a, b in [(features, width), (width, width), (width, CLASSES)]]

    @tf.function(input_signature=[tf.TensorSpec([None, features], tf.float32, name="x")])
    def model(x):
        h = tf.tanh(tf.tanh(x @ module.w[0]) @ module.w[1])
        return {"probabilities": tf.nn.softmax(h @ module.w[2])}

    tf.saved_model.save(module, path, signatures={"serving_default": model, "xai_model": model})
    return path


def image_export(path, size=32, channels=16):
    """A small conv net on float32[None, size, size, 3] images."""
    rng = np.random.default_rng(1)
    module = tf.Module()
    module.k1 = tf.Variable(rng.normal(0, 0.2, (3, 3, 3, channels)).astype(np.float32))
    module.k2 = tf.Variable(rng.normal(0, 0.1, (3, 3, channels, channels)).astype(np.float32))
    module.d = tf.Variable(rng.normal(0, 0.1, (channels, CLASSES)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="image")])
    def model(image):
        h = tf.nn.relu(tf.nn.conv2d(image, module.k1, 1, "SAME"))
        h = tf.nn.relu(tf.nn.conv2d(h, module.k2, 1, "SAME"))
        return {"scores": tf.nn.softmax(tf.reduce_mean(h, axis=[1, 2]) @ module.d)}

    tf.saved_model.save(module, path, signatures={"serving_default": model, "xai_model": model})
    return path


def step_loop(fn, x, output_index, steps):
    """Per-step loop: one gradient call per interpolation step (trapezoid, zero baseline)."""
    total = tf.zeros_like(x)
    mask = tf.one_hot(output_index, CLASSES)
    for alpha in np.linspace(0.0, 1.0, steps + 1):
        rows = alpha * x
        with tf.GradientTape() as tape:
            tape.watch(rows)
            value = tf.reduce_sum(fn(x=rows)["probabilities"] * mask, axis=1)
        weight = 0.5 if alpha in (0.0, 1.0) else 1.0
        total += weight / steps * tape.gradient(value, rows)
    return x * total


def row_loop(fn, x, output_index, steps):
    """Per-row loop: one gradient call per (instance, step)."""
    return [step_loop(fn, x[i:i + 1], output_index[i:i + 1], steps) for i in range(x.shape[0])]


def floor_call(fn, rows, mask):
    """The floor: a single gradient call on all rows, built beforehand."""
    with tf.GradientTape() as tape:
        tape.watch(rows)
        value = tf.reduce_sum(fn(x=rows)["probabilities"] * mask, axis=1)
    return tape.gradient(value, rows)


def time_mlp(export_dir, instances, steps, repeats, quick):
    explainer = load_explainer(export_dir, validate=False)
    inputs = {"x": np.random.default_rng(2).normal(size=(instances, 32)).astype(np.float32)}
    fn, x = explainer.model_fn, tf.constant(inputs["x"])
    index = tf.argmax(fn(x=x)["probabilities"], axis=1)
    rows = tf.repeat(x, steps + 1, axis=0) * tf.tile(
        tf.linspace(0.0, 1.0, steps + 1)[:, None], [instances, 1])
    mask = tf.repeat(tf.one_hot(index, CLASSES), steps + 1, axis=0)
    compiled_floor = tf.function(
        lambda rows, mask: floor_call(fn, rows, mask)).get_concrete_function(rows, mask)
    runs = {
        "batched": lambda: explainer.explain(inputs, step_count=steps),
        "batched_small_chunk": lambda: explainer.explain(
            inputs, step_count=steps, max_rows_per_call=SMALL_CHUNK),
        "step_loop": lambda: step_loop(fn, x, index, steps),
        "floor": lambda: floor_call(fn, rows, mask),
        "floor_compiled": lambda: compiled_floor(rows, mask),
        "row_loop": lambda: row_loop(fn, x, index, steps),
    }
    # Everything alive now lives to the end: spare common.timed's gc.collect
    # from rescanning it before every run (0.2 s each, most of a --quick run).
    gc.freeze()
    measure = lambda name: common.timed(runs[name])[0]  # noqa: E731
    results = common.interleaved(list(VARIANTS), repeats, measure)
    # The per-row loop takes seconds a run: a few rounds of its own.
    if not quick:
        results.update(common.interleaved(["row_loop"], 5, measure))
    got = np.stack([e.attributions[0].feature_attributions["x"]
                    for e in runs["batched"]().explanations])
    max_diff = float(np.max(np.abs(got - step_loop(fn, x, index, steps).numpy())))
    return results, max_diff


def memory_worker(export_dir, instances, steps, max_rows_per_call):
    """In a fresh process: peak RSS of one batched IG run on the image model."""
    explainer = load_explainer(export_dir, validate=False)
    images = np.random.default_rng(3).random((instances, 32, 32, 3)).astype(np.float32)
    explainer.explain({"image": images[:2]}, step_count=2)  # loads kernels, traces the chunk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, _ = common.timed(explainer.explain, {"image": images}, step_count=steps,
                            max_rows_per_call=max_rows_per_call)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    common.report({"peak_mb": after / 1024, "growth_mb": (after - before) / 1024,
                   "seconds": times["wall"]})


def measure_memory(image_dir, instances, steps, chunks, repeats):
    """`{label: [worker result, ...]}`, settings interleaved, one process per run."""
    def run_one(label):
        args = ["--worker", image_dir, "--instances", instances, "--steps", steps]
        if chunks[label]:
            args += ["--max-rows-per-call", chunks[label]]
        return common.run_fresh(__file__, *args)

    return common.interleaved(list(chunks), repeats, run_one, warmup=False)


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--worker", metavar="EXPORT_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--max-rows-per-call", type=int)
    args = parser.parse_args()
    if args.worker:
        return memory_worker(args.worker, args.instances, args.steps, args.max_rows_per_call)
    instances, steps = (8, 10) if args.quick else (args.instances, args.steps)
    work = tempfile.mkdtemp(prefix="bench_explain_")
    try:
        timing, max_diff = time_mlp(mlp_export(os.path.join(work, "mlp")), instances, steps,
                                    args.repeats, args.quick)
        print_timing(timing, max_diff, instances, steps)
        image_dir = image_export(os.path.join(work, "image"))
        default = default_rows_per_call({"image": tf.zeros([1, 32, 32, 3])})
        chunks = {f"default ({default})": None, f"small ({SMALL_CHUNK})": SMALL_CHUNK}
        if not args.quick:
            chunks[f"large ({LARGE_CHUNK})"] = LARGE_CHUNK
        # Fresh processes take seconds to start: at most 5 rounds (1 with --quick).
        memory = measure_memory(image_dir, instances, steps, chunks,
                                1 if args.quick else min(args.repeats, 5))
        print_memory(memory, instances, steps)
    finally:
        storage.rmtree(work)
    print(f"\n{common.machine_note()}")


def print_timing(timing, max_diff, instances, steps):
    rows = instances * (steps + 1)
    print("### Local explanations: batched integrated gradients\n")
    print(f"MLP 32-256-256-10 (tanh) from a SavedModel, {instances} instances x {steps} steps "
          f"(trapezoid rule: {rows} rows), interleaved rounds: median [min-max].\n")
    labels = {
        "batched": "batched `explain` (default chunk)",
        "batched_small_chunk": f"batched `explain`, max_rows_per_call={SMALL_CHUNK}",
        "step_loop": "per-step loop (one call per step)",
        "row_loop": "per-row loop (one call per instance and step)",
        "floor": "floor: one gradient call on all rows (eager)",
        "floor_compiled": "floor, compiled into a tf.function",
    }
    table = []
    for name, label in labels.items():
        if name not in timing:
            continue
        row = [label]
        for clock in ("wall", "cpu"):
            times, batched = common.column(timing[name], clock), common.column(timing["batched"], clock)
            ratio = (common.fmt_ratio(common.paired_ratios(times, batched)) if name in VARIANTS
                     else f"{np.median(times) / np.median(batched):.1f}×")
            row += [common.fmt_ms(times), ratio]
        table.append(row)
    print(common.markdown_table(["run", "wall time", "wall vs batched", "CPU time",
                                 "CPU vs batched"], table))
    print()
    for clock in ("wall", "cpu"):
        times = {name: common.column(timing[name], clock) for name in VARIANTS}
        speedup = common.paired_ratios(times["step_loop"], times["batched"])
        over_floor = common.paired_ratios(times["batched"], times["floor"])
        over_compiled = common.paired_ratios(times["batched"], times["floor_compiled"])
        print(f"- {clock}: batched vs per-step loop {common.fmt_ratio(speedup)} faster "
              f"(goal ≥ 5×); batched / floor {common.fmt_ratio(over_floor)} (goal ≤ 1.3×), "
              f"/ compiled floor {common.fmt_ratio(over_compiled)}")
    print(f"- max |batched − per-step loop| attribution: {max_diff:.1e}", flush=True)


def print_memory(memory, instances, steps):
    print(f"\nImage conv net (32x32x3, two 3x3 conv layers of 16 channels), {instances} instances "
          f"x {steps} steps, one fresh process per run, settings interleaved: median [min-max].\n")
    table = [[label, common.fmt_seconds(common.column(runs, "peak_mb"), unit="MB", digits=0),
              common.fmt_seconds(common.column(runs, "growth_mb"), unit="MB", digits=0),
              common.fmt_seconds(common.column(runs, "seconds"), digits=2)]
             for label, runs in memory.items()]
    print(common.markdown_table(["max_rows_per_call", "peak RSS", "RSS growth in explain", "time"],
                                table))


if __name__ == "__main__":
    main()
