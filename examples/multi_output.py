"""Multi-output example: one model, two heads, one explained with `output_key`.

Both outputs stay in every signature; the explanation metadata names the one
chosen with `output_key`.

    python examples/multi_output.py --export-dir /tmp/multi_export
"""

import argparse

import numpy as np
import keras

import xai_callback


def make_data(rows=1024, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype("float32")
    price = (x @ np.array([1.0, -2.0, 0.5, 0.0, 0.3, 1.2], "float32"))[:, None]
    category = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return x, price, category


def build_model():
    inputs = keras.Input((6,), name="listing")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    price = keras.layers.Dense(1, name="price")(hidden)
    category = keras.layers.Dense(2, activation="softmax", name="category")(hidden)
    model = keras.Model(inputs, {"price": price, "category": category})
    model.compile(
        "adam",
        loss={"price": "mse", "category": "sparse_categorical_crossentropy"},
    )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", default="exports/multi_output")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)

    x, price, category = make_data()
    model = build_model()
    callback = xai_callback.XaiExportCallback(args.export_dir, output_key="price", verbose=1)
    model.fit(x, {"price": price, "category": category}, epochs=args.epochs,
              batch_size=64, callbacks=[callback], verbose=0)
    result = callback.last_export
    print("explained output:", list(result.metadata["outputs"].values()))


if __name__ == "__main__":
    main()
