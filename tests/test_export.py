"""The export engine on real, trained models, checked after reloading."""

import numpy as np
import pytest
import tensorflow as tf

from xai_callback import (
    ExplainableExporter,
    SignatureError,
    SignatureFunction,
    export_explainable_model,
    parsing_receiver,
    raw_receiver,
)
from xai_callback.publish import storage
from xai_callback.names import PROVENANCE_FILE, SAMPLE_FILE, extra_path
from xai_callback.export.receivers import serialize_examples
from xai_callback.signatures.tensor_io import decode_tensor_dict
from xai_callback.signatures.specs import signature_io

from models import (
    CSV_SIGNATURE,
    N_FEATURES,
    csv_lines,
    parse_csv,
    split_csv,
    split_csv_dict,
    tabular_data,
    trained_mlp,
    two_head_model,
)


@pytest.fixture(scope="module")
def trained():
    return trained_mlp(epochs=2)


@pytest.fixture(scope="module")
def default_export(trained, tmp_path_factory):
    model, _ = trained
    path = str(tmp_path_factory.mktemp("exports") / "default")
    return export_explainable_model(model, path), path


@pytest.fixture(scope="module")
def csv_export(trained, tmp_path_factory):
    model, x = trained
    path = str(tmp_path_factory.mktemp("exports") / "csv")
    result = export_explainable_model(
        model, path, preprocess_fn=parse_csv, sample={"csv": csv_lines(x[:5])}
    )
    return result, path


def io_keys(signature):
    inputs, outputs = signature_io(signature)
    return sorted(inputs), sorted(outputs)


def test_default_export_has_serving_and_xai_model(trained, default_export):
    model, x = trained
    _, path = default_export
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == ["serving_default", "xai_model"]
    for name in ("serving_default", "xai_model"):
        assert io_keys(loaded.signatures[name]) == (["feats"], ["score"])
    inputs, _ = signature_io(loaded.signatures["xai_model"])
    assert inputs["feats"].dtype == tf.float32
    assert inputs["feats"].shape.as_list() == [None, N_FEATURES]
    live = model.predict(x[:16], verbose=0)
    for name in ("serving_default", "xai_model"):
        got = loaded.signatures[name](feats=tf.constant(x[:16]))["score"].numpy()
        np.testing.assert_allclose(got, live, rtol=1e-5, atol=1e-6)


def test_preprocess_export_composes_exactly(trained, csv_export):
    model, x = trained
    _, path = csv_export
    loaded = tf.saved_model.load(path)
    sigs = loaded.signatures
    assert sorted(sigs) == ["serving_default", "xai_model", "xai_preprocess"]
    assert io_keys(sigs["xai_preprocess"]) == (["csv"], ["feats"])
    assert io_keys(sigs["serving_default"]) == (["csv"], ["score"])
    _, produced = signature_io(sigs["xai_preprocess"])
    expected, _ = signature_io(sigs["xai_model"])
    assert produced["feats"].dtype == expected["feats"].dtype
    assert produced["feats"].shape.as_list() == expected["feats"].shape.as_list()
    lines = tf.constant(csv_lines(x[20:30]))
    served = sigs["serving_default"](csv=lines)["score"].numpy()
    composed = sigs["xai_model"](**sigs["xai_preprocess"](csv=lines))["score"].numpy()
    np.testing.assert_allclose(served, composed, rtol=1e-6)
    np.testing.assert_allclose(served, model.predict(x[20:30], verbose=0), rtol=1e-4, atol=1e-5)


def test_provenance_and_sample_are_written(csv_export):
    result, path = csv_export
    record = storage.read_json(extra_path(path, PROVENANCE_FILE))
    assert record["package"] == "xai-callback"
    assert record["tensorflow_version"] == tf.__version__
    assert record["signatures"] == ["serving_default", "xai_model", "xai_preprocess"]
    assert record["explained_signature"] == "xai_model"
    assert record["keras_version"]
    sample = decode_tensor_dict(storage.read_json(extra_path(path, SAMPLE_FILE)))
    assert sample["csv"].dtype == tf.string and sample["csv"].shape == (5,)
    assert result.provenance == record


