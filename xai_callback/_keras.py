"""Which Keras is in use: Keras 3 (`keras`) or Keras 2 (`tf_keras`).

TensorFlow routes `tf.keras` to tf-keras only when `TF_USE_LEGACY_KERAS=1` is
set before TensorFlow is imported; we follow the same switch so a user's
callback and model always come from the same Keras.
"""

import os


def use_legacy_keras():
    return os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")


def keras_module():
    """The Keras module the user's models are built with."""
    if use_legacy_keras():
        import tf_keras

        return tf_keras
    import keras

    return keras


def keras_version():
    return getattr(keras_module(), "__version__", "unknown")


def keras_backend():
    """The Keras backend in use: "tensorflow", "jax", "torch", ...

    tf-keras (`TF_USE_LEGACY_KERAS=1`) always runs on TensorFlow.
    """
    if use_legacy_keras():
        return "tensorflow"
    import keras

    return keras.backend.backend()
