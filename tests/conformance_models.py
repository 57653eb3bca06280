"""The tutorial models of the conformance suite, trained with the callback.

Each builder follows the model code of a keras.io or tensorflow.org tutorial,
generates its data, trains one epoch with `XaiExportCallback(...,
explain_signature=True)` and returns `(export path, instances)`: a few rows in
`serving_default`'s input format. Sizes are tiny; what matters is the shape of
the model. Builders here run on Keras 3 with any backend (the JAX and PyTorch
rows run them in `conformance_script.py`); tf-keras rows are in that script.
"""

import keras
import numpy as np
import tensorflow as tf

import xai_callback
from preprocessing_models import COLORS, TYPES, build_wide_deep, heart_feature_space, heart_rows

INSTANCES = 2
WORDS = ["good", "great", "fun", "bad", "boring", "awful", "plot", "acting", "the", "movie"]


def fit_exporting(model, x, y=None, export_dir=None, batch_size=16, **options):
    """One epoch of `model.fit` with the callback; the path of the export it wrote."""
    callback = xai_callback.XaiExportCallback(str(export_dir), explain_signature=True, **options)
    model.fit(x, y, epochs=1, batch_size=None if y is None else batch_size, verbose=0,
              callbacks=[callback])
    return callback.last_export.path


def first(rows, count=INSTANCES):
    return {k: v[:count] for k, v in rows.items()}


def dataset(x, y, batch_size=16):
    """Keras `fit` takes no numpy object arrays: string columns go through tf.data."""
    return tf.data.Dataset.from_tensor_slices(({k: tf.constant(v) for k, v in x.items()}, y)).batch(
        batch_size)


def labels_of(rng, rows):
    return rng.integers(0, 2, rows).astype("float32")


# -- structured data -------------------------------------------------------------------------

def featurespace(export_dir):
    """keras.io "Structured data classification with FeatureSpace": the training model on
    the encoded features, trained on `feature_space`-mapped data, exported with
    `preprocess_fn=feature_space`."""
    keras.utils.set_random_seed(0)
    data, labels = heart_rows(64)
    space = heart_feature_space(data)
    encoded = space.get_encoded_features()
    x = keras.layers.Dense(16, activation="relu")(encoded)
    x = keras.layers.Dropout(0.5)(x)
    model = keras.Model(encoded, keras.layers.Dense(1, activation="sigmoid", name="heart")(x))
    model.compile("adam", "binary_crossentropy")
    flat = {k: v[:, 0] for k, v in data.items()}
    train = tf.data.Dataset.from_tensor_slices((flat, labels)).batch(16).map(
        lambda x, y: (space(x), y))
    path = fit_exporting(model, train, export_dir=export_dir, preprocess_fn=space,
                         sample=first(data, 4))
    return path, first(data)


def petfinder_rows(rows=64, seed=0):
    rng = np.random.default_rng(seed)
    data = {
        "Type": rng.choice(TYPES, (rows, 1)).astype(object),
        "Color1": rng.choice(COLORS, (rows, 1)).astype(object),
        "Age": rng.choice([1, 2, 3, 6, 12], (rows, 1)).astype("int64"),
        "Fee": rng.uniform(0, 200, (rows, 1)).astype("float32"),
        "PhotoAmt": rng.integers(0, 10, (rows, 1)).astype("float32"),
    }
    return data, ((data["Type"][:, 0] == "Dog") ^ (data["Fee"][:, 0] > 100)).astype("float32")


def petfinder(export_dir):
    """TF "Classify structured data using Keras preprocessing layers": Normalization on
    numbers, IntegerLookup/StringLookup -> CategoryEncoding on categories."""
    keras.utils.set_random_seed(0)
    data, labels = petfinder_rows()
    inputs, encoded = [], []
    for name in ("Fee", "PhotoAmt"):
        column = keras.Input((1,), name=name)
        normalizer = keras.layers.Normalization(axis=None)
        normalizer.adapt(data[name])
        inputs.append(column)
        encoded.append(normalizer(column))
    for name, dtype, lookup in (("Age", "int64", keras.layers.IntegerLookup(max_tokens=8)),
                                ("Type", "string", keras.layers.StringLookup(max_tokens=8)),
                                ("Color1", "string", keras.layers.StringLookup(max_tokens=8))):
        column = keras.Input((1,), name=name, dtype=dtype)
        lookup.adapt(data[name])
        encoder = keras.layers.CategoryEncoding(num_tokens=lookup.vocabulary_size())
        inputs.append(column)
        encoded.append(encoder(lookup(column)))
    x = keras.layers.Dense(16, activation="relu")(keras.layers.concatenate(encoded))
    x = keras.layers.Dropout(0.5)(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="adopted")(x))
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    path = fit_exporting(model, dataset(data, labels), export_dir=export_dir, sample=first(data, 4))
    return path, first(data)


