"""batch-explain on the DirectRunner vs a plain loop, peak memory per worker, TensorBoard logging cost.

Same run, each variant in a fresh process (so imports, loads and peak memory
are its own), rounds interleaved (benchmarks/common.py), medians:

- rows/s of `batch_explain` (JSON Lines in, Vertex's batch layout and
  importance.json out) with 1 worker (the DirectRunner's in-process engine)
  and 2 workers (`--direct_num_workers=2 --direct_running_mode=multi_processing`),
  against the baseline: a plain loop that loads the export once
  (`load_explainer`, as `xai_callback.explain` does per call) and calls
  `explain_instances` on batches of the same size, writing the same JSON
  lines (goal: >= 0.8x the loop with 1 worker, >= 1.5x with 2, on 2 cores).
  Wall time of the whole call after imports: loading, validating, reading,
  explaining, writing (for 2 workers also the workers' start and imports).
- the same on a quarter of the rows, which separates the fixed cost (start,
  imports, load, validation) from the rows/s once running: (rows - rows/4) /
  (wall - wall of the quarter).
- peak resident memory of each process: the launcher (1 worker: also the
  worker) and the largest worker process (2 workers).
- the cost of `AttributionLogger` per epoch as a share of an epoch without it
  (MLP on tabular data, a CNN on images, a text model), sample of 64 rows.

Model of the batch figures: the PetFinder model of examples/structured_preprocessing.py
(strings and ints through Keras lookups, split automatically, exported with
`xai_explain`), trained one epoch on generated rows.

Run:  .venv/bin/python benchmarks/bench_batch.py [--repeats 5] [--rows 8192] [--quick]
"""

import json
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings

import common

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
BATCH_SIZE = 64
LOGGER_SAMPLE = 64


