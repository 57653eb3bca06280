"""Export cost of the automatic split vs a split written by hand, on the PetFinder-shaped model.

Both exports write the same three signatures of the same trained model
(examples/structured_preprocessing.py) and verify them after reloading:

- hand split: what users wrote before (two Keras sub-models cut at the one-hot
  tensors with Keras' own intermediate-tensor API, wrapped as
  `preprocess_fn` / `model_fn`, `serving_fn` = the model, a sample written
  by hand, `split=False`);
- automatic split: `export_explainable_model(model, export_dir)`.

Goal: automatic ≤ 1.10× the hand split (same-round ratio, median).
"""

import os
import shutil
import sys
import tempfile

import common

import keras  # noqa: E402  (common quiets TF first)
import tensorflow as tf  # noqa: E402

import xai_callback  # noqa: E402
from xai_callback.signatures.functions import SignatureFunction  # noqa: E402
from xai_callback.signatures.keras_models import model_signature_function

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import structured_preprocessing as petfinder  # noqa: E402

LABELS = {"hand": "hand split (two Keras sub-models, split=False)", "auto": "automatic split"}
VARIANTS = tuple(LABELS)


def trained_model(rows):
    keras.utils.set_random_seed(0)
    data, labels = petfinder.make_data(rows)
    model = petfinder.build_model(data)
    model.fit(tf.data.Dataset.from_tensor_slices((data, labels)).batch(64), epochs=1, verbose=0,
              shuffle=False)
    return model, data


def hand_split_options(model, data):
    """The ~25 lines users wrote by hand: cut at the one-hot/normalized tensors."""
    concat = next(l for l in model.layers if isinstance(l, keras.layers.Concatenate))
    encoded = list(concat.input)
    names = [t.name for t in encoded]
    preprocess = keras.Model(model.inputs, dict(zip(names, encoded)))
    body = keras.Model(encoded, model.output)  # Keras clones the nodes (>= 3.1)
    specs = {n: tf.TensorSpec(tuple(t.shape), t.dtype, name=n) for n, t in zip(names, encoded)}

    def body_fn(**tensors):
        return {"adopted": body([tensors[n] for n in names], training=False)}

    return {
        "preprocess_fn": model_signature_function(preprocess, "preprocess_fn"),
        "model_fn": SignatureFunction(body_fn, specs, name="model_fn"),
        "serving_fn": model_signature_function(model, "serving_fn"),
        "sample": {k: v[:4] for k, v in data.items()},
        "track": [preprocess],
        "split": False,
    }


def export_once(variant, model, data, workdir):
    export_dir = tempfile.mkdtemp(dir=workdir) + "/export"
    # Building the hand-split functions is part of the hand-written work, as
    # reading the graph is part of the automatic split: both are timed.
    def run():
        options = hand_split_options(model, data) if variant == "hand" else {}
        xai_callback.export_explainable_model(model, export_dir, **options)

    seconds, _ = common.timed(run)
    shutil.rmtree(export_dir)
    return seconds


def main(argv=None):
    parser = common.base_parser(__doc__)
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    model, data = trained_model(256 if args.quick else 2000)
    workdir = tempfile.mkdtemp(prefix="bench_split_")
    try:
        runs = common.interleaved(list(VARIANTS), repeats,
                                  lambda v: export_once(v, model, data, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for variant, label in LABELS.items():
        wall, cpu = common.column(runs[variant], "wall"), common.column(runs[variant], "cpu")
        if variant == "hand":
            ratios = ["1 (baseline)"] * 2
        else:
            ratios = [common.fmt_ratio(common.paired_ratios(
                common.column(runs[variant], k), common.column(runs["hand"], k))) for k in ("wall", "cpu")]
        rows.append([label, common.fmt_ms(wall), ratios[0], common.fmt_ms(cpu), ratios[1]])
    print(f"## Automatic split: export cost ({repeats} interleaved runs per variant after one "
          "warm-up round, PetFinder-shaped model, verify=True)\n")
    print(common.markdown_table(["variant", "wall: median [min–max]", "wall ratio to hand split",
                                 "CPU: median [min–max]", "CPU ratio"], rows))
    print(f"\nMachine: {common.machine_note()}")


if __name__ == "__main__":
    main()
