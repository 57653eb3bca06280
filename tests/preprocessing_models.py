"""Real Keras models with preprocessing layers, in the shapes of the tutorials users follow.

Each builder adapts its layers on generated data, trains one epoch and returns
`(model, raw_rows)` where `raw_rows` is a dict of numpy columns in the model's
input format (strings as object arrays, shape `[rows, 1]` like the tutorials'
`keras.Input(shape=(1,))`).
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

# The PetFinder-shaped model is the one users read in the example.
import structured_preprocessing as petfinder_example  # noqa: E402

TYPES = petfinder_example.TYPES
COLORS = petfinder_example.COLORS
WORDS = ["good", "great", "fun", "bad", "boring", "awful", "plot", "acting", "the", "movie"]


def petfinder_rows(rows=96, seed=0):
    """Columns in the shape of the TF tutorial's PetFinder mini data, and labels."""
    return petfinder_example.make_data(rows, seed)


def petfinder_model(rows=96, seed=0, epochs=1):
    """TF tutorial "Classify structured data using Keras preprocessing layers"
    (see examples/structured_preprocessing.py), trained `epochs` on generated rows."""
    keras.utils.set_random_seed(seed)
    data, labels = petfinder_rows(rows, seed)
    model = petfinder_example.build_model(data)
    _fit(model, data, labels, epochs)
    return model, data


def heart_rows(rows=96, seed=0):
    """Columns in the shape of keras.io's heart-disease data."""
    rng = np.random.default_rng(seed)
    data = {
        "sex": rng.integers(0, 2, rows).astype("int32"),
        "cp": rng.integers(0, 4, rows).astype("int32"),
        "thal": rng.choice(["fixed", "normal", "reversible"], rows),
        "age": rng.uniform(30, 75, rows).astype("float32"),
        "chol": rng.uniform(150, 350, rows).astype("float32"),
    }
    labels = ((data["age"] > 55) & (data["sex"] == 1)).astype("float32")
    return _column_dict(data), labels


def feature_space_models(rows=96, seed=0, epochs=1):
    """keras.io "Structured data classification with FeatureSpace".

    Returns `(feature_space, training_model, inference_model, raw_rows)`;
    `training_model` takes the encoded features, `inference_model` the raw
    dict, as in the tutorial.
    """
    keras.utils.set_random_seed(seed)
    data, labels = heart_rows(rows, seed)
    feature_space = heart_feature_space(data)
    flat = {k: v[:, 0] for k, v in data.items()}
    encoded = feature_space.get_encoded_features()
    x = keras.layers.Dense(16, activation="relu")(encoded)
    x = keras.layers.Dropout(0.5)(x)
    output = keras.layers.Dense(1, activation="sigmoid")(x)
    training_model = keras.Model(inputs=encoded, outputs=output)
    training_model.compile("adam", "binary_crossentropy")
    preprocessed = tf.data.Dataset.from_tensor_slices((flat, labels)).batch(32).map(
        lambda x, y: (feature_space(x), y))
    training_model.fit(preprocessed, epochs=epochs, verbose=0, shuffle=False)
    inference_model = keras.Model(inputs=feature_space.get_inputs(), outputs=output)
    return feature_space, training_model, inference_model, data


def heart_feature_space(data):
    """The tutorial's FeatureSpace (lookups without OOV, Discretization, a cross), adapted."""
    from keras.utils import FeatureSpace

    feature_space = FeatureSpace(
        features={
            "sex": FeatureSpace.integer_categorical(num_oov_indices=0),
            "cp": FeatureSpace.integer_categorical(num_oov_indices=0),
            "thal": FeatureSpace.string_categorical(num_oov_indices=0),
            "age": FeatureSpace.float_discretized(num_bins=4),
            "chol": FeatureSpace.float_normalized(),
        },
        crosses=[FeatureSpace.cross(feature_names=("sex", "age"), crossing_dim=8)],
        output_mode="concat",
    )
    flat = {k: v[:, 0] for k, v in data.items()}
    feature_space.adapt(tf.data.Dataset.from_tensor_slices(flat).batch(32))
    return feature_space


