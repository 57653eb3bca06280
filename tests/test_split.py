"""The automatic split of Keras models with preprocessing layers, checked after reloading."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import SignatureError, XaiExportCallback, export_explainable_model, validate
from xai_callback.publish import storage
from xai_callback.split.frontier import plan_split
from xai_callback.names import FEATURES_FILE, SAMPLE_FILE, extra_path
from xai_callback.signatures.tensor_io import decode_tensor_dict
from xai_callback.signatures.specs import signature_io

from preprocessing_models import (
    COLORS,
    TYPES,
    feature_space_models,
    petfinder_model,
    petfinder_rows,
    reviews,
    text_classifier,
    wide_deep_model,
)

pytestmark = pytest.mark.slow  # whole trainings and splits of tutorial models: the full suite runs them, `make test-fast` does not


def export(model, tmp_path_factory, name, **options):
    path = str(tmp_path_factory.mktemp("split") / name)
    result = export_explainable_model(model, path, **options)
    return result, path, tf.saved_model.load(path)


def trained_and_exported(build, tmp_path_factory, name):
    """`(model, rows, result, path, loaded)` of a model from `preprocessing_models`."""
    model, rows = build()
    return (model, rows) + export(model, tmp_path_factory, name)


def as_tensors(rows):
    return {k: tf.constant(rows[k]) for k in sorted(rows)}


def call_keras(model, raw):
    """The live model on a dict of raw columns (a bare tensor for one input)."""
    return np.asarray(model(raw if len(raw) > 1 else next(iter(raw.values())), training=False))


def assert_contract_holds(loaded, model, rows, output_key):
    """serving_default == the original model == xai_model(**xai_preprocess(x))."""
    signatures = loaded.signatures
    raw = as_tensors(rows)
    served = signatures["serving_default"](**raw)[output_key].numpy()
    live = call_keras(model, raw)
    np.testing.assert_allclose(served, live.reshape(served.shape), rtol=1e-5, atol=1e-6)
    encoded = signatures["xai_preprocess"](**raw)
    composed = signatures["xai_model"](**encoded)[output_key].numpy()
    np.testing.assert_allclose(composed, served, rtol=1e-5, atol=1e-6)
    preprocess_out = signature_io(signatures["xai_preprocess"])[1]
    model_in = signature_io(signatures["xai_model"])[0]
    assert {k: (s.dtype, s.shape.as_list()) for k, s in preprocess_out.items()} == {
        k: (s.dtype, s.shape.as_list()) for k, s in model_in.items()}
    return encoded


# -- PetFinder: lookups + one-hot + normalization -----------------------------

@pytest.fixture(scope="module")
def petfinder(tmp_path_factory):
    return trained_and_exported(petfinder_model, tmp_path_factory, "petfinder")


def lookup_sizes(model):
    """{Input name: vocabulary size of the lookup reading it}."""
    sizes = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.StringLookup, keras.layers.IntegerLookup)):
            (node,) = layer._inbound_nodes
            sizes[node.input_tensors[0].name] = layer.vocabulary_size()
    return sizes


def test_petfinder_is_split_at_the_one_hot_encodings(petfinder):
    model, rows, result, path, loaded = petfinder
    assert sorted(loaded.signatures) == ["serving_default", "xai_model", "xai_preprocess"]
    raw_in = signature_io(loaded.signatures["serving_default"])[0]
    assert {k: s.dtype for k, s in raw_in.items()} == {
        "Age": tf.int64, "Color1": tf.string, "Fee": tf.float32, "MaturitySize": tf.string,
        "PhotoAmt": tf.float32, "Type": tf.string}
    model_in = signature_io(loaded.signatures["xai_model"])[0]
    # Keyed by raw feature; numeric inputs stay raw (Normalization inside xai_model).
    sizes = lookup_sizes(model)
    assert {k: (s.dtype, s.shape.as_list()) for k, s in model_in.items()} == {
        **{name: (tf.float32, [None, size]) for name, size in sizes.items()},
        "Fee": (tf.float32, [None, 1]), "PhotoAmt": (tf.float32, [None, 1])}
    assert_contract_holds(loaded, model, {k: v[:16] for k, v in rows.items()}, "adopted")


def test_petfinder_metadata_is_per_raw_feature(petfinder):
    _, rows, result, path, _ = petfinder
    inputs = result.metadata["inputs"]
    assert sorted(inputs) == ["Age", "Color1", "Fee", "MaturitySize", "PhotoAmt", "Type"]
    assert inputs["Type"]["encoding"] == "INDICATOR"
    assert inputs["Type"]["indexFeatureMapping"][0] == "[UNK]"
    assert sorted(inputs["Type"]["indexFeatureMapping"][1:]) == sorted(TYPES)
    assert inputs["Type"]["inputBaselines"] == [0.0]  # all-zero encoding: "absent"
    assert sorted(inputs["Color1"]["indexFeatureMapping"][1:]) == sorted(COLORS)
    ages = {int(a) for a in rows["Age"][:, 0]}
    mapping = inputs["Age"]["indexFeatureMapping"]
    assert mapping[0] == "[UNK]" and {int(a) for a in mapping[1:]} <= ages
    assert inputs["Fee"]["encoding"] == "IDENTITY"
    written = storage.read_json(extra_path(path, "vertex_explanation_metadata.json"))
    assert written == result.metadata
    features = storage.read_json(extra_path(path, FEATURES_FILE))["features"]
    assert features["Type"] == {"kind": "indicator", "raw_inputs": ["Type"]}
    assert features["Fee"]["kind"] == "numeric"


def test_petfinder_needs_no_sample_and_validates(petfinder):
    _, rows, _, path, _ = petfinder
    sample = decode_tensor_dict(storage.read_json(extra_path(path, SAMPLE_FILE)))
    # Generated from the lookups' vocabularies, not made up.
    assert {v.decode() for v in sample["Type"].numpy().ravel()} <= set(TYPES)
    assert {v.decode() for v in sample["Color1"].numpy().ravel()} <= set(COLORS)
    report = validate(path)
    assert report.ok, str(report)


def test_petfinder_integrated_gradients_are_complete(petfinder):
    from xai_callback import explain

    _, rows, _, path, loaded = petfinder
    instances = [{k: v[i].tolist() for k, v in rows.items()} for i in range(3)]
    response = explain(path, instances, granularity="encoded") if _has_granularity() else explain(
        path, instances)
    for explanation in response.explanations:
        attribution = explanation.attributions[0]
        total = sum(float(np.sum(v)) for v in attribution.feature_attributions.values())
        change = attribution.instance_output_value - attribution.baseline_output_value
        assert total == pytest.approx(change, abs=1e-3 + 0.05 * abs(change))


def _has_granularity():
    import inspect

    from xai_callback.explain.explainer import Explainer

    return "granularity" in inspect.signature(Explainer.explain).parameters


# -- Text: TextVectorization -> Embedding(mask_zero) -> pooling ----------------

@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return trained_and_exported(text_classifier, tmp_path_factory, "text")


def test_text_model_is_split_at_the_token_embeddings(text):
    model, rows, result, path, loaded = text
    model_in = signature_io(loaded.signatures["xai_model"])[0]
    assert {k: (s.dtype, s.shape.as_list()) for k, s in model_in.items()} == {
        "text": (tf.float32, [None, 8, 8]),      # attributed: one embedding row per token
        "text_ids": (tf.int64, [None, 8]),       # carried: the token ids, for token strings
        "text_mask": (tf.bool, [None, 8]),       # carried: Embedding(mask_zero=True)'s mask
    }
    inputs = result.metadata["inputs"]
    assert list(inputs) == ["text"]
    entry = inputs["text"]
    assert entry["encoding"] == "CONCAT_EMBEDDING"
    assert entry["encodedTensorName"] == entry["inputTensorName"] == "text"
    padding_row = model.layers[2].embeddings.numpy()[0]
    np.testing.assert_allclose(entry["encodedBaselines"][0], padding_row, rtol=1e-6)
    features = storage.read_json(extra_path(path, FEATURES_FILE))["features"]
    assert features["text"]["kind"] == "tokens"
    assert features["text"]["ids_key"] == "text_ids"
    vocabulary = model.layers[1].get_vocabulary()
    assert features["text"]["vocabulary"] == [str(v) for v in vocabulary]
    assert features["text"]["padding_id"] == 0


def test_text_mask_survives_the_split(text):
    """Short texts are mostly padding: without the mask the mean pooling would differ."""
    model, rows, result, path, loaded = text
    texts, _ = reviews(rows=12, seed=5, length=(1, 3))
    encoded = assert_contract_holds(loaded, model, {"text": texts}, "positive")
    assert not encoded["text_mask"].numpy().all()  # padding present
    unmasked = dict(encoded, text_mask=tf.ones_like(encoded["text_mask"]))
    assert not np.allclose(loaded.signatures["xai_model"](**unmasked)["positive"],
                           loaded.signatures["xai_model"](**encoded)["positive"])


def test_text_validates(text):
    report = validate(text[3])
    assert report.ok, str(report)


# -- FeatureSpace: discretization, hashing crosses, num_oov_indices=0 ----------

@pytest.fixture(scope="module")
def feature_space():
    return feature_space_models()


def test_feature_space_inference_model_is_split_per_raw_feature(feature_space, tmp_path_factory):
    _, _, inference_model, rows = feature_space
    result, path, loaded = export(inference_model, tmp_path_factory, "fs_inference")
    model_in = signature_io(loaded.signatures["xai_model"])[0]
    assert sorted(model_in) == ["age", "chol", "cp", "sex", "sex_X_age", "thal"]
    inputs = result.metadata["inputs"]
    assert inputs["sex_X_age"]["encoding"] == "INDICATOR"
    assert inputs["sex_X_age"]["indexFeatureMapping"] == [f"bin_{i}" for i in range(8)]
    assert inputs["age"]["indexFeatureMapping"][0].startswith("< ")  # Discretization bins
    assert inputs["chol"]["encoding"] == "IDENTITY"  # float_normalized stays raw
    features = storage.read_json(extra_path(path, FEATURES_FILE))["features"]
    assert features["sex_X_age"] == {"kind": "cross", "raw_inputs": ["age", "sex"]}
    assert_contract_holds(loaded, inference_model, {k: v[:16] for k, v in rows.items()},
                          next(iter(signature_io(loaded.signatures["xai_model"])[1])))
    assert validate(path).ok


def test_feature_space_training_model_with_its_feature_space(feature_space, tmp_path_factory):
    space, training_model, inference_model, rows = feature_space
    result, path, loaded = export(training_model, tmp_path_factory, "fs_training",
                                  preprocess_fn=space)
    assert sorted(signature_io(loaded.signatures["xai_model"])[0]) == [
        "age", "chol", "cp", "sex", "sex_X_age", "thal"]
    # The output keeps the training model's own name, not the nested model's.
    output_key = training_model.output_names[0]
    assert sorted(signature_io(loaded.signatures["serving_default"])[1]) == [output_key]
    assert_contract_holds(loaded, inference_model, {k: v[:16] for k, v in rows.items()}, output_key)


def test_feature_space_training_model_alone_gets_a_readable_key(feature_space, tmp_path_factory):
    _, training_model, _, _ = feature_space
    _, _, loaded = export(training_model, tmp_path_factory, "fs_training_alone")
    assert sorted(signature_io(loaded.signatures["xai_model"])[0]) == ["encoded_features"]


def test_unsplit_raw_baselines_are_values_the_lookups_accept(feature_space, tmp_path_factory):
    """split=False: xai_model takes raw values; a "" baseline would crash a
    lookup with num_oov_indices=0, so the defaults come from the vocabularies."""
    _, _, inference_model, rows = feature_space
    result, path, loaded = export(inference_model, tmp_path_factory, "fs_unsplit", split=False,
                                  explanation_spec={"method": "SampledShapley"})
    assert sorted(loaded.signatures) == ["serving_default", "xai_model"]
    inputs = result.metadata["inputs"]
    thal_vocabulary = set(rows["thal"][:, 0])
    assert inputs["thal"]["inputBaselines"][0] in thal_vocabulary
    assert inputs["sex"]["inputBaselines"][0] in {0, 1}
    baselines = {k: tf.constant([[v["inputBaselines"][0]]], dtype=s.dtype)
                 for (k, v), s in zip(sorted(inputs.items()),
                                      [signature_io(loaded.signatures["xai_model"])[0][k]
                                       for k in sorted(inputs)])}
    loaded.signatures["xai_model"](**baselines)  # every baseline passes the lookups


# -- Wide & deep: one raw feature, two encodings; a crossed feature ------------

@pytest.fixture(scope="module")
def wide_deep(tmp_path_factory):
    return trained_and_exported(wide_deep_model, tmp_path_factory, "wide_deep")


def test_wide_and_deep_groups_the_encodings_of_one_raw_feature(wide_deep):
    model, rows, result, path, loaded = wide_deep
    inputs = result.metadata["inputs"]
    assert sorted(inputs) == ["Color1", "Color1_embedding", "Fee", "Type_X_Color1"]
    assert inputs["Color1"]["encoding"] == "INDICATOR"
    assert inputs["Color1_embedding"]["encoding"] == "COMBINED_EMBEDDING"
    assert inputs["Color1"]["groupName"] == inputs["Color1_embedding"]["groupName"] == "Color1"
    assert "groupName" not in inputs["Type_X_Color1"]  # a crossed group of its own
    assert "groupName" not in inputs["Fee"]
    embedding = next(l for l in model.layers if isinstance(l, keras.layers.Embedding))
    oov_row = embedding.embeddings.numpy()[0]
    np.testing.assert_allclose(inputs["Color1_embedding"]["encodedBaselines"][0], oov_row, rtol=1e-6)
    features = storage.read_json(extra_path(path, FEATURES_FILE))["features"]
    assert features["Type_X_Color1"] == {"kind": "cross", "raw_inputs": ["Color1", "Type"]}
    assert_contract_holds(loaded, model, {k: v[:16] for k, v in rows.items()}, "adopted")
    assert validate(path).ok


# -- Options and function forms -----------------------------------------------

def test_split_false_keeps_todays_behaviour(tmp_path_factory):
    model, rows = petfinder_model(rows=48, seed=1)
    _, _, loaded = export(model, tmp_path_factory, "unsplit", split=False,
                          explanation_spec={"method": "SampledShapley"})
    assert sorted(loaded.signatures) == ["serving_default", "xai_model"]
    assert signature_io(loaded.signatures["xai_model"])[0]["Type"].dtype == tf.string


def test_keras_models_are_accepted_as_functions(tmp_path_factory):
    """A Keras preprocessing model and a Keras body, written as given (split=False)."""
    data, labels = petfinder_rows(48)
    kind = keras.Input(shape=(1,), name="Type", dtype="string")
    fee = keras.Input(shape=(1,), name="Fee")
    lookup = keras.layers.StringLookup(vocabulary=TYPES)
    one_hot = keras.layers.CategoryEncoding(num_tokens=3)(lookup(kind))
    preprocess = keras.Model({"Type": kind, "Fee": fee},
                             {"kind": one_hot, "fee": keras.layers.Rescaling(0.01)(fee)})
    kind_in = keras.Input(shape=(3,), name="kind")
    fee_in = keras.Input(shape=(1,), name="fee")
    body = keras.Model({"kind": kind_in, "fee": fee_in},
                       keras.layers.Dense(1, name="score")(keras.layers.concatenate([kind_in, fee_in])))
    result, path, loaded = export(body, tmp_path_factory, "keras_functions",
                                  preprocess_fn=preprocess, split=False,
                                  sample={"Type": data["Type"][:4], "Fee": data["Fee"][:4]})
    assert sorted(loaded.signatures) == ["serving_default", "xai_model", "xai_preprocess"]
    assert sorted(signature_io(loaded.signatures["xai_preprocess"])[0]) == ["Fee", "Type"]
    assert sorted(signature_io(loaded.signatures["xai_model"])[0]) == ["fee", "kind"]
    raw = as_tensors({"Type": data["Type"][:4], "Fee": data["Fee"][:4]})
    expected = body(preprocess(raw)).numpy()
    np.testing.assert_allclose(loaded.signatures["serving_default"](**raw)["score"], expected,
                               rtol=1e-5)


def test_keras_preprocessing_model_is_composed_and_split(tmp_path_factory):
    """The same two Keras models with the default split: attributed per raw feature."""
    data, labels = petfinder_rows(48)
    kind = keras.Input(shape=(1,), name="Type", dtype="string")
    fee = keras.Input(shape=(1,), name="Fee")
    lookup = keras.layers.StringLookup(vocabulary=TYPES)
    encoded = keras.layers.CategoryEncoding(num_tokens=3)(lookup(kind))
    preprocess = keras.Model({"Type": kind, "Fee": fee}, keras.layers.concatenate([encoded, fee]))
    features = keras.Input(shape=(4,), name="features")
    body = keras.Model(features, keras.layers.Dense(1, name="score")(features))
    result, path, loaded = export(body, tmp_path_factory, "keras_composed", preprocess_fn=preprocess)
    assert sorted(signature_io(loaded.signatures["xai_model"])[0]) == ["Fee", "Type"]
    raw = as_tensors({"Type": data["Type"][:4], "Fee": data["Fee"][:4]})
    np.testing.assert_allclose(loaded.signatures["serving_default"](**raw)["score"],
                               body(preprocess(raw)).numpy(), rtol=1e-5)


def test_nested_preprocessing_model_is_inlined(tmp_path_factory):
    """`model = Model(raw, body(preprocessing(raw)))`, the TF CSV tutorial's shape."""
    data, labels = petfinder_rows(48)
    kind = keras.Input(shape=(1,), name="Type", dtype="string")
    fee = keras.Input(shape=(1,), name="Fee")
    lookup = keras.layers.StringLookup(vocabulary=TYPES, output_mode="one_hot")
    preprocessing = keras.Model([kind, fee], keras.layers.concatenate([lookup(kind), fee]),
                                name="preprocessing")
    features = keras.Input(shape=(4,))
    body = keras.Sequential([features, keras.layers.Dense(4, activation="relu"),
                             keras.layers.Dense(1, name="score")], name="body")
    model = keras.Model([kind, fee], body(preprocessing([kind, fee])))
    result, path, loaded = export(model, tmp_path_factory, "nested")
    assert sorted(signature_io(loaded.signatures["xai_model"])[0]) == ["Fee", "Type"]
    assert sorted(signature_io(loaded.signatures["xai_model"])[1]) == ["score"]
    assert_contract_holds(loaded, model, {"Type": data["Type"][:8], "Fee": data["Fee"][:8]},
                          "score")


