"""Export cost: export_explainable_model vs the seed's hand-written tf.saved_model.save recipe.

Cases: two MLPs (a CSV-line input parsed by `xai_preprocess`, and plain
features) and a MobileNetV2-sized CNN (`keras.applications.MobileNetV2(
weights=None)`, 224x224x3, uint8 images scaled by `xai_preprocess`), each with
the seed's signatures. Besides the whole call, "after prepare()" times only
what the callback runs after training: `prepare()` (tracing, checks on the
sample, the structural gradient probe) runs in `on_train_begin`, before the
first batch, and is reported on its own row.
"""

import cProfile
import pstats
import re
import shutil
import tempfile

import common

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402  (common quiets TF first)

import xai_callback  # noqa: E402

LABELS = {
    "recipe": "seed recipe (tf.saved_model.save)",
    "ours": "ours, verify=False (goal ≤ 1.10×)",
    "ours_verify": "ours, verify=True (prepare + export)",
    "ours_after_prepare": "ours, verify=True, after prepare() (after training; goal ≤ 1.0×)",
}
VARIANTS = tuple(LABELS)
CASES = ("csv", "plain", "cnn")
IMAGE_KEY = "images"  # the CNN's Keras Input name, so xai_model's input key


def make_parse_csv(n_features):
    """A fresh `xai_preprocess` function: CSV line -> {'features': float32[batch, n]}."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
    def parse_csv(csv_line):
        columns = tf.strings.split(csv_line, ",").to_tensor(shape=[None, n_features])
        return {"features": tf.strings.to_number(columns, tf.float32)}

    return parse_csv


def csv_sample(n_features, rows=8):
    """A few CSV lines to verify the csv export with."""
    x, _ = common.make_data(rows, n_features, seed=1)
    return {"csv_line": [",".join(f"{v:.6f}" for v in row) for row in x]}


def make_scale_images(size):
    """A fresh `xai_preprocess` for the CNN: uint8 images -> {'images': float32 in [-1, 1]}."""

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="image")])
    def scale_images(image):
        return {IMAGE_KEY: tf.cast(image, tf.float32) / 127.5 - 1.0}

    return scale_images


def image_sample(size, rows=2):
    """A couple of random uint8 images to verify the CNN export with."""
    return {"image": np.random.default_rng(1).integers(0, 256, (rows, size, size, 3), dtype=np.uint8)}


def build_cnn(size, alpha):
    """MobileNetV2 (untrained, no download), input named IMAGE_KEY."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3), name=IMAGE_KEY)
    return keras.applications.MobileNetV2(weights=None, input_tensor=inputs, alpha=alpha)


def build_model(case, settings):
    if case == "cnn":
        return build_cnn(settings["image_size"], settings["alpha"])
    return common.build_mlp(settings["features"], settings["hidden"])


def preprocess_for(case, settings):
    """`(preprocess_fn, its input spec, sample)` of a case, or None for 'plain'."""
    if case == "csv":
        fn = make_parse_csv(settings["features"])
        return fn, fn.input_signature[0], csv_sample(settings["features"])
    if case == "cnn":
        fn = make_scale_images(settings["image_size"])
        return fn, fn.input_signature[0], image_sample(settings["image_size"])
    return None


def export_recipe(model, export_dir, case, settings):
    """The seed's recipe: hand-written tf.functions and one tf.saved_model.save."""
    if case == "cnn":
        @tf.function(input_signature=[tf.TensorSpec(model.inputs[0].shape, tf.float32, name=IMAGE_KEY)])
        def model_fn(images):
            return {"score": model(images)}
    else:
        @tf.function(input_signature=[tf.TensorSpec(model.inputs[0].shape, tf.float32, name="features")])
        def model_fn(features):
            return {"score": model(features)}

    signatures = {"serving_default": model_fn, "xai_model": model_fn}
    preprocess = preprocess_for(case, settings)
    if preprocess:
        preprocess_fn, raw_spec, _ = preprocess

        @tf.function(input_signature=[raw_spec])
        def serving_fn(raw):
            return model_fn(**preprocess_fn(raw))

        signatures = {"serving_default": serving_fn, "xai_preprocess": preprocess_fn, "xai_model": model_fn}
    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, export_dir, signatures=signatures)


def exporter_for(model, case, settings, verify):
    """An ExplainableExporter with the same signatures as the recipe."""
    preprocess = preprocess_for(case, settings)
    options = {"preprocess_fn": preprocess[0], "sample": preprocess[2]} if preprocess else {}
    return xai_callback.ExplainableExporter(model, verify=verify, **options)


def export_ours(model, export_dir, case, settings, verify):
    """export_explainable_model with the same signatures (prepare() inside)."""
    exporter_for(model, case, settings, verify).export(export_dir)