def test_describe_lists_keys_dtypes_and_shapes(csv_export):
    result, _ = csv_export
    text = result.describe()
    assert "xai_preprocess(csv: string[None]) -> {feats: float32[None,4]}" in text
    assert "xai_model(feats: float32[None,4]) -> {score: float32[None,1]}" in text


def test_function_forms_are_accepted(trained, tmp_path):
    model, x = trained
    spec = [tf.TensorSpec([None], tf.string, name="csv")]
    forms = {
        "tf_function": parse_csv,
        "concrete": parse_csv.get_concrete_function(),
        "tuple": (parse_csv.python_function, spec),
        "signature_function": SignatureFunction(parse_csv.python_function, spec),
    }
    for name, form in forms.items():
        path = str(tmp_path / name)
        export_explainable_model(model, path, preprocess_fn=form, sample={"csv": csv_lines(x[:3])})
        assert io_keys(tf.saved_model.load(path).signatures["xai_preprocess"]) == (["csv"], ["feats"])


def test_custom_serving_and_extra_signatures(trained, tmp_path):
    model, x = trained

    @tf.function(input_signature=[tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")])
    def serve(feats):
        score = model(feats, training=False)
        return {"score": score, "label": tf.cast(score > 0.5, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")])
    def embed(feats):
        return {"mean": tf.reduce_mean(feats, axis=1)}

    path = str(tmp_path / "custom")
    export_explainable_model(model, path, serving_fn=serve, extra_signatures={"embed": embed})
    sigs = tf.saved_model.load(path).signatures
    assert sorted(sigs) == ["embed", "serving_default", "xai_model"]
    assert io_keys(sigs["serving_default"]) == (["feats"], ["label", "score"])
    out = sigs["embed"](feats=tf.constant(x[:4]))["mean"].numpy()
    np.testing.assert_allclose(out, x[:4].mean(axis=1), rtol=1e-6)


@pytest.mark.parametrize("name", ["serving_default", "xai_model", "xai_preprocess"])
def test_reserved_extra_signature_names_are_refused(trained, name):
    model, _ = trained
    with pytest.raises(ValueError, match=f"reserved name '{name}'"):
        ExplainableExporter(model, extra_signatures={name: parse_csv})


def test_multi_output_keeps_all_outputs_and_checks_output_key(tmp_path):
    model = two_head_model()
    x, _ = tabular_data(rows=32)
    model.fit(x, {"price": x[:, :1], "kind": np.zeros(32, "int32")}, epochs=1, verbose=0)
    path = str(tmp_path / "multi")
    result = export_explainable_model(model, path, output_key="price")
    sigs = tf.saved_model.load(path).signatures
    assert io_keys(sigs["xai_model"]) == (["feats"], ["kind", "price"])
    out = sigs["xai_model"](feats=tf.constant(x[:3]))
    live = model.predict(x[:3], verbose=0)
    np.testing.assert_allclose(out["price"].numpy(), live["price"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["kind"].numpy(), live["kind"], rtol=1e-5, atol=1e-6)
    assert result.provenance["output_key"] == "price"
    with pytest.raises(SignatureError, match=r"output_key='cost'.*\['kind', 'price'\]"):
        ExplainableExporter(model, output_key="cost").prepare()


def test_tf_function_without_input_signature_is_refused(trained):
    model, _ = trained

    @tf.function
    def no_signature(csv):
        return parse_csv(csv)

    with pytest.raises(SignatureError, match="preprocess_fn.*no input signature"):
        ExplainableExporter(model, preprocess_fn=no_signature).prepare()


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda f: {"feats": tf.cast(f, tf.float64)}, r"'feats' is float64\[None,4\].*float32\[None,4\]"),
        (lambda f: {"feats": f[:, :2]}, r"'feats' is float32\[None,2\].*float32\[None,4\]"),
        (lambda f: {"features": f}, r"missing: \['feats'\], unexpected: \['features'\]"),
    ],
)
def test_preprocess_output_mismatch_fails_before_writing(trained, tmp_path, returned, message):
    model, _ = trained

    def preprocess(csv):
        return returned(parse_csv(csv)["feats"])

    exporter = ExplainableExporter(
        model, preprocess_fn=(preprocess, [tf.TensorSpec([None], tf.string, name="csv")])
    )
    with pytest.raises(SignatureError, match=message):
        exporter.export(str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_nested_outputs_are_refused(trained):
    model, _ = trained

    def nested(feats):
        return {"outer": {"inner": feats}}

    spec = [tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")]
    with pytest.raises(SignatureError, match="nested structure under key 'outer'"):
        ExplainableExporter(model, serving_fn=(nested, spec)).prepare()


def test_serving_that_differs_from_model_is_refused_before_writing(trained, tmp_path):
    model, x = trained

    def off_by_one(feats):
        return {"score": model(feats, training=False) + 1.0}

    spec = [tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")]
    path = tmp_path / "bad"
    # Checked on the live functions in prepare(): a callback refuses it before training.
    with pytest.raises(SignatureError, match="serving_fn .*'serving_default' output 'score' differs"):
        export_explainable_model(model, str(path), serving_fn=(off_by_one, spec))
    # Nothing half-verified is left where readers look, nor staging debris.
    assert not path.exists()
    assert not [p for p in tmp_path.iterdir() if "xai-staging" in p.name]


def test_string_input_without_sample_asks_for_one(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="string input 'csv'.*sample="):
        ExplainableExporter(model, preprocess_fn=parse_csv).prepare()


def test_unbuilt_model_is_refused():
    import keras

    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(SignatureError, match="has no defined inputs"):
        ExplainableExporter(model).prepare()


def test_foreign_non_empty_directory_is_not_replaced(trained, tmp_path):
    model, _ = trained
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=str(tmp_path)):
        export_explainable_model(model, str(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_export_replaces_previous_export(trained, tmp_path):
    model, x = trained
    path = str(tmp_path / "again")
    export_explainable_model(model, path)
    export_explainable_model(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]


def test_raw_receiver_names_inputs_like_the_model(trained, tmp_path):
    model, x = trained
    path = str(tmp_path / "raw")
    export_explainable_model(model, path, preprocess_fn=raw_receiver(model))
    sigs = tf.saved_model.load(path).signatures
    assert io_keys(sigs["serving_default"]) == (["feats"], ["score"])
    assert io_keys(sigs["xai_preprocess"]) == (["feats"], ["feats"])


def test_parsing_receiver_reads_tf_examples(trained, tmp_path):
    model, x = trained
    receiver = parsing_receiver({"feats": tf.io.FixedLenFeature([N_FEATURES], tf.float32)})
    examples = serialize_examples({"feats": x[:6]})
    path = str(tmp_path / "parsing")
    export_explainable_model(model, path, preprocess_fn=receiver, sample={"examples": examples})
    sigs = tf.saved_model.load(path).signatures
    assert io_keys(sigs["serving_default"]) == (["examples"], ["score"])
    got = sigs["serving_default"](examples=tf.constant(examples))["score"].numpy()
    np.testing.assert_allclose(got, model.predict(x[:6], verbose=0), rtol=1e-5, atol=1e-6)


def test_parsing_receiver_rejects_varlen_features():
    with pytest.raises(TypeError, match=r"feature_spec\['feats'\].*VarLenFeature"):
        parsing_receiver({"feats": tf.io.VarLenFeature(tf.float32)})


def test_ram_filesystem_export(trained):
    model, x = trained
    path = "ram://xai_callback_tests/export"
    export_explainable_model(model, path)
    loaded = tf.saved_model.load(path)
    got = loaded.signatures["xai_model"](feats=tf.constant(x[:2]))["score"].numpy()
    np.testing.assert_allclose(got, model.predict(x[:2], verbose=0), rtol=1e-5, atol=1e-6)
    assert storage.exists(extra_path(path, PROVENANCE_FILE))


def test_keras_input_names_that_are_not_signature_keys_are_made_valid(tmp_path):
    import keras

    a = keras.Input((2,), name="monthly charges")
    b = keras.Input((1,), name="x-1")
    out = keras.layers.Dense(1, name="score")(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"monthly charges": a, "x-1": b}, out)
    path = str(tmp_path / "names")
    export_explainable_model(model, path)
    sigs = tf.saved_model.load(path).signatures
    assert io_keys(sigs["xai_model"]) == (["monthly_charges", "x_1"], ["score"])
    x = {"monthly charges": np.ones((2, 2), "float32"), "x-1": np.zeros((2, 1), "float32")}
    got = sigs["xai_model"](monthly_charges=tf.constant(x["monthly charges"]), x_1=tf.constant(x["x-1"]))
    np.testing.assert_allclose(got["score"].numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_user_input_name_that_is_not_a_signature_key_is_refused(trained):
    model, _ = trained
    spec = [tf.TensorSpec([None], tf.string, name="csv line")]
    with pytest.raises(SignatureError, match=r"input name 'csv line'.*'csv_line'"):
        ExplainableExporter(model, preprocess_fn=(parse_csv.python_function, spec)).prepare()


def test_sequential_built_without_input_exports(tmp_path):
    import keras

    model = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(1, name="y")])
    model.build((None, N_FEATURES))
    path = str(tmp_path / "seq")
    export_explainable_model(model, path)
    x = np.ones((2, N_FEATURES), "float32")
    sigs = tf.saved_model.load(path).signatures
    (key,) = signature_io(sigs["xai_model"])[0]
    (out,) = sigs["xai_model"](**{key: tf.constant(x)}).values()
    np.testing.assert_allclose(out.numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_input_name_starting_with_underscore_gets_a_valid_key(tmp_path):
    import keras

    inputs = keras.Input((2,), name="_x")
    model = keras.Model(inputs, keras.layers.Dense(1, name="y")(inputs))
    path = str(tmp_path / "underscore")
    export_explainable_model(model, path)
    assert io_keys(tf.saved_model.load(path).signatures["xai_model"]) == (["input__x"], ["y"])


def test_custom_serving_with_its_own_inputs_beside_a_preprocess(trained, tmp_path):
    model, x = trained
    raw = [tf.TensorSpec([None, N_FEATURES], tf.float64, name="raw")]

    def to_float(raw):
        return {"feats": tf.cast(raw, tf.float32)}

    def serve_csv(csv):
        return {"score": model(split_csv(csv)["feats"], training=False)}

    path = str(tmp_path / "mixed")
    export_explainable_model(
        model, path, preprocess_fn=(to_float, raw), serving_fn=(serve_csv, CSV_SIGNATURE),
        sample={"csv": csv_lines(x[:3])},
    )
    sigs = tf.saved_model.load(path).signatures
    assert io_keys(sigs["serving_default"]) == (["csv"], ["score"])
    assert io_keys(sigs["xai_preprocess"]) == (["raw"], ["feats"])


def test_sample_of_the_wrong_shape_is_named_before_export(trained):
    model, _ = trained
    with pytest.raises(ValueError, match=r"sample=.*'feats'.*float32\[None,4\].*batch shape \[1, 2\]"):
        ExplainableExporter(model, sample={"feats": [[1.0, 2.0]]}).prepare()


@pytest.mark.parametrize("signature", ["positional", "dict", "kwargs"])
def test_signature_functions_survive_a_config_round_trip(trained, tmp_path, signature):
    from xai_callback.callbacks.config import resolve_functions, serialize_options

    model, x = trained
    spec = CSV_SIGNATURE[0]
    forms = {
        "positional": SignatureFunction(split_csv, [spec]),
        "dict": SignatureFunction(split_csv_dict, [{"csv": spec}]),
        "kwargs": SignatureFunction(split_csv, {"csv": spec}),
    }
    options = resolve_functions(serialize_options({"preprocess_fn": forms[signature]}))
    path = str(tmp_path / signature)
    export_explainable_model(model, path, sample={"csv": csv_lines(x[:2])}, **options)
    assert io_keys(tf.saved_model.load(path).signatures["xai_preprocess"]) == (["csv"], ["feats"])
