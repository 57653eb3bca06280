"""What carrying state costs on the TensorFlow subprocess route (JAX fallback, PyTorch).

Route 2 used to hand the worker the model's Keras config only (state that is
not a weight was lost); it now hands it the model's `.keras` file (config,
weights, adapted statistics, vocabularies). This measures, on PyTorch, the
parent's side of that step, in the same process, interleaved:

- baseline: `json.dump` of the model's config (what route 2 wrote before);
- `.keras`: `tf_subprocess.save_model` (what it writes now);

for a small MLP and a MobileNetV2 (weights=None), beside one whole
`ExplainableExporter.prepare()` of the same model (the route's cost per fit,
worker process included) for scale.
"""

import argparse
import json
import os
import shutil
import tempfile

import common

MODELS = {"mlp": "MLP 16→64→32→1", "mobilenet": "MobileNetV2 (alpha 1.0, 96×96, weights=None)"}
QUICK_MODELS = ("mlp",)


def build(name):
    import keras

    if name == "mlp":
        return common.build_mlp(16, (64, 32))
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=1.0, weights=None, classes=3)
    model.compile("adam", "categorical_crossentropy")
    return model


def worker(names, repeats):
    import keras

    from xai_callback.backends import numpy_copy_notice_hidden
    from xai_callback.backends.tf_subprocess import save_model

    workdir = tempfile.mkdtemp(prefix="bench_state_carry_")

    def write_config(model):
        with numpy_copy_notice_hidden():
            config = keras.saving.serialize_keras_object(model)
        config.pop("compile_config", None)
        with open(os.path.join(workdir, "model_config.json"), "w") as f:
            json.dump(config, f)

    def write_keras(model):
        save_model(model, os.path.join(workdir, "model.keras"))

    results = {}
    try:
        for name in names:
            model = build(name)
            steps = {"config": write_config, "keras": write_keras}
            runs = common.interleaved(list(steps), repeats, lambda s: common.timed(steps[s], model)[0]["wall"])
            import xai_callback

            prepare, _ = common.timed(xai_callback.ExplainableExporter(model).prepare)
            results[name] = {**runs, "prepare": prepare["wall"], "params": model.count_params(),
                             "file": os.path.getsize(os.path.join(workdir, "model.keras"))}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv=None):
    parser = common.base_parser(__doc__)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = QUICK_MODELS if args.quick else tuple(MODELS)
    repeats = 1 if args.quick else args.repeats
    if args.worker:
        common.report(worker(names, repeats))
        return
    extra = ["--quick"] if args.quick else ["--repeats", str(repeats)]
    results = common.run_fresh(__file__, "--worker", *extra, env={"KERAS_BACKEND": "torch"})
    rows = []
    for name in names:
        r = results[name]
        added = common.summary(common.paired_differences(r["keras"], r["config"]))["median"]
        rows.append([MODELS[name], f"{r['params'] / 1e6:.2f} M", common.fmt_ms(r["config"]),
                     common.fmt_ms(r["keras"]), common.fmt_ratio(common.paired_ratios(r["keras"], r["config"])),
                     f"{r['file'] / 2**20:.1f} MiB", f"{r['prepare']:.1f} s",
                     f"{100 * added / r['prepare']:.1f} %"])
    print(f"## Route 2 hands the worker a .keras file instead of a config (PyTorch, {repeats} interleaved "
          "rounds, medians [min–max])\n")
    print(common.markdown_table(
        ["model", "params", "config only (before, baseline)", ".keras file (now)", "ratio", ".keras size",
         "whole prepare() (one run)", "added share of prepare()"], rows))
    print(f"\nMachine: {common.machine_note()}")


if __name__ == "__main__":
    main()