def test_int_preprocess_output_for_a_float_model_input_is_refused_with_the_cast():
    def ids(text):
        return {"kind": tf.strings.to_hash_bucket_fast(text, 4)}

    body_in = keras.Input(shape=(1,), name="kind")
    body = keras.Model(body_in, keras.layers.Dense(1)(body_in))
    from xai_callback import ExplainableExporter

    exporter = ExplainableExporter(body, preprocess_fn=(ids, [tf.TensorSpec([None, 1], tf.string,
                                                                              name="text")]))
    with pytest.raises(SignatureError, match=r"'kind' is int64 .* float32: add the cast") as info:
        exporter.prepare()
    assert "tf.cast" in str(info.value)


def test_split_must_be_a_bool():
    from xai_callback import ExplainableExporter

    with pytest.raises(TypeError, match="split=.yes."):
        ExplainableExporter(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
                            split="yes")


def test_plan_split_is_none_for_numeric_models():
    inputs = keras.Input((4,), name="feats")
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).normal(size=(16, 4)))
    model = keras.Model(inputs, keras.layers.Dense(1)(norm(inputs)))
    assert plan_split(model) is None


def test_mixed_precision_outputs_are_exported_as_float32(tmp_path_factory):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, rows = petfinder_model(rows=32, seed=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    _, _, loaded = export(model, tmp_path_factory, "mixed")
    for name in ("serving_default", "xai_model"):
        assert signature_io(loaded.signatures[name])[1]["adopted"].dtype == tf.float32


# -- In fit ---------------------------------------------------------------------

def test_callback_exports_a_split_model_without_a_sample(tmp_path):
    model, rows = petfinder_model(rows=48, seed=3, epochs=0)
    data, labels = petfinder_rows(48, seed=3)
    callback = XaiExportCallback(str(tmp_path / "export"))
    model.fit(tf.data.Dataset.from_tensor_slices((data, labels)).batch(16), epochs=1, verbose=0,
              callbacks=[callback])
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    assert sorted(loaded.signatures) == ["serving_default", "xai_model", "xai_preprocess"]
    metadata = json.loads((tmp_path / "export/assets.extra/vertex_explanation_metadata.json").read_text())
    assert metadata["inputs"]["Color1"]["encoding"] == "INDICATOR"


def test_wrapped_application_output_is_named_by_the_application(tmp_path_factory):
    """`Model(x, MobileNetV2(...)(x))`: the output key is `predictions`, not the
    nested model's name `mobilenetv2_1.00_224`."""
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, keras.layers.Dense(3, activation="softmax", name="predictions")(inner_in),
                        name="mobilenetv2_1.00_224")
    pixels = keras.Input((8,), name="pixels")
    model = keras.Model(pixels, inner(pixels))
    _, _, loaded = export(model, tmp_path_factory, "wrapped")
    for name in ("serving_default", "xai_model"):
        assert sorted(signature_io(loaded.signatures[name])[1]) == ["predictions"]


