"""The `xai_explain` signature: its cost per request vs the Python explainer, and at export.

Same run, variants interleaved round by round (benchmarks/common.py), medians:
- per request, on the same instances: the loaded SavedModel's `xai_explain`
  signature vs `load_explainer(...).explain` (the Python explainer, same graph
  code, chunks looped from Python) (goal: signature <= 1.2x the explainer);
- at export: `export_explainable_model(..., explain_signature=True)` vs False
  (tracing the explain graph, saving it, and `validate`-style verification of
  the written export are inside the timed call).

Models: an MLP classifier (32 -> 256 -> 256 -> 10, tanh, integrated gradients,
the model of bench_explain.py) and the PetFinder model of
examples/structured_preprocessing.py (automatic split, per raw feature), both
trained one epoch on generated data.

Run:  .venv/bin/python benchmarks/bench_explain_signature.py [--repeats 9] [--quick]
"""

import os
import sys
import tempfile
import warnings

import common

import numpy as np  # noqa: E402  (common quiets TF first)
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import structured_preprocessing as petfinder  # noqa: E402

from xai_callback import export_explainable_model  # noqa: E402
from xai_callback.publish import storage
from xai_callback.explain import load_explainer  # noqa: E402

CLASSES = 10


def mlp(features=32, width=256):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((features,), name="x")
    hidden = keras.layers.Dense(width, activation="tanh")(inputs)
    hidden = keras.layers.Dense(width, activation="tanh")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax", name="probabilities")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(256, features)).astype(np.float32)
    model.fit(x, np.argmax(x[:, :CLASSES], axis=1), epochs=1, verbose=0)
    return model, {"x": np.random.default_rng(2).normal(size=(64, features)).astype(np.float32)}


def pets():
    data, labels = petfinder.make_data(512)
    model = petfinder.build_model(data)
    model.fit(petfinder.datasets(data, labels)[0], epochs=1, verbose=0)
    rows, _ = petfinder.make_data(64, seed=5)
    return model, rows


def time_requests(path, inputs, repeats):
    explainer = load_explainer(path, validate=False)
    signature = tf.saved_model.load(path).signatures["xai_explain"]
    tensors = {k: tf.constant(v, signature.structured_input_signature[1][k].dtype)
               for k, v in inputs.items()}
    runs = {
        "python": lambda: explainer.explain(tensors),
        "signature": lambda: signature(**tensors),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return common.interleaved(list(runs), repeats, lambda name: common.timed(runs[name])[0])


def time_exports(model, work, repeats):
    counter = iter(range(10**6))

    def export(signature):
        path = os.path.join(work, f"e{next(counter)}")
        times, _ = common.timed(export_explainable_model, model, path, explain_signature=signature)
        storage.rmtree(path)
        return times

    variants = {"without": False, "with": True}
    return common.interleaved(list(variants), repeats, lambda name: export(variants[name]))


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    rows = 8 if args.quick else 64
    work = tempfile.mkdtemp(prefix="bench_explain_signature_")
    try:
        print("### The xai_explain signature\n")
        table, exports = [], []
        for name, build in (("MLP 32-256-256-10, IG 50 steps", mlp),
                            ("PetFinder (split), IG 50 steps", pets)):
            model, inputs = build()
            inputs = {k: v[:rows] for k, v in inputs.items()}
            path = os.path.join(work, name.split()[0])
            export_explainable_model(model, path, explain_signature=True)
            requests = time_requests(path, inputs, repeats)
            for clock in ("wall", "cpu"):
                python = common.column(requests["python"], clock)
                signature = common.column(requests["signature"], clock)
                table.append([name, clock, common.fmt_ms(python), common.fmt_ms(signature),
                              common.fmt_ratio(common.paired_ratios(signature, python))])
            exported = time_exports(model, work, max(1, repeats // 2))
            for clock in ("wall", "cpu"):
                without = common.column(exported["without"], clock)
                with_ = common.column(exported["with"], clock)
                exports.append([name.split(",")[0], clock, common.fmt_ms(without), common.fmt_ms(with_),
                                common.fmt_ratio(common.paired_ratios(with_, without))])
        print(f"Per request, {rows} instances, {repeats} interleaved rounds: median [min-max].\n")
        print(common.markdown_table(["model", "clock", "Python explainer", "xai_explain signature",
                                     "signature / explainer (goal ≤ 1.2×)"], table))
        print(f"\nExport (verified), {max(1, repeats // 2)} interleaved rounds.\n")
        print(common.markdown_table(["model", "clock", "explain_signature=False",
                                     "explain_signature=True", "ratio"], exports))
    finally:
        storage.rmtree(work)
    print(f"\n{common.machine_note()}")


if __name__ == "__main__":
    main()
