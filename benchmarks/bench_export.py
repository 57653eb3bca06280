"""Export cost: export_explainable_model vs the seed's hand-written tf.saved_model.save recipe."""

import cProfile
import pstats
import re
import shutil
import tempfile

import common

import tensorflow as tf  # noqa: E402  (common quiets TF first)

import xai_callback  # noqa: E402

LABELS = {
    "recipe": "seed recipe (tf.saved_model.save)",
    "ours": "ours, verify=False (goal ≤ 1.10×)",
    "ours_verify": "ours, verify=True",
}
VARIANTS = tuple(LABELS)
CASES = ("csv", "plain")


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


def export_recipe(model, export_dir, n_features, csv):
    """The seed's recipe: hand-written tf.functions and one tf.saved_model.save."""

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32, name="features")])
    def model_fn(features):
        return {"score": model(features)}

    signatures = {"serving_default": model_fn, "xai_model": model_fn}
    if csv:
        preprocess_fn = make_parse_csv(n_features)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
        def serving_fn(csv_line):
            return model_fn(**preprocess_fn(csv_line))

        signatures = {"serving_default": serving_fn, "xai_preprocess": preprocess_fn, "xai_model": model_fn}
    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, export_dir, signatures=signatures)


def export_ours(model, export_dir, n_features, csv, verify):
    """export_explainable_model with the same signatures."""
    options = {"preprocess_fn": make_parse_csv(n_features), "sample": csv_sample(n_features)} if csv else {}
    xai_callback.export_explainable_model(model, export_dir, verify=verify, **options)


def export_once(variant, case, settings, workdir):
    """Builds a fresh model (untimed) and times one export of it; returns {'wall', 'cpu'}."""
    model = common.build_mlp(settings["features"], settings["hidden"])
    export_dir = tempfile.mkdtemp(dir=workdir) + "/export"
    csv = case == "csv"
    if variant == "recipe":
        seconds, _ = common.timed(export_recipe, model, export_dir, settings["features"], csv)
    else:
        seconds, _ = common.timed(
            export_ours, model, export_dir, settings["features"], csv, verify=variant == "ours_verify"
        )
    shutil.rmtree(export_dir)
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
    headers = ["model", "variant", "wall: median [min–max]", "wall ratio to recipe",
               "CPU: median [min–max]", "CPU ratio to recipe"]
    return common.markdown_table(headers, rows)


STAGES = (  # (label, regex on "file:line(function)" of pstats)
    ("total", r"bench_export.py:\d+\(export_(recipe|ours)\)"),
    ("ours: prepare (trace the signatures)", r"xai_callback/export.py:\d+\(prepare\)"),
    ("ours: lookup-table walk", r"xai_callback/export.py:\d+\(_resources_of\)"),
    ("tf.saved_model.save", r"saved_model/save.py:\d+\(save\)"),
    ("… re-trace of tracked functions in save context", r"signature_serialization.py:\d+\(validate_augmented_graph_view\)"),
    ("… signature wrappers (traces the recipe's functions)", r"signature_serialization.py:\d+\(canonicalize_signatures\)"),
    ("… meta graph + variables", r"saved_model/save.py:\d+\(_fill_meta_graph_def\)"),
    ("ours: reload (tf.saved_model.load)", r"saved_model/load.py:\d+\(load\)"),
    ("ours: checks (specs, identity on the sample)", r"xai_callback/export.py:\d+\(_verify\)"),
    ("ours: gradient probe", r"xai_callback/spec/probe.py:\d+\(probe_gradients\)"),
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
            model = common.build_mlp(settings["features"], settings["hidden"])
            export_dir = tempfile.mkdtemp(dir=workdir) + "/export"
            profiler.enable()
            if variant == "recipe":
                export_recipe(model, export_dir, settings["features"], case == "csv")
            else:
                export_ours(model, export_dir, settings["features"], case == "csv", verify=variant == "ours_verify")
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


def main(argv=None):
    parser = common.base_parser(__doc__)
    parser.add_argument("--case", choices=CASES, action="append", help="model case(s); default both")
    parser.add_argument("--profile", action="store_true", help="print a cProfile breakdown per stage instead")
    args = parser.parse_args(argv)
    settings = {"features": 4, "hidden": (16,)} if args.quick else {"features": 16, "hidden": (64, 32)}
    repeats = 1 if args.quick else args.repeats
    workdir = tempfile.mkdtemp(prefix="bench_export_")
    try:
        if args.profile:
            for case in args.case or CASES:
                print(f"### Where the time goes: {case} model, {repeats} exports per variant\n")
                print(profile_table(case, settings, repeats, workdir) + "\n")
            return
        results = {case: measure(case, settings, repeats, workdir) for case in args.case or CASES}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"## Export cost ({repeats} interleaved runs per variant after one warm-up round, "
          f"MLP {settings['features']}→{'→'.join(map(str, settings['hidden']))}→1)\n")
    print(table(results))
    print("\nEach model is built fresh (untimed) for every export; functions are traced inside the timed call. "
          "Ratios and differences are taken within each round, then summarised as median [min–max].")
    print(f"\nMachine: {common.machine_note()}")


if __name__ == "__main__":
    main()
