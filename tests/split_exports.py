"""Keras models with preprocessing layers, exported split BY HAND (SPLIT_CONTRACT.md).

Each builder trains a tiny end-to-end Keras model (raw strings/ints in) for an
epoch, then exports it through the engine with `preprocess_fn` = the Keras
preprocessing layers (raw -> encoded float tensors) and `model_fn` = the body
on the encoded tensors, both as `(fn, input_signature)`, with an explicit
`ExplanationSpec` using the contract's encodings; token exports get their
`assets.extra/xai_features.json` written here, as the exporter's split will.
"""

import keras
import numpy as np
import tensorflow as tf

from xai_callback import ExplanationSpec, Feature, IntegratedGradients, Output, export_explainable_model
from xai_callback.publish import storage
from xai_callback.names import FEATURES_FILE, extra_path

TYPES = ["Cat", "Dog"]
BREEDS = ["Tabby", "Mixed", "Husky", "Poodle"]
AGES = [1, 2, 3, 6, 12]
WORDS = ["the", "movie", "was", "great", "bad", "plot", "acting", "long"]
TEXT_LENGTH = 8
EMBEDDING = 3


def petfinder_rows(rows=256, seed=0):
    """Raw PetFinder-like columns, each `[rows, 1]`, and a learnable label."""
    rng = np.random.default_rng(seed)
    data = {
        "Type": rng.choice(TYPES, (rows, 1)).astype(object),
        "Age": rng.choice(AGES, (rows, 1)).astype(np.int64),
        "Breed": rng.choice(BREEDS, (rows, 1)).astype(object),
        "Fee": rng.uniform(0, 200, (rows, 1)).astype(np.float32),
        "PhotoAmt": rng.integers(0, 10, (rows, 1)).astype(np.float32),
    }
    label = ((data["Type"][:, 0] == "Dog") ^ (data["Age"][:, 0] > 3)
             ^ (data["Fee"][:, 0] > 100)).astype(np.float32)
    return data, label


def _dataset(x, y):
    """Keras `fit` takes no numpy object arrays: string columns go through tf.data."""
    x = {k: tf.constant(v) for k, v in x.items()} if isinstance(x, dict) else tf.constant(x)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(32)


def _raw_inputs():
    return {
        "Type": keras.Input((1,), dtype="string", name="Type"),
        "Age": keras.Input((1,), dtype="int64", name="Age"),
        "Breed": keras.Input((1,), dtype="string", name="Breed"),
        "Fee": keras.Input((1,), dtype="float32", name="Fee"),
        "PhotoAmt": keras.Input((1,), dtype="float32", name="PhotoAmt"),
    }


class PetFinderLayers:
    """The layers of the PetFinder-shaped model, used in three functional graphs."""

    def __init__(self, data, wide):
        keras.utils.set_random_seed(0)
        self.wide = wide
        self.type_lookup = keras.layers.StringLookup(vocabulary=TYPES)
        self.age_lookup = keras.layers.IntegerLookup(vocabulary=AGES)
        self.breed_lookup = keras.layers.StringLookup(vocabulary=BREEDS)
        self.type_hot = keras.layers.CategoryEncoding(len(TYPES) + 1, output_mode="one_hot")
        self.age_hot = keras.layers.CategoryEncoding(len(AGES) + 1, output_mode="one_hot")
        self.breed_hot = keras.layers.CategoryEncoding(len(BREEDS) + 1, output_mode="one_hot")
        self.breed_embedding = keras.layers.Embedding(len(BREEDS) + 1, EMBEDDING)
        self.cross = keras.layers.HashedCrossing(num_bins=8, output_mode="one_hot")
        self.fee_norm = keras.layers.Normalization()
        self.fee_norm.adapt(data["Fee"])
        self.photo_norm = keras.layers.Normalization()
        self.photo_norm.adapt(data["PhotoAmt"])
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.out = keras.layers.Dense(1, name="score")

    def encode(self, raw):
        """Raw inputs -> the encoded float tensors (the frontier)."""
        breed_ids = self.breed_lookup(raw["Breed"])
        encoded = {
            "Type": self.type_hot(self.type_lookup(raw["Type"])),
            "Age": self.age_hot(self.age_lookup(raw["Age"])),
            "Breed_embedding" if self.wide else "Breed": self.breed_embedding(breed_ids),
        }
        if self.wide:
            encoded["Breed"] = self.breed_hot(breed_ids)
            encoded["Type_X_Age"] = self.cross((raw["Type"], raw["Age"]))
        return encoded

    def body(self, encoded, fee, photos):
        embedded = encoded["Breed_embedding" if self.wide else "Breed"]
        parts = [encoded["Type"], encoded["Age"], keras.layers.Flatten()(embedded),
                 self.fee_norm(fee), self.photo_norm(photos)]
        if self.wide:
            parts += [encoded["Breed"], encoded["Type_X_Age"]]
        return self.out(self.hidden(keras.layers.Concatenate()(parts)))