def test_sequential_text_model_and_raw_id_inputs_are_split(tmp_path_factory):
    """A Sequential with TextVectorization first, and ids fed straight to an
    Embedding(mask_zero=True) -> LSTM: both cut after the embedding, mask kept."""
    texts, labels = reviews(rows=32, seed=3)
    vectorize = keras.layers.TextVectorization(max_tokens=16, output_sequence_length=5)
    vectorize.adapt(texts[:, 0])
    sequential = keras.Sequential([keras.Input(shape=(1,), dtype="string", name="review"), vectorize,
                                   keras.layers.Embedding(16, 4), keras.layers.GlobalAveragePooling1D(),
                                   keras.layers.Dense(1, name="score")])
    _, _, loaded = export(sequential, tmp_path_factory, "sequential_text")
    assert sorted(signature_io(loaded.signatures["xai_model"])[0]) == ["review", "review_ids"]
    assert_contract_holds(loaded, sequential, {"review": texts[:6]}, "score")

    ids = keras.Input(shape=(6,), dtype="int32", name="word_ids")
    x = keras.layers.Embedding(20, 4, mask_zero=True)(ids)
    lstm = keras.Model(ids, keras.layers.Dense(1, name="score")(keras.layers.LSTM(3)(x)))
    _, _, loaded = export(lstm, tmp_path_factory, "lstm_ids")
    model_in = signature_io(loaded.signatures["xai_model"])[0]
    assert model_in["word_ids"].dtype == tf.float32 and model_in["word_ids"].shape.as_list() == [None, 6, 4]
    assert model_in["word_ids_mask"].dtype == tf.bool
    rows = {"word_ids": np.array([[3, 4, 0, 0, 0, 0], [5, 6, 7, 8, 9, 1]], "int32")}
    assert_contract_holds(loaded, lstm, rows, "score")


