"""Tabular example: CSV lines in, an MLP in the middle, best-epoch export.

`xai_preprocess` parses a CSV line (a string) into the float features the
model was trained on; `xai_model` is the MLP; `serving_default` chains both.
Runs on CPU in seconds on generated data:

    python examples/tabular_csv.py --export-dir /tmp/churn_export
"""

import argparse

import numpy as np
import tensorflow as tf
import keras

import xai_callback

FEATURES = ["tenure", "monthly_charges", "support_calls", "discount"]


def make_data(rows=2048, seed=0):
    """Churn-like data: churn rises with charges and calls, falls with tenure."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES))).astype("float32")
    logits = -1.2 * x[:, 0] + 0.9 * x[:, 1] + 1.5 * x[:, 2] - 0.4 * x[:, 3]
    y = (logits + rng.normal(scale=0.5, size=rows) > 0).astype("float32")
    return x, y


def to_csv_lines(x):
    return [",".join(f"{v:.6f}" for v in row) for row in x]


@tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
def parse_csv(csv_line):
    """`"0.1,2.0,..."` -> `{"features": float32[batch, 4]}`."""
    columns = tf.strings.split(csv_line, ",").to_tensor(shape=[None, len(FEATURES)])
    return {"features": tf.strings.to_number(columns, tf.float32)}


def build_model():
    inputs = keras.Input((len(FEATURES),), name="features")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="churn")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", default="exports/tabular_csv")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)

    x, y = make_data()
    model = build_model()
    sample = {"csv_line": to_csv_lines(x[:8])}
    callback = xai_callback.XaiExportCallback(
        args.export_dir,
        monitor="val_auc",
        save_best_only=True,
        preprocess_fn=parse_csv,
        sample=sample,
        # Attributions relative to a typical customer rather than all zeros.
        explanation_spec=xai_callback.ExplanationSpec(
            # One tensor, one named feature per column: attributions and plots
            # then carry the column names.
            features=[xai_callback.Feature(
                "features", baselines=np.median(x, axis=0),
                encoding="BAG_OF_FEATURES", index_feature_mapping=FEATURES)],
            method=xai_callback.IntegratedGradients(step_count=50),
        ),
        verbose=1,
    )
    model.fit(x, y, validation_split=0.25, epochs=args.epochs, batch_size=64,
              callbacks=[callback], verbose=0)

    print(f"\nBest epoch: {callback.best_epoch + 1}")
    show_predictions(args.export_dir, sample)


def show_predictions(export_dir, sample):
    """One prediction through each signature of the reloaded export."""
    loaded = tf.saved_model.load(export_dir)
    signatures = loaded.signatures
    first = {"csv_line": tf.constant(sample["csv_line"][:1])}
    print(f"\nPredictions for {first['csv_line'].numpy()[0].decode()!r}:")
    print("  serving_default:", _fmt(signatures["serving_default"](**first)))
    features = signatures["xai_preprocess"](**first)
    print("  xai_preprocess: ", _fmt(features))
    print("  xai_model:      ", _fmt(signatures["xai_model"](**features)))


def _fmt(outputs):
    return {k: np.round(v.numpy(), 4).tolist() for k, v in outputs.items()}


if __name__ == "__main__":
    main()