def reviews(rows=96, seed=0, length=(3, 7)):
    """Short generated reviews and their labels (more good words -> positive)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        words = rng.choice(WORDS, rng.integers(*length))
        texts.append(" ".join(words))
        labels.append(float(sum(w in ("good", "great", "fun") for w in words) >
                            sum(w in ("bad", "boring", "awful") for w in words)))
    return np.array(texts, dtype=object).reshape(-1, 1), np.array(labels, "float32")


def text_classifier(rows=96, seed=0, epochs=1, sequence_length=8, mask_zero=True):
    """TextVectorization -> Embedding -> GlobalAveragePooling1D -> Dense."""
    keras.utils.set_random_seed(seed)
    texts, labels = reviews(rows, seed)
    vectorize = keras.layers.TextVectorization(
        max_tokens=32, output_sequence_length=sequence_length)
    vectorize.adapt(texts[:, 0])
    text = keras.Input(shape=(1,), dtype="string", name="text")
    x = keras.layers.Embedding(32, 8, mask_zero=mask_zero)(vectorize(text))
    x = keras.layers.GlobalAveragePooling1D()(x)
    output = keras.layers.Dense(1, activation="sigmoid", name="positive")(x)
    model = keras.Model(text, output)
    model.compile("adam", "binary_crossentropy")
    model.fit(tf.data.Dataset.from_tensor_slices((texts, labels)).batch(32), epochs=epochs, verbose=0, shuffle=False)
    return model, {"text": texts}


def wide_deep_model(rows=96, seed=0, epochs=1):
    """keras.io wide & deep: a categorical one-hot (wide) and embedded (deep), a cross."""
    keras.utils.set_random_seed(seed)
    data, labels = petfinder_rows(rows, seed)
    model, data = build_wide_deep(data)
    _fit(model, data, labels, epochs)
    return model, data


def build_wide_deep(data):
    """The wide & deep model, compiled, and the columns of `data` it takes."""
    color = keras.Input(shape=(1,), name="Color1", dtype="string")
    kind = keras.Input(shape=(1,), name="Type", dtype="string")
    fee = keras.Input(shape=(1,), name="Fee")
    color_lookup = keras.layers.StringLookup(vocabulary=COLORS)
    kind_lookup = keras.layers.StringLookup(vocabulary=TYPES)
    color_ids, kind_ids = color_lookup(color), kind_lookup(kind)
    wide = keras.layers.CategoryEncoding(num_tokens=color_lookup.vocabulary_size())(color_ids)
    cross = keras.layers.HashedCrossing(num_bins=8, output_mode="one_hot", name="Type_X_Color1")(
        (kind_ids, color_ids))
    deep = keras.layers.Embedding(color_lookup.vocabulary_size(), 3)(color_ids)
    deep = keras.layers.Flatten()(deep)
    norm = keras.layers.Normalization(axis=None)
    norm.adapt(data["Fee"])
    deep = keras.layers.Dense(8, activation="relu")(keras.layers.concatenate([deep, norm(fee)]))
    x = keras.layers.concatenate([wide, cross, deep])
    output = keras.layers.Dense(1, activation="sigmoid", name="adopted")(x)
    model = keras.Model([color, kind, fee], output)
    model.compile("adam", "binary_crossentropy")
    return model, {k: data[k] for k in ("Color1", "Type", "Fee")}


def _column_dict(data):
    """Numpy columns as `[rows, 1]`, strings as object arrays (what tf.data takes)."""
    return {k: (v.astype(object) if v.dtype.kind == "U" else v).reshape(-1, 1)
            for k, v in data.items()}


def _fit(model, data, labels, epochs):
    dataset = tf.data.Dataset.from_tensor_slices((dict(data), labels)).batch(32)
    model.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