def petfinder_features(layers):
    """The metadata features of the contract for the PetFinder export."""
    embedding_row = np.zeros(EMBEDDING).tolist()  # no padding row: zeros (contract 4)
    features = [
        Feature("Type", encoding="INDICATOR", index_feature_mapping=layers.type_lookup.get_vocabulary(),
                baselines=[0.0]),
        Feature("Age", encoding="INDICATOR",
                index_feature_mapping=[str(v) for v in layers.age_lookup.get_vocabulary()],
                baselines=[0.0]),
        Feature("Fee", baselines=[float(np.ravel(layers.fee_norm.mean)[0])]),
        Feature("PhotoAmt", baselines=[0.0]),
    ]
    if layers.wide:
        features += [
            Feature("Breed", encoding="INDICATOR", group_name="Breed", baselines=[0.0],
                    index_feature_mapping=layers.breed_lookup.get_vocabulary()),
            Feature("Breed_embedding", encoded_tensor_name="Breed_embedding", group_name="Breed",
                    encoding="COMBINED_EMBEDDING", encoded_baselines=[embedding_row]),
            Feature("Type_X_Age", encoding="INDICATOR", baselines=[0.0],
                    index_feature_mapping=[f"bin {i}" for i in range(8)]),
        ]
    else:
        features.append(Feature("Breed", encoded_tensor_name="Breed", encoding="COMBINED_EMBEDDING",
                                encoded_baselines=[embedding_row]))
    return features


def petfinder_split_export(path, wide=False, method=None, epochs=2, explain_signature=False):
    """A trained PetFinder-shaped model exported split by hand.

    Returns:
        `(export path, trained end-to-end Keras model, layers)`.
    """
    data, label = petfinder_rows()
    layers = PetFinderLayers(data, wide)
    raw = _raw_inputs()
    model = keras.Model(raw, layers.body(layers.encode(raw), raw["Fee"], raw["PhotoAmt"]))
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(_dataset(data, label), epochs=epochs, verbose=0)

    preprocess_model = keras.Model(raw, layers.encode(raw))
    encoded_specs = {k: tf.TensorSpec([None] + list(t.shape[1:]), tf.float32, name=k)
                     for k, t in preprocess_model.output.items()}
    encoded_specs.update(Fee=tf.TensorSpec([None, 1], tf.float32, name="Fee"),
                         PhotoAmt=tf.TensorSpec([None, 1], tf.float32, name="PhotoAmt"))
    inputs = {k: keras.Input(tuple(s.shape[1:]), name=k) for k, s in encoded_specs.items()}
    body_model = keras.Model(inputs, layers.body(inputs, inputs["Fee"], inputs["PhotoAmt"]))

    def preprocess(**raw_values):
        encoded = preprocess_model(raw_values, training=False)
        return {**encoded, "Fee": raw_values["Fee"], "PhotoAmt": raw_values["PhotoAmt"]}

    raw_specs = {k: tf.TensorSpec([None, 1], tf.as_dtype(t.dtype), name=k) for k, t in raw.items()}
    spec = ExplanationSpec(features=petfinder_features(layers), output=Output("score"),
                           method=method or IntegratedGradients(step_count=50))
    sample = {k: v[:4] for k, v in data.items()}
    export_explainable_model(
        model, str(path), preprocess_fn=(preprocess, raw_specs),
        model_fn=(lambda **kw: {"score": body_model(kw, training=False)}, encoded_specs),
        sample=sample, explanation_spec=spec, explain_signature=explain_signature)
    features = {"Type": {"kind": "indicator", "raw_inputs": ["Type"]},
                "Age": {"kind": "indicator", "raw_inputs": ["Age"]},
                "Fee": {"kind": "numeric", "raw_inputs": ["Fee"]},
                "PhotoAmt": {"kind": "numeric", "raw_inputs": ["PhotoAmt"]}}
    if wide:
        features.update(Breed={"kind": "indicator", "raw_inputs": ["Breed"]},
                        Breed_embedding={"kind": "embedding", "raw_inputs": ["Breed"]},
                        Type_X_Age={"kind": "cross", "raw_inputs": ["Type", "Age"]})
    else:
        features["Breed"] = {"kind": "embedding", "raw_inputs": ["Breed"]}
    storage.write_json(extra_path(path, FEATURES_FILE), {"format": 1, "features": features})
    return str(path), model, layers


