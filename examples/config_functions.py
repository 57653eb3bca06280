"""Functions that `train_config.yaml` names by import string.

Training configs are plain data, so the model builder, the data source and the
export's preprocess function live here and the config refers to them as
`"config_functions:build_model"` (importable with examples/ on `sys.path`,
which `train_from_config.py` ensures). Uses `tf.keras`, so the same file
serves Keras 3 and, with `TF_USE_LEGACY_KERAS=1`, tf-keras.
"""

import numpy as np
import tensorflow as tf

N_FEATURES = 4


def make_data(rows=256, seed=0):
    """Generated binary-classification data: `(x float32[rows, 4], y float32[rows])`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES)).astype("float32")
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).astype("float32")
    return x, y


def build_model(hidden_units=8, input_name="features"):
    """A small MLP whose input is named `input_name` (the `xai_model` key)."""
    inputs = tf.keras.Input((N_FEATURES,), name=input_name)
    hidden = tf.keras.layers.Dense(hidden_units, activation="tanh")(inputs)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)
    return tf.keras.Model(inputs, outputs)


@tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
def parse_csv(csv_line):
    """`"0.1,2.0,..."` -> `{"features": float32[batch, 4]}` (`xai_preprocess`)."""
    columns = tf.strings.split(csv_line, ",").to_tensor(shape=[None, N_FEATURES])
    return {"features": tf.strings.to_number(columns, tf.float32)}
