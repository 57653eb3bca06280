"""The tutorial models, each trained one epoch through the callback and
explained from the reloaded export; completeness is checked from the
SavedModel's own signatures (`signature_checks`), not from the explainer's
`approximationError`. Keras 3 on TensorFlow (tf-keras: test_legacy_keras.py;
JAX/PyTorch: test_backends.py).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import SignatureError, XaiExportCallback, validate
from xai_callback.explain import explain
from xai_callback.names import FEATURES_FILE, extra_path
from xai_callback.publish import storage
from xai_callback.signatures.keras_models import model_signature_function
from xai_callback.signatures.specs import signature_io

import tutorial_models
from explain_checks import quiet
from fit_helpers import BatchCounter
from signature_checks import assert_complete_from_signatures

pytestmark = pytest.mark.slow  # whole trainings of tutorial models: the full suite runs them, `make test-fast` does not


def fit_and_export(model, data, tmp_path_factory, name, **options):
    """One epoch with the callback; `(export path, reloaded SavedModel)`."""
    path = str(tmp_path_factory.mktemp("tutorials") / name)
    callback = XaiExportCallback(path, **options)
    if isinstance(data, tf.data.Dataset):
        model.fit(data, epochs=1, verbose=0, callbacks=[callback])
    else:
        model.fit(*data, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    return callback.last_export.path, tf.saved_model.load(callback.last_export.path)


def model_inputs(loaded):
    return {k: (s.dtype, s.shape.as_list()) for k, s in signature_io(loaded.signatures["xai_model"])[0].items()}


def assert_validated(path):
    report = validate(path)
    assert report.ok, str(report)


# -- 1. dict outputs through the split ------------------------------------------

@pytest.fixture(scope="module")
def tickets(tmp_path_factory):
    model, data, instances = tutorial_models.support_tickets()
    path, loaded = fit_and_export(model, data, tmp_path_factory, "tickets", output_key="department")
    return model, data, instances, path, loaded


def test_dict_outputs_keep_their_names_through_the_split(tickets):
    """Was: ExportVerificationError after training, 'department' has shape (4, 4)
    but the composed xai_model(**xai_preprocess(x)) has shape (4, 1)."""
    model, (x, _), _, path, loaded = tickets
    outputs = signature_io(loaded.signatures["xai_model"])[1]
    assert {k: s.shape.as_list() for k, s in outputs.items()} == {
        "department": [None, 4], "priority": [None, 1]}
    raw = {"title": tf.constant(x["title"][:4]), "tags": tf.constant(x["tags"][:4])}
    composed = loaded.signatures["xai_model"](**loaded.signatures["xai_preprocess"](**raw))
    live = model(raw, training=False)
    for name in ("department", "priority"):
        np.testing.assert_allclose(composed[name].numpy(), keras.ops.convert_to_numpy(live[name]),
                                   rtol=1e-5, atol=1e-6)
    assert model_inputs(loaded) == {"tags": (tf.float32, [None, 6]), "title": (tf.float32, [None, 4])}


def test_dict_output_model_is_explained_for_the_chosen_output(tickets):
    _, _, instances, path, _ = tickets
    assert_validated(path)
    response = quiet(explain, path, instances)
    assert {a.output_name for e in response.explanations for a in e.attributions} == {"department"}
    assert_complete_from_signatures(path, instances, response)


# -- 2. keras.io "Text classification from scratch" ------------------------------

@pytest.fixture(scope="module")
def text_from_scratch():
    return tutorial_models.text_from_scratch()


def test_text_vectorization_given_as_preprocess_fn_is_wrapped_and_split(text_from_scratch, tmp_path_factory):
    """Was: SignatureError "`preprocess_fn` has no input signature" naming no way out."""
    model, vectorize_layer, _, vectorized_ds, _, instances = text_from_scratch
    path, loaded = fit_and_export(model, vectorized_ds, tmp_path_factory, "text_layer",
                                  preprocess_fn=vectorize_layer)
    assert {k: s.dtype for k, s in signature_io(loaded.signatures["serving_default"])[0].items()} == {
        "text": tf.string}
    length = tutorial_models.SEQUENCE_LENGTH
    assert model_inputs(loaded) == {"text": (tf.float32, [None, length, 8]),
                                    "text_ids": (tf.int64, [None, length])}
    assert_validated(path)
    texts = [{"text": [t]} for t in instances]
    response = quiet(explain, path, texts)
    assert_complete_from_signatures(path, texts, response)
    tokens = response.explanations[0].tokens["text"]
    assert [t for t in tokens if t] == instances[0].split()[:length]


def test_end_to_end_model_sides_agree_on_the_sequence_length(text_from_scratch, tmp_path_factory):
    """Was: SignatureError 'xai_preprocess (automatic split)' output is
    float32[None,12,8] but 'xai_model' input is float32[None,None,8]."""
    _, _, end_to_end_model, _, raw_ds, instances = text_from_scratch
    path, loaded = fit_and_export(end_to_end_model, raw_ds, tmp_path_factory, "text_end_to_end")
    (key,) = [k for k, s in signature_io(loaded.signatures["serving_default"])[0].items()]
    assert key == end_to_end_model.layers[0].name  # an unnamed Input: its layer's name
    assert model_inputs(loaded)[key] == (tf.float32, [None, tutorial_models.SEQUENCE_LENGTH, 8])
    assert_validated(path)
    texts = [{key: [t]} for t in instances]
    assert_complete_from_signatures(path, texts, quiet(explain, path, texts))


def test_an_unwrappable_keras_layer_as_preprocess_fn_says_how_to_wrap_it(tmp_path):
    model, data, _ = tutorial_models.discretized_price()
    layer = keras.layers.Rescaling(0.5, name="halve")
    counter = BatchCounter()
    with pytest.raises(SignatureError) as info:
        model.fit(*data, epochs=1, verbose=0,
                  callbacks=[counter, XaiExportCallback(str(tmp_path / "e"), preprocess_fn=layer)])
    assert counter.batches == 0
    assert "'halve'" in str(info.value) and "keras.Model(raw, layer(raw))" in str(info.value)
    assert _documented_stage("keras-layer-as-preprocess-fn") == "train begin"


# -- 3. Discretization -> CategoryEncoding -------------------------------------

def test_discretized_float_is_validated_and_explained(tmp_path_factory):
    """Was: validate exits 1 and explain refuses: "baseline 0.0 cannot be
    processed by 'xai_preprocess' (Input to reshape is a tensor with 5 values ...)"."""
    model, data, instances = tutorial_models.discretized_price()
    path, loaded = fit_and_export(model, data, tmp_path_factory, "discretized")
    assert model_inputs(loaded) == {"price": (tf.float32, [None, 5])}
    features = storage.read_json(extra_path(path, FEATURES_FILE))["features"]
    assert features["price"]["kind"] == "indicator"
    assert_validated(path)
    response = quiet(explain, path, instances)
    assert_complete_from_signatures(path, instances, response)
    # The one bin the price falls in carries the whole change.
    assert all(a.feature_attributions["price"] != 0 for e in response.explanations for a in e.attributions)


