"""Tutorial models (docs/compatibility.md), built as keras.io / tensorflow.org build them.

Tiny sizes, generated data. Each builder returns the model (compiled, not
trained: the tests train it one epoch through the callback), its training
data and a few raw instances to explain.
"""

import keras
import numpy as np
import tensorflow as tf

WORDS = ["the", "movie", "was", "great", "bad", "plot", "acting", "long", "fun", "boring"]
SEQUENCE_LENGTH = 12


def support_tickets(rows=64, seed=0):
    """Dict outputs `{"priority", "department"}`; a tags input through
    IntegerLookup -> CategoryEncoding (keras.io preprocessing-layers guide)
    beside a float title encoding."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = {"title": rng.normal(size=(rows, 4)).astype("float32"),
         "tags": rng.integers(0, 5, (rows, 1)).astype("int64")}
    y = {"priority": (x["title"][:, :1] > 0).astype("float32"),
         "department": np.eye(4, dtype="float32")[x["tags"][:, 0] % 4]}
    title = keras.Input((4,), name="title")
    tags = keras.Input((1,), name="tags", dtype="int64")
    lookup = keras.layers.IntegerLookup(vocabulary=[0, 1, 2, 3, 4])
    encoded = keras.layers.CategoryEncoding(num_tokens=lookup.vocabulary_size(), output_mode="one_hot")(
        lookup(tags))
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.concatenate([title, encoded]))
    model = keras.Model({"title": title, "tags": tags},
                        {"priority": keras.layers.Dense(1, name="priority")(hidden),
                         "department": keras.layers.Dense(4, name="department")(hidden)})
    model.compile("adam", {"priority": keras.losses.BinaryCrossentropy(from_logits=True),
                           "department": keras.losses.CategoricalCrossentropy(from_logits=True)})
    instances = [{"title": x["title"][i].tolist(), "tags": x["tags"][i].tolist()} for i in range(3)]
    return model, (x, y), instances


def reviews(rows=64, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(2, 9))) for _ in range(rows)]
    labels = np.array([float("great" in t or "fun" in t) for t in texts], "float32")
    return np.array(texts, object), labels


def text_from_scratch(rows=64, seed=0):
    """keras.io "Text classification from scratch": TextVectorization in
    `tf.data`, the model on `Input(shape=(None,), dtype="int64")` token ids
    (Embedding -> Dropout -> Conv1D -> GlobalMaxPooling1D -> Dense), then
    `end_to_end_model = keras.Model(raw, model(vectorize_layer(raw)))`.

    Returns `(model, vectorize_layer, end_to_end_model, vectorized dataset,
    raw dataset, raw instances)`.
    """
    keras.utils.set_random_seed(seed)
    texts, labels = reviews(rows, seed)
    vectorize_layer = keras.layers.TextVectorization(
        max_tokens=20, output_mode="int", output_sequence_length=SEQUENCE_LENGTH)
    vectorize_layer.adapt(texts)
    raw_ds = tf.data.Dataset.from_tensor_slices((texts[:, None], labels)).batch(16)
    vectorized_ds = raw_ds.map(lambda x, y: (vectorize_layer(x), y))
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = keras.layers.Embedding(20, 8)(inputs)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Conv1D(8, 3, padding="valid", activation="relu", strides=1)(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    predictions = keras.layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer="adam")
    raw = keras.Input(shape=(1,), dtype="string")
    end_to_end_model = keras.Model(raw, model(vectorize_layer(raw)))
    end_to_end_model.compile(loss="binary_crossentropy", optimizer="adam")
    instances = [str(t) for t in texts[:3]]
    return model, vectorize_layer, end_to_end_model, vectorized_ds, raw_ds, instances


def discretized_price(rows=64, seed=0):
    """A float column -> Discretization -> CategoryEncoding(one_hot) -> Dense."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    price = rng.uniform(0, 100, (rows, 1)).astype("float32")
    labels = ((price[:, 0] > 30) & (price[:, 0] < 70)).astype("float32")
    discretize = keras.layers.Discretization(num_bins=5)
    discretize.adapt(price)
    inputs = keras.Input((1,), name="price")
    x = keras.layers.CategoryEncoding(num_tokens=5, output_mode="one_hot")(discretize(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="score")(x))
    model.compile("adam", "binary_crossentropy")
    instances = [{"price": price[i].tolist()} for i in range(3)]
    return model, (price, labels), instances


def multi_input_tickets(rows=64, seed=0, recurrent=True):
    """The Keras functional-API guide's multi-input, multi-output model: token
    ids in the default float32 `Input(shape=(None,))` -> Embedding -> LSTM
    (title, body), a tags vector; outputs priority and department. With
    `recurrent=False` the LSTMs are GlobalAveragePooling1D."""
    keras.utils.set_random_seed(seed)
    num_tags, num_words, num_departments = 6, 30, 4
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = keras.layers.Embedding(num_words, 8)(title_input)
    body_features = keras.layers.Embedding(num_words, 8)(body_input)
    if recurrent:
        title_features = keras.layers.LSTM(8)(title_features)
        body_features = keras.layers.LSTM(4)(body_features)
    else:
        title_features = keras.layers.GlobalAveragePooling1D()(title_features)
        body_features = keras.layers.GlobalAveragePooling1D()(body_features)
    x = keras.layers.concatenate([title_features, body_features, tags_input])
    priority_pred = keras.layers.Dense(1, name="priority")(x)
    department_pred = keras.layers.Dense(num_departments, name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input],
                        outputs={"priority": priority_pred, "department": department_pred})
    model.compile(optimizer="rmsprop",
                  loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
                        "department": keras.losses.CategoricalCrossentropy(from_logits=True)})
    rng = np.random.default_rng(seed)
    x = {"title": rng.integers(1, num_words, size=(rows, 10)).astype("float32"),
         "body": rng.integers(1, num_words, size=(rows, 20)).astype("float32"),
         "tags": rng.integers(0, 2, size=(rows, num_tags)).astype("float32")}
    y = {"priority": rng.random(size=(rows, 1)).astype("float32"),
         "department": rng.integers(0, 2, size=(rows, num_departments)).astype("float32")}
    instances = [{k: v[i].tolist() for k, v in x.items()} for i in range(3)]
    return model, (x, y), instances


def basic_regression(rows=64, seed=0):
    """TensorFlow's "Basic regression": an adapted Normalization first, a
    Sequential without `keras.Input`."""
    keras.utils.set_random_seed(seed)
    x = np.random.default_rng(seed).normal(size=(rows, 5)).astype("float32")
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(x)
    model = keras.Sequential([normalizer, keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(loss="mean_absolute_error", optimizer=keras.optimizers.Adam(0.001))
    return model, (x, x.sum(axis=1))
