"""Explanations per raw feature vs per encoded slot, on a PetFinder-shaped split export.

Same run, variants interleaved round by round (benchmarks/common.py), medians:
- integrated gradients at `granularity="raw"` (one attribution per raw
  feature: one-hot slots and embedding cells summed) vs `"encoded"` (per
  slot, Vertex's output) on the same rows: the reduction is the only
  difference (goal raw <= 1.05x encoded);
- sampled Shapley at both granularities, for information: at "raw" a
  category is one player, so a path has fewer rows.

The export is the PetFinder model of the TF tutorial as in
examples/structured_preprocessing.py (string/int categories through
StringLookup/IntegerLookup + CategoryEncoding, two Normalization-ed numbers),
trained one epoch and written by the exporter's automatic split.

Run:  .venv/bin/python benchmarks/bench_explain_raw.py [--repeats 15] [--quick]
"""

import os
import sys
import tempfile
import warnings

import common

import numpy as np  # noqa: E402  (common quiets TF first)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import structured_preprocessing as petfinder  # noqa: E402

from xai_callback import export_explainable_model  # noqa: E402
from xai_callback.publish import storage
from xai_callback.explain import load_explainer  # noqa: E402

VARIANTS = ("ig_raw", "ig_encoded", "shapley_raw", "shapley_encoded")


def petfinder_export(path):
    """The example's PetFinder model, trained one epoch, exported with the automatic split."""
    data, labels = petfinder.make_data(512)
    model = petfinder.build_model(data)
    model.fit(petfinder.datasets(data, labels)[0], epochs=1, verbose=0)
    export_explainable_model(model, path)
    return path


def rows(count, seed=5):
    data, _ = petfinder.make_data(count, seed)
    return {key: value[:, 0] for key, value in data.items()}  # [batch] columns for [None, 1] inputs


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--paths", type=int, default=10)
    args = parser.parse_args()
    instances, steps, paths = (8, 10, 3) if args.quick else (args.instances, args.steps, args.paths)
    work = tempfile.mkdtemp(prefix="bench_explain_raw_")
    try:
        path = petfinder_export(os.path.join(work, "pets"))
        explainer = load_explainer(path, validate=False)
        batch = rows(instances)
        runs = {
            "ig_raw": lambda: explainer.explain_instances(batch, step_count=steps),
            "ig_encoded": lambda: explainer.explain_instances(batch, step_count=steps,
                                                              granularity="encoded"),
            "shapley_raw": lambda: explainer.explain_instances(
                batch, method="sampled-shapley", path_count=paths),
            "shapley_encoded": lambda: explainer.explain_instances(
                batch, method="sampled-shapley", path_count=paths, granularity="encoded"),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Shapley's sampling-error warning
            results = common.interleaved(list(VARIANTS), args.repeats,
                                         lambda name: common.timed(runs[name])[0])
        print_results(results, instances, steps, paths)
    finally:
        storage.rmtree(work)
    print(f"\n{common.machine_note()}")


def print_results(results, instances, steps, paths):
    print("### Local explanations: per raw feature vs per encoded slot\n")
    print(f"PetFinder split export (6 raw features -> one-hot slots of 4 lookups + 2 numbers), "
          f"{instances} instances; IG {steps} steps, sampled Shapley {paths} paths; interleaved "
          "rounds: median [min-max].\n")
    labels = {
        "ig_raw": ("IG, granularity=raw", "ig_encoded"),
        "ig_encoded": ("IG, granularity=encoded (baseline)", "ig_encoded"),
        "shapley_raw": ("sampled Shapley, raw (one player per raw feature)", "shapley_encoded"),
        "shapley_encoded": ("sampled Shapley, encoded (one per slot; baseline)", "shapley_encoded"),
    }
    table = []
    for name, (label, baseline) in labels.items():
        row = [label]
        for clock in ("wall", "cpu"):
            times = common.column(results[name], clock)
            ratio = common.paired_ratios(times, common.column(results[baseline], clock))
            row += [common.fmt_ms(times), common.fmt_ratio(ratio)]
        table.append(row)
    print(common.markdown_table(["run", "wall time", "wall vs encoded", "CPU time", "CPU vs encoded"],
                                table))
    ratio = common.paired_ratios(common.column(results["ig_raw"], "cpu"),
                                 common.column(results["ig_encoded"], "cpu"))
    print(f"\n- IG raw / encoded (CPU): {common.fmt_ratio(ratio)} (goal ≤ 1.05×); median "
          f"{'met' if np.median(ratio) <= 1.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