# -- 6. float token ids into an Embedding (functional-API guide) ---------------

@pytest.fixture(scope="module")
def guide_model(tmp_path_factory):
    model, data, instances = tutorial_models.multi_input_tickets(recurrent=True)
    path, loaded = fit_and_export(model, data, tmp_path_factory, "guide", output_key="department")
    return path, loaded, instances


def test_float_ids_into_an_embedding_are_split_there(guide_model):
    """Was refused before training: "`gradient` got None ... use SampledShapley()"."""
    path, loaded, _ = guide_model
    assert model_inputs(loaded) == {
        "title": (tf.float32, [None, None, 8]), "title_ids": (tf.int64, [None, None]),
        "body": (tf.float32, [None, None, 8]), "body_ids": (tf.int64, [None, None]),
        "tags": (tf.float32, [None, 6])}
    features = storage.read_json(extra_path(path, FEATURES_FILE))["features"]
    assert features["title"] == {"kind": "tokens", "raw_inputs": ["title"], "ids_key": "title_ids"}
    assert_validated(path)


def test_guide_model_with_lstms_is_explained(guide_model):
    path, _, instances = guide_model
    assert_complete_from_signatures(path, instances, quiet(explain, path, instances))


def test_float_ids_into_an_embedding_are_explained_per_token(tmp_path_factory):
    model, data, instances = tutorial_models.multi_input_tickets(recurrent=False)
    path, _ = fit_and_export(model, data, tmp_path_factory, "guide_pooled", output_key="department")
    assert_validated(path)
    response = quiet(explain, path, instances)
    assert_complete_from_signatures(path, instances, response)
    attribution = response.explanations[0].attributions[0]
    assert np.shape(attribution.feature_attributions["title"]) == (10,)  # one per token