def reviews(rows=256, seed=0):
    """Short texts of 2-8 words and a sentiment label ("great" vs "bad")."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        words = list(rng.choice(WORDS[:3] + WORDS[5:], rng.integers(1, 7)))
        good = rng.random() < 0.5
        words.insert(int(rng.integers(0, len(words) + 1)), "great" if good else "bad")
        texts.append(" ".join(words))
        labels.append(float(good))
    return np.array(texts, object)[:, None], np.array(labels, np.float32)


def text_split_export(path, method=None, features_file=True, epochs=2):
    """TextVectorization -> Embedding(mask_zero) -> masked mean -> Dense, split by hand.

    `xai_preprocess` returns the token embeddings `text` [None, 8, 3] and the
    carried ids `text_ids` [None, 8]; `xai_model` recomputes the mask from the
    ids. Returns `(export path, end-to-end model, vectorizer, embedding layer)`.
    """
    keras.utils.set_random_seed(0)
    texts, labels = reviews()
    vectorizer = keras.layers.TextVectorization(
        vocabulary=WORDS, output_mode="int", output_sequence_length=TEXT_LENGTH)
    embedding = keras.layers.Embedding(len(WORDS) + 2, EMBEDDING, mask_zero=True)
    dense = keras.layers.Dense(1, name="score")
    raw = keras.Input((1,), dtype="string", name="text")
    pooled = keras.layers.GlobalAveragePooling1D()(embedding(vectorizer(raw)))
    model = keras.Model(raw, dense(pooled))
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(_dataset(texts, labels), epochs=epochs, verbose=0)

    def preprocess(text):
        ids = vectorizer(text)
        return {"text": embedding(ids), "text_ids": ids}

    def body(text, text_ids):
        mask = tf.cast(text_ids != 0, text.dtype)[..., None]
        mean = tf.reduce_sum(text * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return {"score": dense(mean)}

    padding_row = embedding.embeddings.numpy()[0].tolist()
    spec = ExplanationSpec(
        features=[Feature("text", encoded_tensor_name="text", encoding="CONCAT_EMBEDDING",
                          encoded_baselines=[padding_row])],
        output=Output("score"), method=method or IntegratedGradients(step_count=50))
    export_explainable_model(
        model, str(path),
        preprocess_fn=(preprocess, [tf.TensorSpec([None, 1], tf.string, name="text")]),
        model_fn=(body, [tf.TensorSpec([None, TEXT_LENGTH, EMBEDDING], tf.float32, name="text"),
                         tf.TensorSpec([None, TEXT_LENGTH], tf.int64, name="text_ids")]),
        sample={"text": texts[:4]}, explanation_spec=spec)
    if features_file:
        storage.write_json(extra_path(path, FEATURES_FILE), {"format": 1, "features": {
            "text": {"kind": "tokens", "raw_inputs": ["text"], "ids_key": "text_ids",
                     "vocabulary": vectorizer.get_vocabulary(), "padding_id": 0}}})
    return str(path), model, vectorizer, embedding


def strict_lookup_export(path, baseline, method, **options):
    """An UNSPLIT model on raw strings whose StringLookup has no OOV index
    (FeatureSpace's default), explained with the given `Type` baseline.

    A baseline the lookup refuses is refused before training by default; tests
    of what `validate` and `explain` say about such an export pass verify=False."""
    keras.utils.set_random_seed(0)
    data, label = petfinder_rows()
    lookup = keras.layers.StringLookup(vocabulary=TYPES, num_oov_indices=0, output_mode="one_hot")
    raw = {"Type": keras.Input((1,), dtype="string", name="Type"),
           "Fee": keras.Input((1,), dtype="float32", name="Fee")}
    norm = keras.layers.Normalization()
    norm.adapt(data["Fee"])
    hidden = keras.layers.Concatenate()([lookup(raw["Type"]), norm(raw["Fee"])])
    model = keras.Model(raw, keras.layers.Dense(1, name="score")(hidden))
    model.compile("adam", "mse")
    model.fit(_dataset({k: data[k] for k in raw}, label), epochs=1, verbose=0)
    spec = ExplanationSpec(features=[Feature("Type", baselines=None if baseline is None else [baseline]),
                                     Feature("Fee", baselines=[100.0])], method=method)
    export_explainable_model(model, str(path), sample={k: data[k][:4] for k in raw},
                             explanation_spec=spec, split=False, **options)
    return str(path)
