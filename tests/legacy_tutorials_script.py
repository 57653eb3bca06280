"""tf-keras (Keras 2) tutorial models for test_legacy_keras.py; needs TF_USE_LEGACY_KERAS=1.

Usage: python legacy_tutorials_script.py OUT_DIR

Builds the models of TensorFlow's "Classify structured data using Keras
preprocessing layers" (PetFinder) and keras.io's FeatureSpace tutorial with
tf-keras, as the tutorials build them, trains each one epoch with
`XaiExportCallback`, then validates and explains the reloaded export here and
reports, per case: the signatures, the metadata baselines, `validate`'s
verdict, and per explained instance the sum of attributions beside
f(x) - f(baseline) computed from the SavedModel's own signatures. Prints
RESULT json.
"""

import os
import sys
import warnings

assert os.environ.get("TF_USE_LEGACY_KERAS") == "1", "run with TF_USE_LEGACY_KERAS=1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras import layers  # noqa: E402

import xai_callback  # noqa: E402
from signature_checks import completeness  # noqa: E402
from subprocess_runs import print_result  # noqa: E402

ROWS = 64


def petfinder_data(seed=0):
    rng = np.random.default_rng(seed)
    df = {"Type": rng.choice(["Cat", "Dog"], ROWS), "Age": rng.choice([1, 2, 3, 6, 12], ROWS).astype("int64"),
          "Color1": rng.choice(["Black", "White", "Brown"], ROWS),
          "Fee": rng.uniform(0, 200, ROWS).astype("float32"),
          "PhotoAmt": rng.integers(0, 10, ROWS).astype("float32")}
    target = ((df["Type"] == "Dog") ^ (df["Fee"] > 100)).astype("int64")
    return {k: v[:, None] for k, v in df.items()}, target


def petfinder_model(ds):
    """The tutorial's helpers and model, verbatim but for the column list."""

    def get_normalization_layer(name, dataset):
        normalizer = layers.Normalization(axis=None)
        normalizer.adapt(dataset.map(lambda x, y: x[name]))
        return normalizer

    def get_category_encoding_layer(name, dataset, dtype, max_tokens=None):
        index = layers.StringLookup(max_tokens=max_tokens) if dtype == "string" else (
            layers.IntegerLookup(max_tokens=max_tokens))
        index.adapt(dataset.map(lambda x, y: x[name]))
        encoder = layers.CategoryEncoding(num_tokens=index.vocabulary_size())
        return lambda feature: encoder(index(feature))

    all_inputs, encoded_features = [], []
    for header in ["PhotoAmt", "Fee"]:
        numeric_col = keras.Input(shape=(1,), name=header)
        all_inputs.append(numeric_col)
        encoded_features.append(get_normalization_layer(header, ds)(numeric_col))
    age_col = keras.Input(shape=(1,), name="Age", dtype="int64")
    all_inputs.append(age_col)
    encoded_features.append(get_category_encoding_layer("Age", ds, "int64", max_tokens=5)(age_col))
    for header in ["Type", "Color1"]:
        categorical_col = keras.Input(shape=(1,), name=header, dtype="string")
        all_inputs.append(categorical_col)
        encoded_features.append(get_category_encoding_layer(header, ds, "string", max_tokens=5)(categorical_col))
    x = layers.Dense(32, activation="relu")(layers.concatenate(encoded_features))
    x = layers.Dropout(0.5)(x)
    model = keras.Model(all_inputs, layers.Dense(1)(x))
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def heart_data(seed=0):
    rng = np.random.default_rng(seed)
    df = {"sex": rng.integers(0, 2, ROWS).astype("int64"), "thal": rng.choice(["fixed", "normal", "reversible"], ROWS),
          "age": rng.uniform(30, 70, ROWS).astype("float32"), "chol": rng.uniform(150, 300, ROWS).astype("float32")}
    return df, (df["age"] > 50).astype("float32")


def feature_space_models(ds):
    """keras.io FeatureSpace tutorial: `(feature_space, training_model)`."""
    feature_space = keras.utils.FeatureSpace(
        features={"sex": keras.utils.FeatureSpace.integer_categorical(num_oov_indices=0),
                  "thal": keras.utils.FeatureSpace.string_categorical(num_oov_indices=0),
                  "age": keras.utils.FeatureSpace.float_discretized(num_bins=5),
                  "chol": keras.utils.FeatureSpace.float_normalized()},
        crosses=[keras.utils.FeatureSpace.cross(feature_names=("sex", "age"), crossing_dim=8)],
        output_mode="concat")
    feature_space.adapt(ds.map(lambda x, _: x))
    encoded_features = feature_space.get_encoded_features()
    x = layers.Dense(8, activation="relu")(encoded_features)
    predictions = layers.Dense(1, activation="sigmoid")(x)
    training_model = keras.Model(inputs=encoded_features, outputs=predictions)
    training_model.compile("adam", "binary_crossentropy")
    return feature_space, training_model


