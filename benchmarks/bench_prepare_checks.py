"""What the checks cost in `prepare()` (before the first training batch), and the rehearsal's share.

Variants, each on a freshly built model (built outside the timed call), interleaved:

- `verify=False`: `prepare()` traces the signatures only (the baseline);
- `verify=True`, without the rehearsal: the sample run and the gradient probe
  (the checks `prepare()` had before the rehearsal; the probe now differentiates
  inside a `tf.function`, as `explain` does);
- `verify=True`: the same plus the rehearsal, the export's method run on the
  sample through explain's engine (`xai_callback/explain/rehearsal.py`).

Cases: those of bench_export.py (csv, plain MLP, MobileNetV2 at 224x224) and an
LSTM over a float sequence (`lstm`).

Command: `.venv/bin/python benchmarks/bench_prepare_checks.py --repeats 5`
"""

import tempfile

import common

import numpy as np  # noqa: E402

import bench_export  # noqa: E402
from xai_callback.explain import rehearsal  # noqa: E402

VARIANTS = {
    "unverified": "prepare(), verify=False (tracing only; baseline)",
    "no_rehearsal": "prepare(), verify=True without the rehearsal",
    "verified": "prepare(), verify=True (with the rehearsal)",
}
CASES = ("plain", "csv", "lstm", "cnn")


def build_lstm(steps, features, units):
    import keras

    keras.utils.set_random_seed(0)
    sequence = keras.Input((steps, features), name="sequence")
    hidden = keras.layers.LSTM(units)(sequence)
    return keras.Model(sequence, keras.layers.Dense(1, name="score")(hidden))


def exporter(case, settings, verify):
    if case == "lstm":
        model = build_lstm(settings["steps"], settings["features"], settings["units"])
        sample = np.random.default_rng(0).normal(size=(4, settings["steps"], settings["features"]))
        return xai_callback_exporter(model, verify, sample={"sequence": sample.astype("float32")})
    return bench_export.exporter_for(bench_export.build_model(case, settings), case, settings, verify)


def xai_callback_exporter(model, verify, **options):
    import xai_callback

    return xai_callback.ExplainableExporter(model, verify=verify, **options)


def prepare_once(variant, case, settings):
    built = exporter(case, settings, verify=variant != "unverified")
    original = rehearsal.check_before_training
    if variant == "no_rehearsal":
        rehearsal.check_before_training = lambda *args, **kwargs: None
    try:
        seconds, _ = common.timed(built.prepare)
    finally:
        rehearsal.check_before_training = original
    return seconds


def main(argv=None):
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, action="append", help="model case(s); default all")
    args = parser.parse_args(argv)
    settings = {"features": 16, "hidden": (64, 32), "image_size": 224, "alpha": 1.0,
                "steps": 20, "units": 32}
    if args.quick:
        settings.update(image_size=96, alpha=0.35, steps=6, units=4)
    rows = []
    with tempfile.TemporaryDirectory():
        for case in args.case or CASES:
            found = common.interleaved(list(VARIANTS), args.repeats,
                                       lambda v, case=case: prepare_once(v, case, settings))
            base = common.column(found["unverified"], "cpu")
            for variant, label in VARIANTS.items():
                wall, cpu = common.column(found[variant], "wall"), common.column(found[variant], "cpu")
                rows.append([case, label, common.fmt_ms(wall), common.fmt_ms(cpu),
                             common.fmt_ratio(common.paired_ratios(cpu, base)),
                             common.fmt_ms(common.paired_differences(cpu, base))])
    print(common.markdown_table(
        ["case", "variant", "wall (median [min–max])", "CPU", "CPU ratio to verify=False",
         "CPU added to verify=False"], rows))
    print()
    print(common.machine_note())


if __name__ == "__main__":
    main()
