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


def weights_file_bytes(model):
    """`model.save_weights("x.weights.h5")`'s file as bytes, made in memory; None
    where that is not possible (a tf-keras model, a Keras without these internals).

    h5py crashes the process (a segmentation fault in `File.close`) when a
    write to its file fails (a full disk, `ulimit -f`): made in memory, the
    file is then written with plain I/O, which fails with an OSError.
    Keras 3 internals (`keras.src.saving.saving_lib`): `H5IOStore` on an
    `io.BytesIO` and `_save_state`, as `save_weights_only` runs them;
    tests/test_fallback.py checks that the bytes load with `load_weights`.
    """
    if use_legacy_keras():
        return None
    import io

    import keras

    try:
        from keras.src.saving import saving_lib

        if not isinstance(model, keras.Model):
            return None
        buffer = io.BytesIO()
        store = saving_lib.H5IOStore(buffer, mode="w")
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="",
                               visited_saveables=set())
        store.close()
    except (ImportError, AttributeError, TypeError):  # another Keras: save through the file
        return None
    return buffer.getvalue()