def instances_of(data, count=3):
    return [{k: v[i].tolist() if v.ndim > 1 else [v[i].item()] for k, v in data.items()} for i in range(count)]


def report(path, instances, **explain_options):
    """What the parent test asserts about one export."""
    loaded = tf.saved_model.load(path)
    signatures = {name: {k: [s.dtype.name, s.shape.as_list()] for k, s in
                         fn.structured_input_signature[1].items()} for name, fn in loaded.signatures.items()}
    result = xai_callback.validate(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = xai_callback.explain(path, instances, **explain_options)
    metadata = xai_callback.publish.storage.read_json(
        os.path.join(path, "assets.extra", "vertex_explanation_metadata.json"))
    return {"signatures": signatures, "validate_ok": result.ok, "validate": str(result),
            "completeness": completeness(path, instances, response),
            "baselines": {k: v.get("inputBaselines") for k, v in metadata["inputs"].items()},
            "features": sorted(response.explanations[0].attributions[0].feature_attributions)}


def fit_with_callback(model, data, path, **options):
    callback = xai_callback.XaiExportCallback(path, **options)
    model.fit(data, epochs=1, verbose=0, callbacks=[callback])
    return callback.last_export.path


def run_case(name, fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - reported to the parent test
        return {"error": f"{type(e).__name__}: {e}"}


def main(out_dir):
    keras.utils.set_random_seed(0)
    data, target = petfinder_data()
    ds = tf.data.Dataset.from_tensor_slices((data, target)).batch(16)
    petfinder = petfinder_model(ds)
    instances = instances_of(data)
    results = {}
    results["petfinder_split"] = run_case("petfinder_split", lambda: report(
        fit_with_callback(petfinder, ds, os.path.join(out_dir, "petfinder")), instances))
    sample = {k: v[:4] for k, v in data.items()}
    results["petfinder_whole"] = run_case("petfinder_whole", lambda: report(fit_with_callback(
        petfinder, ds, os.path.join(out_dir, "petfinder_whole"), split=False, sample=sample,
        explanation_spec=xai_callback.ExplanationSpec(method=xai_callback.SampledShapley(path_count=20))),
        instances))

    # The lookup adapted outside the model, used by the user's preprocess
    # function (no track=...): its table must be saved with the signature.
    lookup = layers.StringLookup()
    lookup.adapt(data["Type"])
    one_hot = layers.CategoryEncoding(num_tokens=lookup.vocabulary_size())

    def preprocess(Type, Fee):
        return {"Type": one_hot(lookup(Type)), "Fee": Fee}

    kind, fee = keras.Input((lookup.vocabulary_size(),), name="Type"), keras.Input((1,), name="Fee")
    body = keras.Model({"Type": kind, "Fee": fee}, layers.Dense(1)(layers.concatenate([kind, fee])))
    body.compile("adam", "mse")
    encoded = tf.data.Dataset.from_tensor_slices(
        (preprocess(tf.constant(data["Type"]), tf.constant(data["Fee"])), target)).batch(16)
    specs = {"Type": tf.TensorSpec([None, 1], tf.string, name="Type"),
             "Fee": tf.TensorSpec([None, 1], tf.float32, name="Fee")}
    results["outside_lookup"] = run_case("outside_lookup", lambda: report(fit_with_callback(
        body, encoded, os.path.join(out_dir, "outside_lookup"), preprocess_fn=(preprocess, specs),
        sample={"Type": data["Type"][:4], "Fee": data["Fee"][:4]}),
        [{"Type": i["Type"], "Fee": i["Fee"]} for i in instances]))

    heart, labels = heart_data()
    heart_ds = tf.data.Dataset.from_tensor_slices((heart, labels)).batch(16)
    feature_space, training_model = feature_space_models(heart_ds)
    preprocessed = heart_ds.map(lambda x, y: (feature_space(x), y))
    results["feature_space"] = run_case("feature_space", lambda: report(fit_with_callback(
        training_model, preprocessed, os.path.join(out_dir, "feature_space"), preprocess_fn=feature_space),
        instances_of(heart)))
    print_result(**results)


if __name__ == "__main__":
    main(sys.argv[1])