def prepare(root, rows):
    """The PetFinder export (with xai_explain) and a JSON Lines file of `rows` instances."""
    import structured_preprocessing as petfinder

    from xai_callback import export_explainable_model

    data, labels = petfinder.make_data(512, 0)
    model = petfinder.build_model(data)
    import tensorflow as tf

    model.fit(tf.data.Dataset.from_tensor_slices((dict(data), labels)).batch(32), epochs=1, verbose=0)
    export_dir = os.path.join(root, "export")
    export_explainable_model(model, export_dir, explain_signature=True,
                             sample={k: v[:4] for k, v in data.items()})
    rows_data, _ = petfinder.make_data(rows, 1)
    lines = [json.dumps({k: v[i, 0].item() if hasattr(v[i, 0], "item") else v[i, 0]
                         for k, v in rows_data.items()}) + "\n" for i in range(rows)]
    paths = {}
    for size, count in (("full", rows), ("small", rows // 4)):
        paths[size] = os.path.join(root, f"instances-{size}.jsonl")
        with open(paths[size], "w") as handle:
            handle.writelines(lines[:count])
    return export_dir, paths


def worker(variant, export_dir, path, out):
    """One timed run in this fresh process; reports rows/s and peak memory."""
    import numpy as np  # noqa: F401  (imports done before the clock starts)
    import tensorflow as tf  # noqa: F401

    shutil.rmtree(out, ignore_errors=True)
    if variant == "loop":
        from xai_callback.explain import load_explainer

        start = time.perf_counter()
        instances = [json.loads(line) for line in open(path)]
        explainer = load_explainer(export_dir)
        os.makedirs(out)
        with open(os.path.join(out, "results.jsonl"), "w") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(0, len(instances), BATCH_SIZE):
                batch = instances[i:i + BATCH_SIZE]
                response = explainer.explain_instances(batch).to_dict()
                for instance, prediction, explanation in zip(batch, response["predictions"],
                                                             response["explanations"]):
                    handle.write(json.dumps({"instance": instance, "prediction": prediction,
                                             "explanation": explanation}) + "\n")
        rows = len(instances)
    else:
        import apache_beam  # noqa: F401

        from xai_callback.batch import batch_explain

        flags = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"] if variant == "beam2" else []
        start = time.perf_counter()
        result = batch_explain(export_dir, path, out, batch_size=BATCH_SIZE, pipeline_options=flags)
        rows = result.explained
    wall = time.perf_counter() - start
    common.report({"wall": wall, "rows": rows,
                   "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})


def logger_worker(kind, epochs):
    """Epoch times of one model with and without AttributionLogger (fresh process)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from xai_callback import AttributionLogger

    rng = np.random.default_rng(0)
    if kind == "mlp":
        x = rng.normal(size=(8192, 16)).astype("float32")
        y = (x[:, 0] > 0).astype("float32")
        inputs = keras.Input((16,), name="features")
        h = keras.layers.Dense(64, activation="relu")(inputs)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(h)
        data, sample = (x, y), x[:LOGGER_SAMPLE]
    elif kind == "cnn":
        x = rng.uniform(size=(2048, 28, 28, 1)).astype("float32")
        y = (x[:, :14].mean(axis=(1, 2, 3)) > 0.5).astype("float32")
        inputs = keras.Input((28, 28, 1), name="image")
        h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
        h = keras.layers.GlobalAveragePooling2D()(h)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(h)
        data, sample = (x, y), x[:LOGGER_SAMPLE]
    else:
        sys.path.insert(0, os.path.join(HERE, "..", "tests"))
        from preprocessing_models import reviews

        texts, labels = reviews(4096, 0)
        vectorize = keras.layers.TextVectorization(max_tokens=32, output_sequence_length=8)
        vectorize.adapt(texts[:, 0])
        inputs = keras.Input((1,), dtype="string", name="text")
        h = keras.layers.Embedding(32, 8, mask_zero=True)(vectorize(inputs))
        h = keras.layers.GlobalAveragePooling1D()(h)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(h)
        data, sample = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(32), {"text": texts[:LOGGER_SAMPLE]}

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    out = {}
    for variant in ("without", "with"):
        keras.utils.set_random_seed(0)
        model = keras.Model(inputs, outputs)
        model.compile("adam", "binary_crossentropy")
        timer = EpochTimer()
        timer.times = []
        # The timer is last: the logger's work at epoch end is inside the epoch it logs.
        callbacks = ([AttributionLogger(tempfile.mkdtemp(), sample=sample)] if variant == "with" else []) + [timer]
        if isinstance(data, tuple):
            model.fit(*data, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
        else:
            model.fit(data, epochs=epochs, verbose=0, callbacks=callbacks)
        out[variant] = timer.times[1:]  # the first epoch traces the functions
        if variant == "with":
            out["logger_seconds"] = callbacks[0].seconds[1:]
    common.report(out)


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192, help="instances explained per run (8192)")
    parser.add_argument("--worker", nargs="*", help=argparse_suppress())
    args = parser.parse_args()
    if args.worker:
        if args.worker[0] == "logger":
            return logger_worker(args.worker[1], int(args.worker[2]))
        return worker(*args.worker)
    rows = 512 if args.quick else args.rows
    repeats = 1 if args.quick else args.repeats
    root = tempfile.mkdtemp(prefix="bench_batch_")
    export_dir, paths = prepare(root, rows)
    script = os.path.abspath(__file__)

    def run_one(name):
        variant, size = name.split(":")
        return common.run_fresh(script, "--worker", variant, export_dir, paths[size], os.path.join(root, variant))

    names = [f"{v}:{size}" for v in ("loop", "beam1", "beam2") for size in ("full", "small")]
    found = common.interleaved(names, repeats, run_one, warmup=False)
    results = {name.split(":")[0]: found[name] for name in names if name.endswith(":full")}
    small = {name.split(":")[0]: found[name] for name in names if name.endswith(":small")}
    loop_wall = common.column(results["loop"], "wall")
    table = []
    for variant, label in (("loop", "plain loop over `explain_instances` (baseline)"),
                           ("beam1", "`batch_explain`, DirectRunner, 1 worker"),
                           ("beam2", "`batch_explain`, DirectRunner, 2 worker processes")):
        walls = common.column(results[variant], "wall")
        rates = [r["rows"] / r["wall"] for r in results[variant]]
        ratio = common.paired_ratios(loop_wall, walls)
        memory = common.summary(common.column(results[variant], "self_mb"))["median"]
        workers = common.summary(common.column(results[variant], "children_mb"))["median"]
        marginal = [(r["rows"] - q["rows"]) / (r["wall"] - q["wall"])
                    for r, q in zip(results[variant], small[variant])]
        fixed = common.summary([q["wall"] - q["rows"] / m for q, m in zip(small[variant], marginal)])["median"]
        table.append([label, f"{common.summary(rates)['median']:.0f}", common.fmt_seconds(walls),
                      common.fmt_ratio(ratio) if variant != "loop" else "1",
                      f"{common.summary(marginal)['median']:.0f}", f"{fixed:.1f}",
                      f"{memory:.0f}" + (f" (largest worker {workers:.0f})" if variant == "beam2" else "")])
    print(f"\n### batch-explain: {rows} PetFinder instances, batches of {BATCH_SIZE}\n")
    print(common.markdown_table(
        ["variant", "rows/s (median)", "wall s, median [min–max]", "speed vs loop (per round)",
         "rows/s once running", "fixed cost s", "peak RSS MB"], table))

    epochs = 3 if args.quick else 6
    logger_rows = []
    for kind in ("mlp", "cnn", "text"):
        found = common.run_fresh(script, "--worker", "logger", kind, epochs)
        without = common.summary(found["without"])["median"]
        with_logger = common.summary(found["with"])["median"]
        logging_s = common.summary(found["logger_seconds"])["median"]
        logger_rows.append([kind, f"{without:.3f}", f"{with_logger:.3f}", f"{logging_s:.3f}",
                            f"{100 * logging_s / without:.1f} %"])
    print(f"\n### AttributionLogger: cost per epoch (sample {LOGGER_SAMPLE} rows, epochs 2..{epochs})\n")
    print(common.markdown_table(["model", "epoch s without", "epoch s with", "logging s", "share of an epoch"],
                                logger_rows))
    print(f"\n{common.machine_note()}\n")
    shutil.rmtree(root, ignore_errors=True)


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