# -- 8. unnamed Inputs ----------------------------------------------------------

def test_unnamed_inputs_are_keyed_by_their_input_layer():
    """Was: `encoded_features`, for images and raw text too."""
    image_model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                                 classes=3)
    image_layer = image_model.layers[0].name
    assert list(model_signature_function(image_model).input_specs) == [image_layer]
    raw = keras.Input(shape=(1,), dtype="string")
    hashed = keras.layers.Hashing(num_bins=4, output_mode="one_hot")(raw)
    text_model = keras.Model(raw, keras.layers.Dense(1)(hashed))
    text_layer = text_model.layers[0].name
    assert text_layer.startswith("input_layer") and text_layer != image_layer
    assert list(model_signature_function(text_model).input_specs) == [text_layer]


# -- 9. TF "Basic regression": a Sequential without an Input -------------------

def _documented_stage(case_id):
    """The "when" column of docs/bad_inputs.md for `case_id`."""
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "bad_inputs.md")).read()
    (row,) = [line for line in doc.splitlines() if line.startswith(f"| `{case_id}` |")]
    return row.split("|")[4].strip()


def test_sequential_without_input_is_refused_before_the_first_batch_with_its_shape(tmp_path):
    model, data = tutorial_models.basic_regression()
    counter = BatchCounter()
    with pytest.raises(SignatureError) as info:
        model.fit(*data, validation_split=0.2, epochs=1, verbose=0,
                  callbacks=[counter, XaiExportCallback(str(tmp_path / "e"))])
    assert counter.batches == 0
    message = str(info.value)
    assert "keras.Input(shape=(5,))" in message and "model.build((None, 5))" in message
    assert _documented_stage("sequential-without-input") == "train begin"
    assert not (tmp_path / "e").exists()


# -- a lookup adapted outside the model, read by the user's preprocess function --

def test_a_lookup_outside_the_model_is_saved_without_track(tmp_path):
    """Was, after training: "A signature uses a resource (e.g. a lookup table)
    that is not reachable from the model; pass it with track=[...]"."""
    from xai_callback import export_explainable_model

    types = np.array([["Cat"], ["Dog"], ["Dog"], ["Cat"]], object)
    lookup = keras.layers.StringLookup()
    lookup.adapt(types)
    one_hot = keras.layers.CategoryEncoding(num_tokens=lookup.vocabulary_size())

    def preprocess(Type):
        return {"Type": one_hot(lookup(Type))}

    kind = keras.Input((lookup.vocabulary_size(),), name="Type")
    model = keras.Model(kind, keras.layers.Dense(1, name="score")(kind))
    result = export_explainable_model(
        model, str(tmp_path / "e"), sample={"Type": types},
        preprocess_fn=(preprocess, [tf.TensorSpec([None, 1], tf.string, name="Type")]))
    loaded = tf.saved_model.load(result.path)
    encoded = loaded.signatures["xai_preprocess"](Type=tf.constant(types))["Type"].numpy()
    np.testing.assert_array_equal(encoded, keras.ops.convert_to_numpy(one_hot(lookup(types))))