def export_once(variant, case, settings, workdir):
    """Builds a fresh model (untimed) and times one export of it.

    Returns {'wall', 'cpu'} and, for "ours_after_prepare", the prepare() time
    as {'prepare_wall', 'prepare_cpu'}.
    """
    model = build_model(case, settings)
    export_dir = tempfile.mkdtemp(dir=workdir) + "/export"
    if variant == "recipe":
        seconds, _ = common.timed(export_recipe, model, export_dir, case, settings)
    elif variant == "ours_after_prepare":
        exporter = exporter_for(model, case, settings, verify=True)
        before, _ = common.timed(exporter.prepare)
        seconds, _ = common.timed(exporter.export, export_dir)
        seconds.update(prepare_wall=before["wall"], prepare_cpu=before["cpu"])
    else:
        seconds, _ = common.timed(export_ours, model, export_dir, case, settings,
                                  verify=variant == "ours_verify")
    shutil.rmtree(export_dir, ignore_errors=True)
    return seconds


def measure(case, settings, repeats, workdir):
    """Interleaved timings of the three variants on one model case."""
    return common.interleaved(list(VARIANTS), repeats, lambda v: export_once(v, case, settings, workdir))


def table(results):
    """Markdown table of all cases: wall and CPU medians, spreads and same-round ratios."""
    rows = []
    for case, runs in results.items():
        wall = {v: common.column(runs[v], "wall") for v in VARIANTS}
        cpu = {v: common.column(runs[v], "cpu") for v in VARIANTS}
        for variant, label in LABELS.items():
            if variant == "recipe":
                ratios = ["1 (baseline)", "1 (baseline)"]
            else:
                ratios = [common.fmt_ratio(common.paired_ratios(t[variant], t["recipe"])) for t in (wall, cpu)]
            rows.append([case, label, common.fmt_ms(wall[variant]), ratios[0], common.fmt_ms(cpu[variant]), ratios[1]])
        rows.append([case, "verification alone (verify=True − verify=False)",
                     common.fmt_ms(common.paired_differences(wall["ours_verify"], wall["ours"])), "",
                     common.fmt_ms(common.paired_differences(cpu["ours_verify"], cpu["ours"])), ""])
        prepare = [common.column(runs["ours_after_prepare"], f"prepare_{t}") for t in ("wall", "cpu")]
        rows.append([case, "prepare() alone, verify=True (before training, in on_train_begin)",
                     common.fmt_ms(prepare[0]), common.fmt_ratio(common.paired_ratios(prepare[0], wall["recipe"])),
                     common.fmt_ms(prepare[1]), common.fmt_ratio(common.paired_ratios(prepare[1], cpu["recipe"]))])
    headers = ["model", "variant", "wall: median [min–max]", "wall ratio to recipe",
               "CPU: median [min–max]", "CPU ratio to recipe"]
    return common.markdown_table(headers, rows)


STAGES = (  # (label, regex on "file:line(function)" of pstats)
    ("total", r"(bench_export.py:\d+\(export_recipe\)|xai_callback/export.py:\d+\(export\))"),
    ("ours: prepare (trace the signatures, checks before training)", r"xai_callback/export.py:\d+\(prepare\)"),
    ("… run the sample, structural gradient probe", r"xai_callback/export.py:\d+\(_check_before_training\)"),
    ("ours: lookup-table walk", r"xai_callback/export.py:\d+\(_resources_of\)"),
    ("tf.saved_model.save", r"saved_model/save.py:\d+\(save\)"),
    ("… re-trace of tracked functions in save context", r"signature_serialization.py:\d+\(validate_augmented_graph_view\)"),
    ("… signature wrappers (traces the recipe's functions)", r"signature_serialization.py:\d+\(canonicalize_signatures\)"),
    ("… meta graph + variables", r"saved_model/save.py:\d+\(_fill_meta_graph_def\)"),
    ("ours: reload (tf.saved_model.load)", r"saved_model/load.py:\d+\(load\)"),
    ("ours: checks (specs, identity on the sample)", r"xai_callback/export.py:\d+\(_verify\)"),
    ("ours: gradient probe (before training and after writing)", r"xai_callback/spec/probe.py:\d+\(probe_gradients\)"),
    ("ours: JSON files (metadata, parameters, sample, provenance)", r"xai_callback/storage.py:\d+\(write_json\)"),
    ("ours: staging + publish (rename into place)", r"xai_callback/placement.py:\d+\((begin|publish)\)"),
)


