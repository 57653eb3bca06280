"""What the train-begin checks of export/checks.py add to `prepare()`.

`ExplainableExporter(model, ...).prepare()` is what the callback runs in
`on_train_begin`: it traces every signature, runs the sample and the gradient
probe, and now also checks the sample and the preprocess output for NaN,
`serving_default` against `xai_model`, and the functions built from a user's
`model_fn` / `serving_fn` against the model being trained
(`checks.check_before_training`). Baseline: the same `prepare()` with that one
call replaced by a no-op (what `prepare()` did before), in the same process,
interleaved round by round, each run on a fresh exporter (so every trace is
counted).

Models: an MLP (20 features, 64-64 hidden) exported as is; the same MLP with a
`model_fn` (the case that traces the model once more, as the reference); the
PetFinder-shaped model of examples/structured_preprocessing.py, split
automatically at its preprocessing layers.

    python benchmarks/bench_train_begin_checks.py --repeats 7
"""

import os
import sys

import common

import keras  # noqa: E402  (common quiets TF first)
import tensorflow as tf  # noqa: E402

from xai_callback.export import checks, engine  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import structured_preprocessing as petfinder  # noqa: E402

N_FEATURES = 20
VARIANTS = ("before", "after")
REAL_CHECKS = checks.check_before_training


def mlp_case():
    model = common.build_mlp(N_FEATURES, [64, 64])
    return model, {}


def mlp_model_fn_case():
    model = common.build_mlp(N_FEATURES, [64, 64])
    spec = [tf.TensorSpec([None, N_FEATURES], tf.float32, name="features")]
    return model, {"model_fn": (lambda features: {"score": model(features, training=False)}, spec)}


def split_case(rows):
    keras.utils.set_random_seed(0)
    data, labels = petfinder.make_data(rows)
    model = petfinder.build_model(data)
    model.fit(tf.data.Dataset.from_tensor_slices((data, labels)).batch(64), epochs=1, verbose=0, shuffle=False)
    return model, {}


def prepare_once(variant, model, options):
    # The baseline is the same prepare() without the new call (module attribute
    # lookup: engine calls checks.check_before_training at run time).
    checks.check_before_training = REAL_CHECKS if variant == "after" else (lambda *args, **kwargs: None)
    try:
        seconds, _ = common.timed(lambda: engine.ExplainableExporter(model, **options).prepare())
    finally:
        checks.check_before_training = REAL_CHECKS
    return seconds


def main(argv=None):
    parser = common.base_parser(__doc__)
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    cases = {
        "MLP 20-64-64-1": mlp_case(),
        "MLP 20-64-64-1 with a model_fn": mlp_model_fn_case(),
        "PetFinder-shaped model, automatic split": split_case(256 if args.quick else 1000),
    }
    rows = []
    for label, (model, options) in cases.items():
        runs = common.interleaved(list(VARIANTS), repeats, lambda v: prepare_once(v, model, options))
        before, after = common.column(runs["before"], "wall"), common.column(runs["after"], "wall")
        rows.append([label, common.fmt_ms(before), common.fmt_ms(after),
                     common.fmt_ms(common.paired_differences(after, before)),
                     common.fmt_ratio(common.paired_ratios(after, before))])
    print(f"## Train-begin checks: time added to prepare() ({repeats} interleaved runs per variant after "
          "one warm-up round, a fresh exporter each run, verify=True)\n")
    print(common.markdown_table(["model", "prepare() before: median [min–max]", "prepare() after",
                                 "added (paired)", "ratio after/before"], rows))
    print(f"\nMachine: {common.machine_note()}")


if __name__ == "__main__":
    main()