def wide_deep(export_dir):
    """keras.io wide & deep: a category one-hot (wide) and embedded (deep), a hashed cross."""
    keras.utils.set_random_seed(0)
    data, labels = petfinder_rows()
    model, data = build_wide_deep(data)
    path = fit_exporting(model, dataset(data, labels), export_dir=export_dir, sample=first(data, 4))
    return path, first(data)


def regression(export_dir):
    """TF "Basic regression": an adapted Normalization, two hidden layers, one output. On
    JAX and PyTorch the adapted statistics are state that is not a weight."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(loc=[5, 100, 0.5, 2000], scale=[2, 30, 0.2, 500], size=(64, 4)).astype("float32")
    y = (x @ np.array([1.0, 0.05, -3.0, 0.001], "float32")).astype("float32")
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(x)
    model = keras.Sequential([keras.Input((4,), name="features"), normalizer,
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, name="mpg")])
    model.compile("adam", "mean_absolute_error")
    path = fit_exporting(model, x, y, export_dir=export_dir, sample=x[:4])
    return path, {"features": x[:INSTANCES]}


def multi_output(export_dir):
    """Keras functional-API guide, multi-output: a shared body, a regression head and a
    classification head; the classifier is explained (`output_key`)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    priority = x[:, :1].copy()
    department = np.eye(3, dtype="float32")[rng.integers(0, 3, 64)]
    features = keras.Input((6,), name="features")
    body = keras.layers.Dense(12, activation="relu")(features)
    model = keras.Model(features, {
        "priority": keras.layers.Dense(1, name="priority")(body),
        "department": keras.layers.Dense(3, activation="softmax", name="department")(body)})
    model.compile("adam", {"priority": "mse", "department": "categorical_crossentropy"})
    path = fit_exporting(model, x, {"priority": priority, "department": department},
                         export_dir=export_dir, output_key="department", sample=x[:4])
    return path, {"features": x[:INSTANCES]}


def mixed_precision(export_dir):
    """TF "Mixed precision" guide: float16 compute, the last layer's activation in float32."""
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
        y = (x[:, 0] > x[:, 1]).astype("float32")
        inputs = keras.Input((8,), name="digits")
        hidden = keras.layers.Dense(16, activation="relu")(inputs)
        logits = keras.layers.Dense(1)(hidden)
        output = keras.layers.Activation("sigmoid", dtype="float32", name="predictions")(logits)
        model = keras.Model(inputs, output)
        model.compile("adam", "binary_crossentropy")
        path = fit_exporting(model, x, y, export_dir=export_dir, sample=x[:4])
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return path, {"digits": x[:INSTANCES]}


# -- text --------------------------------------------------------------------------------------