def profile_table(case, settings, repeats, workdir):
    """cProfile of each variant: cumulative ms per export spent in each stage."""
    columns = {}
    for variant in VARIANTS:
        export_once(variant, case, settings, workdir)  # warm-up
        profiler = cProfile.Profile()
        for _ in range(repeats):
            model = build_model(case, settings)
            export_dir = tempfile.mkdtemp(dir=workdir) + "/export"
            if variant == "ours_after_prepare":
                exporter = exporter_for(model, case, settings, verify=True)
                exporter.prepare()
            profiler.enable()
            if variant == "recipe":
                export_recipe(model, export_dir, case, settings)
            elif variant == "ours_after_prepare":
                exporter.export(export_dir)
            else:
                export_ours(model, export_dir, case, settings, verify=variant == "ours_verify")
            profiler.disable()
            shutil.rmtree(export_dir)
        stats = pstats.Stats(profiler).stats
        columns[variant] = {
            label: sum(ct for (f, line, fn), (_, _, _, ct, _) in stats.items()
                       if re.search(pattern + "$", f"{f}:{line}({fn})")) * 1000 / repeats
            for label, pattern in STAGES
        }
    rows = [[label] + [f"{columns[v][label]:.0f}" if columns[v][label] else "–" for v in VARIANTS]
            for label, _ in STAGES]
    return common.markdown_table(["stage (ms per export, under cProfile)"] + [LABELS[v] for v in VARIANTS], rows)


AFTER_TRAINING_STAGES = (  # (label, object, attribute) timed inside export() after prepare()
    ("tf.saved_model.save of the signatures and variables", "export.engine", "ExplainableExporter._write_saved_model"),
    ("reload (tf.saved_model.load)", "export.engine", "tf.saved_model.load"),
    ("checks: signature contract, live prediction, serving identity", "export.engine", "ExplainableExporter._verify"),
    ("gradient probe on the live xai_model (warning only)", "export.engine", "ExplainableExporter._warn_zero_gradients"),
    ("JSON files", "publish.storage", "write_json"),
    ("staging and publish", "publish.staging", "begin"),
    ("staging and publish", "publish.staging", "Staging.publish"),
)


def stage_table(cases, settings, repeats, workdir):
    """CPU ms per stage of export() after prepare() (timers around the engine's functions), with the recipe."""
    import importlib

    totals = {case: [] for case in cases}
    for case in cases:
        for round_ in range(repeats + 1):  # round 0 warms up
            spent = {}
            patched = []
            for label, module, attribute in AFTER_TRAINING_STAGES:
                owner = importlib.import_module(f"xai_callback.{module}")
                *path, name = attribute.split(".")
                for part in path:
                    owner = getattr(owner, part)
                original = getattr(owner, name)
                patched.append((owner, name, original))
                setattr(owner, name, _timed_stage(original, label, spent))
            try:
                model = build_model(case, settings)
                exporter = exporter_for(model, case, settings, verify=True)
                exporter.prepare()
                seconds, _ = common.timed(exporter.export, tempfile.mkdtemp(dir=workdir) + "/export")
            finally:
                for owner, name, original in reversed(patched):
                    setattr(owner, name, original)
            recipe, _ = common.timed(export_recipe, build_model(case, settings),
                                     tempfile.mkdtemp(dir=workdir) + "/recipe", case, settings)
            if round_:
                totals[case].append({**spent, "total": seconds["cpu"], "seed recipe": recipe["cpu"]})
    labels = list(dict.fromkeys(label for label, _, _ in AFTER_TRAINING_STAGES)) + ["total", "seed recipe"]
    rows = [[label] + [f"{np.median([r.get(label, 0.0) for r in totals[c]]) * 1000:.0f}" for c in cases]
            for label in labels]
    return common.markdown_table(["stage (CPU ms, median)"] + list(cases), rows)


def _timed_stage(fn, label, spent):
    import time

    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - start
    return timed


def main(argv=None):
    parser = common.base_parser(__doc__)
    parser.add_argument("--case", choices=CASES, action="append", help="model case(s); default all")
    parser.add_argument("--profile", action="store_true", help="print a cProfile breakdown per stage instead")
    parser.add_argument("--stages", action="store_true",
                        help="print CPU time per stage of the export after prepare() instead")
    args = parser.parse_args(argv)
    settings = ({"features": 4, "hidden": (16,), "image_size": 32, "alpha": 0.35} if args.quick else
                {"features": 16, "hidden": (64, 32), "image_size": 224, "alpha": 1.0})
    repeats = 1 if args.quick else args.repeats
    workdir = tempfile.mkdtemp(prefix="bench_export_")
    try:
        if args.stages:
            print(f"### CPU time per stage after prepare(), median of {repeats} exports\n")
            print(stage_table(args.case or CASES, settings, repeats, workdir))
            return
        if args.profile:
            for case in args.case or CASES:
                print(f"### Where the time goes: {case} model, {repeats} exports per variant\n")
                print(profile_table(case, settings, repeats, workdir) + "\n")
            return
        results = {case: measure(case, settings, repeats, workdir) for case in args.case or CASES}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"## Export cost ({repeats} interleaved runs per variant after one warm-up round; "
          f"MLP {settings['features']}→{'→'.join(map(str, settings['hidden']))}→1, "
          f"CNN MobileNetV2(alpha={settings['alpha']}) on {settings['image_size']}² uint8 images)\n")
    print(table(results))
    print("\nEach model is built fresh (untimed) for every export; functions are traced inside the timed call. "
          "Ratios and differences are taken within each round, then summarised as median [min–max].")
    print(f"\nMachine: {common.machine_note()}")


if __name__ == "__main__":
    main()
