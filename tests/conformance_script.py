"""Conformance rows that need their own process: Keras 3 on JAX or PyTorch, and tf-keras.

Usage: python conformance_script.py GROUP OUT_DIR
  GROUP "jax" / "torch" (run with KERAS_BACKEND set), "jax_subprocess" (also
  XAI_CALLBACK_JAX_ROUTE=tf_subprocess), or "tf_keras" (TF_USE_LEGACY_KERAS=1).

Trains each of the group's models with the callback, as `conformance_models.py`
does, and prints RESULT {"cases": {name: {"path", "instances"} or {"error"}}};
the parent test checks the exports from disk in a TensorFlow-only process.
"""

import os
import sys
import traceback

import numpy as np

from subprocess_runs import print_result


def encode(instances):
    """Batches as JSON: numbers as lists, strings as lists of text."""
    out = {}
    for key, value in instances.items():
        value = np.asarray(value)
        if value.dtype == object or value.dtype.kind in "SU":
            out[key] = {"strings": np.vectorize(
                lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(
                    value).tolist()}
        else:
            out[key] = {"dtype": value.dtype.name, "values": value.tolist()}
    return out


# -- tf-keras (Keras 2) ------------------------------------------------------------------------

def tf_keras_mlp(export_dir):
    import tf_keras

    import xai_callback

    tf_keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("float32")
    feats = tf_keras.Input((4,), name="feats")
    hidden = tf_keras.layers.Dense(8, activation="tanh")(feats)
    model = tf_keras.Model(feats, tf_keras.layers.Dense(1, name="score")(hidden))
    model.compile("adam", "mse")
    callback = xai_callback.XaiExportCallback(export_dir, explain_signature=True, sample=x[:4])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    return callback.last_export.path, {"feats": x[:2]}


def tf_keras_petfinder(export_dir):
    """TF's PetFinder tutorial on tf-keras: StringLookup/IntegerLookup -> CategoryEncoding
    and Normalization, explained with SampledShapley (the advice for unsplit lookups)."""
    import tensorflow as tf
    import tf_keras

    import xai_callback

    tf_keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    data = {"Type": rng.choice(["Cat", "Dog"], (64, 1)).astype(object),
            "Age": rng.choice([1, 2, 3, 6], (64, 1)).astype("int64"),
            "Fee": rng.uniform(0, 200, (64, 1)).astype("float32")}
    labels = ((data["Type"][:, 0] == "Dog") ^ (data["Fee"][:, 0] > 100)).astype("float32")
    fee = tf_keras.Input((1,), name="Fee")
    normalizer = tf_keras.layers.Normalization(axis=None)
    normalizer.adapt(data["Fee"])
    age = tf_keras.Input((1,), name="Age", dtype="int64")
    age_lookup = tf_keras.layers.IntegerLookup(max_tokens=6)
    age_lookup.adapt(data["Age"])
    kind = tf_keras.Input((1,), name="Type", dtype="string")
    kind_lookup = tf_keras.layers.StringLookup(max_tokens=4)
    kind_lookup.adapt(data["Type"])
    encoded = tf_keras.layers.concatenate([
        normalizer(fee),
        tf_keras.layers.CategoryEncoding(num_tokens=age_lookup.vocabulary_size())(age_lookup(age)),
        tf_keras.layers.CategoryEncoding(num_tokens=kind_lookup.vocabulary_size())(kind_lookup(kind))])
    model = tf_keras.Model([fee, age, kind], tf_keras.layers.Dense(1, name="adopted")(
        tf_keras.layers.Dense(8, activation="relu")(encoded)))
    model.compile("adam", tf_keras.losses.BinaryCrossentropy(from_logits=True))
    train = tf.data.Dataset.from_tensor_slices(({k: tf.constant(v) for k, v in data.items()},
                                                labels)).batch(16)
    callback = xai_callback.XaiExportCallback(
        export_dir, explain_signature=True, sample={k: v[:4] for k, v in data.items()},
        explanation_spec=xai_callback.ExplanationSpec(method=xai_callback.SampledShapley(path_count=4)))
    model.fit(train, epochs=1, verbose=0, callbacks=[callback])
    return callback.last_export.path, {k: v[:2] for k, v in data.items()}


def tf_keras_featurespace(export_dir):
    """keras.io's FeatureSpace tutorial on tf-keras."""
    import tensorflow as tf
    import tf_keras

    import xai_callback

    FeatureSpace = tf_keras.utils.FeatureSpace
    tf_keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    data = {"sex": rng.integers(0, 2, (64, 1)).astype("int64"),
            "thal": rng.choice(["fixed", "normal"], (64, 1)).astype(object),
            "chol": rng.uniform(150, 350, (64, 1)).astype("float32")}
    labels = (data["sex"][:, 0] == 1).astype("float32")
    space = FeatureSpace(features={"sex": FeatureSpace.integer_categorical(num_oov_indices=0),
                                   "thal": FeatureSpace.string_categorical(num_oov_indices=0),
                                   "chol": FeatureSpace.float_normalized()},
                         output_mode="concat")
    flat = {k: v[:, 0] for k, v in data.items()}
    space.adapt(tf.data.Dataset.from_tensor_slices(flat).batch(16))
    encoded = space.get_encoded_features()
    training = tf_keras.Model(encoded, tf_keras.layers.Dense(1, activation="sigmoid", name="heart")(
        tf_keras.layers.Dense(8, activation="relu")(encoded)))
    training.compile("adam", "binary_crossentropy")
    train = tf.data.Dataset.from_tensor_slices((flat, labels)).batch(16).map(lambda x, y: (space(x), y))
    callback = xai_callback.XaiExportCallback(export_dir, explain_signature=True, preprocess_fn=space,
                                              sample={k: v[:4] for k, v in data.items()})
    training.fit(train, epochs=1, verbose=0, callbacks=[callback])
    return callback.last_export.path, {k: v[:2] for k, v in data.items()}


def groups():
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        return {"tf_keras": {"tf_keras_mlp": tf_keras_mlp, "tf_keras_petfinder": tf_keras_petfinder,
                             "tf_keras_featurespace": tf_keras_featurespace}}
    import conformance_models as models

    backend = os.environ["KERAS_BACKEND"]
    if os.environ.get("XAI_CALLBACK_JAX_ROUTE") == "tf_subprocess":
        return {"jax_subprocess": {"jax_subprocess_normalization": models.regression}}
    return {backend: {f"{backend}_mlp": models.backend_mlp,
                      f"{backend}_normalization": models.regression}}


def main(group, out_dir):
    cases = {}
    for name, build in groups()[group].items():
        try:
            path, instances = build(os.path.join(out_dir, name))
            cases[name] = {"path": path, "instances": encode(instances)}
        except Exception as e:  # noqa: BLE001 - reported to the parent test
            cases[name] = {"error": f"{type(e).__name__}: {e}",
                           "traceback": traceback.format_exc()[-3000:]}
    print_result(cases=cases)
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
