"""Export cost per Keras backend: JAX (jax2tf, TF subprocess) and PyTorch vs TensorFlow.

The same MLP (same seed) is built on each backend in a fresh process; there
one untimed warm-up export, then one timed `ExplainableExporter.prepare()`
(turning the model into TensorFlow signatures: what the callback does in
`on_train_begin`, once per fit) and one timed `export()` (weights into the
TensorFlow copy, write, reload, verify: what it does per export). Each round
runs every variant once, in rotated order; ratios are to the TensorFlow
backend's export of the same round.
"""

import argparse
import os
import shutil
import tempfile

import common

VARIANTS = {  # name: (label, environment of the worker process)
    "tensorflow": ("TensorFlow backend (baseline)", {"KERAS_BACKEND": "tensorflow"}),
    "jax": ("JAX, jax2tf in process (default)",
            {"KERAS_BACKEND": "jax", "XAI_CALLBACK_JAX_ROUTE": "jax2tf"}),
    "jax_subprocess": ("JAX, TensorFlow subprocess (fallback)",
                       {"KERAS_BACKEND": "jax", "XAI_CALLBACK_JAX_ROUTE": "tf_subprocess"}),
    "torch": ("PyTorch, TensorFlow subprocess", {"KERAS_BACKEND": "torch"}),
}
FULL = {"features": 16, "hidden": (64, 32)}
QUICK = {"features": 4, "hidden": (8,)}


def export_once(settings, workdir):
    """Timings of prepare() and export() of a freshly built model."""
    import xai_callback

    model = common.build_mlp(settings["features"], settings["hidden"])
    exporter = xai_callback.ExplainableExporter(model)
    prepare, _ = common.timed(exporter.prepare)
    export, result = common.timed(exporter.export, tempfile.mkdtemp(dir=workdir) + "/export")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(result.path) for f in files)
    return {"prepare": prepare["wall"], "prepare_cpu": prepare["cpu"], "export": export["wall"],
            "export_cpu": export["cpu"], "size": size}


def worker(settings):
    workdir = tempfile.mkdtemp(prefix="bench_backend_export_")
    try:
        export_once(settings, workdir)  # warm-up: first tracing, imports of the route
        return export_once(settings, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def available(name):
    import importlib.util

    backend = VARIANTS[name][1]["KERAS_BACKEND"]
    return backend == "tensorflow" or importlib.util.find_spec(backend) is not None


def main(argv=None):
    parser = common.base_parser(__doc__)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.worker:
        common.report(worker(settings))
        return
    names = [n for n in VARIANTS if available(n)]
    repeats = 1 if args.quick else args.repeats
    extra = ["--quick"] if args.quick else []
    results = common.interleaved(
        names, repeats, lambda n: common.run_fresh(__file__, "--worker", *extra, env=VARIANTS[n][1]),
        warmup=False,
    )
    base = results["tensorflow"]
    rows = []
    for name in names:
        runs = results[name]
        row = [VARIANTS[name][0]]
        for stage in ("prepare", "export"):
            row.append(common.fmt_ms(common.column(runs, stage)))
            row.append("1 (baseline)" if name == "tensorflow" else common.fmt_ratio(
                common.paired_ratios(common.column(runs, stage), common.column(base, stage))))
        row.append(f"{common.summary(common.column(runs, 'size'))['median'] / 1024:.0f} KiB")
        rows.append(row)
    print(f"## Export cost per Keras backend ({repeats} interleaved rounds, each variant in a fresh process "
          f"after one warm-up export; MLP {settings['features']}→{'→'.join(map(str, settings['hidden']))}→1, "
          "verify=True)\n")
    print(common.markdown_table(
        ["variant", "prepare (once per fit, wall)", "ratio to TF", "export (per write, wall)", "ratio to TF",
         "export size"], rows))
    print(f"\nMachine: {common.machine_note()}")


if __name__ == "__main__":
    main()