def reviews(rows=64, seed=0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        words = rng.choice(WORDS, rng.integers(2, 6))
        texts.append(" ".join(words))
        labels.append(float(sum(w in WORDS[:3] for w in words) > sum(w in WORDS[3:6] for w in words)))
    return np.array(texts, object).reshape(-1, 1), np.array(labels, "float32")


def text_model(export_dir, body):
    keras.utils.set_random_seed(0)
    texts, labels = reviews()
    vectorize = keras.layers.TextVectorization(max_tokens=16, output_sequence_length=6)
    vectorize.adapt(texts[:, 0])
    text = keras.Input((1,), dtype="string", name="text")
    x = body(keras.layers.Embedding(16, 4, mask_zero=True)(vectorize(text)))
    model = keras.Model(text, keras.layers.Dense(1, activation="sigmoid", name="positive")(x))
    model.compile("adam", "binary_crossentropy")
    path = fit_exporting(model, dataset({"text": texts}, labels), export_dir=export_dir,
                         sample={"text": texts[:4]})
    return path, {"text": texts[:INSTANCES]}


def text_in_model(export_dir):
    """keras.io / TF text classification with the TextVectorization layer inside the model,
    Embedding -> GlobalAveragePooling1D -> Dense."""
    return text_model(export_dir, keras.layers.GlobalAveragePooling1D())


def lstm_text(export_dir):
    """TF "Text classification with an RNN": TextVectorization -> Embedding(mask_zero=True)
    -> Bidirectional(LSTM) -> Dense."""
    return text_model(export_dir, lambda x: keras.layers.Dense(4, activation="relu")(
        keras.layers.Bidirectional(keras.layers.LSTM(4))(x)))


def rnn_sequence(export_dir):
    """Keras "Working with RNNs": GRU and Bidirectional(LSTM) over a float sequence."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(48, 6, 3)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32")
    seq = keras.Input((6, 3), name="sequence")
    h = keras.layers.GRU(4, return_sequences=True)(seq)
    h = keras.layers.Bidirectional(keras.layers.LSTM(3))(h)
    model = keras.Model(seq, keras.layers.Dense(1, name="score")(h))
    model.compile("adam", "binary_crossentropy")
    path = fit_exporting(model, x, y, export_dir=export_dir, sample=x[:4])
    return path, {"sequence": x[:INSTANCES]}


# -- images ------------------------------------------------------------------------------------

IMAGE = 12


def image_bytes(export_dir):
    """TF "Image classification" served from encoded images: `xai_preprocess` decodes PNG
    bytes (TF Serving's {"b64": ...}) to floats, a small CNN explains them."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, IMAGE, IMAGE, 3)).astype("uint8")
    y = (images[..., 0].mean(axis=(1, 2)) > 127).astype("float32")
    pixels = keras.Input((IMAGE, IMAGE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(pixels)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(pixels, keras.layers.Dense(2, name="logits")(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def decode(image_bytes):
        decoded = tf.map_fn(lambda b: tf.ensure_shape(tf.io.decode_png(b, channels=3),
                                                      [IMAGE, IMAGE, 3]),
                            image_bytes, fn_output_signature=tf.TensorSpec([IMAGE, IMAGE, 3], tf.uint8))
        return {"pixels": tf.cast(decoded, tf.float32)}

    encoded = np.array([tf.io.encode_png(i).numpy() for i in images[:4]], object)
    path = fit_exporting(model, images.astype("float32"), y, export_dir=export_dir,
                         preprocess_fn=decode, sample={"image_bytes": encoded})
    return path, {"image_bytes": encoded[:INSTANCES]}


def mobilenet_v2(export_dir):
    """TF "Transfer learning and fine-tuning": MobileNetV2 base (alpha=0.35, 96x96, weights
    None here), its preprocess_input, GlobalAveragePooling2D, Dropout, a Dense head."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 96, 96, 3)).astype("float32")
    y = rng.integers(0, 2, 8).astype("float32")
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False,
                                          weights=None)
    base.trainable = False
    image = keras.Input((96, 96, 3), name="image")
    x = keras.applications.mobilenet_v2.preprocess_input(image)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(image, keras.layers.Dense(1, name="logit")(x))
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    path = fit_exporting(model, images, y, batch_size=4, export_dir=export_dir, sample=images[:1])
    return path, {"image": images[:1]}


# -- Keras 3 on JAX / PyTorch (run by conformance_script.py) ----------------------------------

def backend_mlp(export_dir):
    """A plain MLP on the JAX or PyTorch backend (TensorFlow copy of the model)."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("float32")
    feats = keras.Input((4,), name="feats")
    hidden = keras.layers.Dense(8, activation="tanh")(feats)
    model = keras.Model(feats, keras.layers.Dense(1, name="score")(hidden))
    model.compile("adam", "mse")
    path = fit_exporting(model, x, y, export_dir=export_dir, sample=x[:4])
    return path, {"feats": x[:INSTANCES]}


# -- rows the split is being fixed for (the tutorial table) -------------------------------------

def dict_outputs(export_dir):
    """A dict of outputs {"priority", "department"}, an IntegerLookup -> CategoryEncoding
    input, `output_key="department"`."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    team = rng.integers(0, 4, (64, 1)).astype("int64")
    score = rng.normal(size=(64, 3)).astype("float32")
    lookup = keras.layers.IntegerLookup(vocabulary=[0, 1, 2, 3])
    team_in = keras.Input((1,), name="team", dtype="int64")
    score_in = keras.Input((3,), name="score")
    encoded = keras.layers.CategoryEncoding(num_tokens=lookup.vocabulary_size(),
                                            output_mode="one_hot")(lookup(team_in))
    body = keras.layers.Dense(8, activation="relu")(keras.layers.concatenate([encoded, score_in]))
    model = keras.Model({"team": team_in, "score": score_in}, {
        "priority": keras.layers.Dense(1, name="priority")(body),
        "department": keras.layers.Dense(4, activation="softmax", name="department")(body)})
    model.compile("adam", {"priority": "mse", "department": "categorical_crossentropy"})
    x = {"team": team, "score": score}
    y = {"priority": score[:, :1], "department": np.eye(4, dtype="float32")[team[:, 0]]}
    path = fit_exporting(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(16),
                         export_dir=export_dir, output_key="department", sample=first(x, 4))
    return path, first(x)


def variable_length_text(export_dir):
    """keras.io "Text classification from scratch": TextVectorization in tf.data, the model
    on int64 ids `Input(shape=(None,))`, then `keras.Model(raw, inner(vectorize(raw)))`."""
    keras.utils.set_random_seed(0)
    texts, labels = reviews()
    vectorize = keras.layers.TextVectorization(max_tokens=16, output_mode="int",
                                               output_sequence_length=6)
    vectorize.adapt(texts[:, 0])
    ids = keras.Input((None,), dtype="int64", name="ids")
    x = keras.layers.Embedding(16, 4)(ids)
    x = keras.layers.GlobalMaxPooling1D()(x)
    inner = keras.Model(ids, keras.layers.Dense(1, activation="sigmoid", name="positive")(x))
    inner.compile("adam", "binary_crossentropy")
    inner.fit(tf.data.Dataset.from_tensor_slices((texts[:, 0], labels)).batch(16).map(
        lambda t, y: (vectorize(t), y)), epochs=1, verbose=0)
    raw = keras.Input((1,), dtype="string", name="text")
    end_to_end = keras.Model(raw, inner(vectorize(raw)))
    end_to_end.compile("adam", "binary_crossentropy")
    path = fit_exporting(end_to_end, dataset({"text": texts}, labels), export_dir=export_dir,
                         sample={"text": texts[:4]})
    return path, {"text": texts[:INSTANCES]}


def discretization(export_dir):
    """A float column -> Discretization -> CategoryEncoding(one_hot) -> Dense."""
    keras.utils.set_random_seed(0)
    price = np.random.default_rng(0).uniform(0, 100, (64, 1)).astype("float32")
    y = (price[:, 0] > 50).astype("float32")
    column = keras.Input((1,), name="price")
    bins = keras.layers.Discretization(bin_boundaries=[25.0, 50.0, 75.0])
    encoded = keras.layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")(bins(column))
    model = keras.Model(column, keras.layers.Dense(1, activation="sigmoid", name="expensive")(encoded))
    model.compile("adam", "binary_crossentropy")
    path = fit_exporting(model, price, y, export_dir=export_dir, sample=price[:4])
    return path, {"price": price[:INSTANCES]}


def float_ids_embedding(export_dir):
    """Keras functional-API guide, multi-input: token ids in the default float32
    `Input(shape=(None,))` feeding an Embedding, beside a float input."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    title = rng.integers(1, 20, (64, 5)).astype("float32")
    tags = rng.integers(0, 2, (64, 4)).astype("float32")
    title_in = keras.Input((None,), name="title")
    tags_in = keras.Input((4,), name="tags")
    words = keras.layers.LSTM(4)(keras.layers.Embedding(20, 4)(title_in))
    x = keras.layers.concatenate([words, tags_in])
    model = keras.Model([title_in, tags_in], keras.layers.Dense(1, name="priority")(x))
    model.compile("adam", "mse")
    x = {"title": title, "tags": tags}
    path = fit_exporting(model, x, title[:, :1] / 20, export_dir=export_dir, sample=first(x, 4))
    return path, first(x)


def unnamed_input(export_dir):
    """Every `keras.applications` model: an unnamed `keras.Input`; the signature key is
    its Input layer's name (instances keyed by anything else are refused)."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(size=(32, 8, 8, 3)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype("float32")
    image = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(image))
    model = keras.Model(image, keras.layers.Dense(1, name="score")(h))
    model.compile("adam", "mse")
    path = fit_exporting(model, x, y, export_dir=export_dir, sample=x[:4])
    name = model.layers[0].name  # the InputLayer's (input_layer, input_layer_1, ...)
    assert not name.startswith("keras_tensor"), name
    return path, {name: x[:INSTANCES]}
