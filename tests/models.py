"""Tiny real models and generated data shared by the tests."""

import numpy as np
import tensorflow as tf
import keras

N_FEATURES = 4


def tabular_data(rows=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES)).astype("float32")
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).astype("float32")
    return x, y


def mlp(seed=0, name="feats", output="score"):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((N_FEATURES,), name=name)
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=output)(hidden)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    return model


def two_head_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((N_FEATURES,), name="feats")
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    price = keras.layers.Dense(1, name="price")(hidden)
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(hidden)
    model = keras.Model(inputs, {"price": price, "kind": kind})
    model.compile("adam", {"price": "mse", "kind": "sparse_categorical_crossentropy"})
    return model


def csv_lines(x):
    return [",".join(f"{v:.7g}" for v in row) for row in x]


def split_csv(csv):
    """CSV lines -> {"feats": float32[batch, 4]} (plain Python, for (fn, signature) forms)."""
    columns = tf.strings.split(csv, ",").to_tensor(shape=[None, N_FEATURES])
    return {"feats": tf.strings.to_number(columns, tf.float32)}


def split_csv_dict(inputs):
    """`split_csv` for functions that take one dict of inputs."""
    return split_csv(inputs["csv"])


CSV_SIGNATURE = [tf.TensorSpec([None], tf.string, name="csv")]
parse_csv = tf.function(split_csv, input_signature=CSV_SIGNATURE)


def trained_mlp(epochs=1, **kwargs):
    x, y = tabular_data()
    model = mlp(**kwargs)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model, x
