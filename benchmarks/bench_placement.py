"""Cost of crash-safe placement: a replacing export with and without the fsyncs.

Each round replaces an existing export (the common case: export on improvement,
or a second run) with `verify=False`, so the figure is the write plus the
placement protocol. "no fsync" turns `storage.sync_tree`/`sync_dir` into no-ops
in the same process: the same protocol without the power-loss guarantee.
The last row isolates `sync_tree` on a freshly written copy of the export
(dirty pages), against the time of writing that copy.
"""

import shutil
import tempfile

import common

import xai_callback  # noqa: E402
from xai_callback.publish import storage  # noqa: E402

VARIANTS = ("no_fsync", "fsync")
LABELS = {"no_fsync": "replace, fsync off (baseline)", "fsync": "replace, fsync on (default)"}


def build_cnn():
    """A MobileNetV2-sized CNN (3.5 M parameters, random weights)."""
    import keras

    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)


def main():
    args = common.base_parser(__doc__).parse_args()
    models = {"MLP 20-64-64-1": lambda: common.build_mlp(20, [64, 64])}
    if not args.quick:
        models["MobileNetV2 224x224"] = build_cnn
    real = storage.sync_tree, storage.sync_dir
    rows = []
    for name, build in models.items():
        model = build()
        exporter = xai_callback.ExplainableExporter(model, verify=False).prepare()
        export_dir = tempfile.mkdtemp() + "/export"
        exporter.export(export_dir)

        def run_one(variant):
            storage.sync_tree, storage.sync_dir = real if variant == "fsync" else (lambda p: None, lambda p: None)
            try:
                seconds, _ = common.timed(exporter.export, export_dir)
            finally:
                storage.sync_tree, storage.sync_dir = real
            return seconds

        results = common.interleaved(list(VARIANTS), args.repeats, run_one)
        wall = {v: common.column(results[v], "wall") for v in VARIANTS}
        for variant in VARIANTS:
            ratio = ("1 (baseline)" if variant == "no_fsync"
                     else common.fmt_ratio(common.paired_ratios(wall[variant], wall["no_fsync"])))
            rows.append([name, LABELS[variant], common.fmt_ms(wall[variant]), ratio])
        rows.append([name, "fsync alone (on − off)",
                     common.fmt_ms(common.paired_differences(wall["fsync"], wall["no_fsync"])), ""])
        copies, syncs = [], []
        for _ in range(args.repeats):
            target = tempfile.mkdtemp() + "/copy"
            copies.append(common.timed(shutil.copytree, export_dir, target)[0]["wall"])
            syncs.append(common.timed(real[0], target)[0]["wall"])
            shutil.rmtree(target)
        rows.append([name, "sync_tree of a fresh copy (vs writing the copy)", common.fmt_ms(syncs),
                     common.fmt_ratio([s / c for s, c in zip(syncs, copies)])])
    print(common.machine_note())
    print(common.markdown_table(["model", "variant", "wall: median [min–max]", "ratio to fsync off"], rows))


if __name__ == "__main__":
    main()