def test_embedding_baselines_are_the_trained_rows(tmp_path):
    """The OOV row is the baseline and occurs in training, so it moves: the
    export written after `fit` (metadata and the in-graph `xai_explain`) uses
    the trained row, not the row the exporter saw before training."""
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    words = rng.choice(np.array(["a", "b", "c", "d", "e", "f"]), (128, 1)).astype(object)
    labels = np.isin(words[:, 0], ["e", "f"]).astype("float32")
    lookup = keras.layers.StringLookup(max_tokens=4)  # OOV + 3 tokens: "e", "f"... map to OOV
    lookup.adapt(words)
    word = keras.Input((1,), dtype="string", name="word")
    embedding = keras.layers.Embedding(lookup.vocabulary_size(), 4, name="emb")
    score = keras.layers.Dense(1, name="score")(keras.layers.Flatten()(embedding(lookup(word))))
    model = keras.Model(word, score)
    model.compile(keras.optimizers.Adam(0.05), "mse")
    before = embedding.embeddings.numpy()[0].copy()
    callback = XaiExportCallback(str(tmp_path / "export"), explain_signature=True)
    model.fit(tf.constant(words), labels, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    trained = embedding.embeddings.numpy()[0]
    assert np.abs(trained - before).max() > 1e-3  # the fixture does move the row
    (baseline,) = callback.last_export.metadata["inputs"]["word"]["encodedBaselines"]
    np.testing.assert_allclose(baseline, trained, rtol=1e-6)
    report = validate(str(tmp_path / "export"))
    assert report["explain_signature"].status == "PASS", report["explain_signature"].reason
