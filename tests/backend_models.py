"""Models and functions for the Keras-backend tests, importable under any backend.

`backend_script.py` (run with `KERAS_BACKEND=jax|torch`) builds its models from
here, and the export's TensorFlow worker imports the custom layers from here
by module name, as it would a user's own module.
"""

import keras
import numpy as np
import tensorflow as tf

N_FEATURES = 4
CSV_SIGNATURE = [tf.TensorSpec([None], tf.string, name="csv")]


@tf.function(input_signature=CSV_SIGNATURE)
def parse_csv(csv):
    """`xai_preprocess`: CSV lines -> `{"feats": float32[batch, 4]}` (TensorFlow on every backend)."""
    columns = tf.strings.split(csv, ",").to_tensor(shape=[None, N_FEATURES])
    return {"feats": tf.strings.to_number(columns, tf.float32)}


def csv_lines(x):
    return [",".join(f"{v:.9g}" for v in row) for row in x]


def data(rows=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES)).astype("float32")
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).astype("float32")
    return x, y


def mlp(seed=0, extra_layer=None):
    """Dense -> BatchNormalization (non-trainable statistics) -> sigmoid "score"; input "feats".

    `extra_layer` goes right after the input.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((N_FEATURES,), name="feats")
    x = extra_layer(inputs) if extra_layer is not None else inputs
    x = keras.layers.Dense(8, activation="tanh")(x)
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    return model


@keras.saving.register_keras_serializable(package="xai_tests")
class TorchTanh(keras.layers.Layer):
    """Calls torch directly: runs on the PyTorch backend, not on TensorFlow."""

    def call(self, x):
        import torch

        return torch.tanh(x)


@keras.saving.register_keras_serializable(package="xai_tests")
class HostTanh(keras.layers.Layer):
    """A JAX host callback: runs under JAX; jax2tf cannot lower it, TensorFlow cannot run it."""

    def call(self, x):
        import jax

        return jax.pure_callback(np.tanh, jax.ShapeDtypeStruct(x.shape, x.dtype), x)


@keras.saving.register_keras_serializable(package="xai_tests")
class HalveThrice(keras.layers.Layer):
    """`x / 8` by a while loop: JAX cannot reverse-differentiate `lax.while_loop`
    (so jax2tf gives no gradient), TensorFlow's `tf.while_loop` can."""

    def call(self, x):
        _, y = keras.ops.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 0.5), (0, x))
        return y


@keras.saving.register_keras_serializable(package="xai_tests")
class ShiftByAttribute(keras.layers.Layer):
    """Adds `self.shift`, a plain attribute set after construction: state that is
    neither in its config nor a weight, so its `.keras` file does not hold it."""

    shift = 0.0

    def call(self, x):
        return x + self.shift


def adapted_model(seed=0, rows=64):
    """An adapted Normalization (statistics that are not trainable weights) and,
    on PyTorch, an adapted IntegerLookup (a vocabulary, not a weight) -> one-hot.

    Returns `(model, x, y)`; x is a dict `{"feats", "ids"}` on PyTorch.
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    feats = rng.normal(5.0, 3.0, size=(rows, N_FEATURES)).astype("float32")
    y = (feats[:, 0] > 5.0).astype("float32")
    normalization = keras.layers.Normalization()
    normalization.adapt(feats)
    inputs = {"feats": keras.Input((N_FEATURES,), name="feats")}
    parts = [normalization(inputs["feats"])]
    x = {"feats": feats}
    if keras.backend.backend() == "torch":  # lookups in a model: Keras runs them on TF and torch only
        x["ids"] = rng.integers(0, 6, (rows, 1)).astype("int64")
        lookup = keras.layers.IntegerLookup(output_mode="one_hot")
        lookup.adapt(x["ids"])
        inputs["ids"] = keras.Input((1,), name="ids", dtype="int64")
        parts.append(lookup(inputs["ids"]))
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.concatenate(parts) if len(parts) > 1 else parts[0])
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="score")(hidden))
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    return model, x, y
