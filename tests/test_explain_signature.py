"""The `xai_explain` signature: in-graph explanations any SavedModel host can serve."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import split_exports as se
from explain_checks import quiet
from subprocess_runs import parse_result, script_command
from xai_callback import (
    XRAI,
    ExplanationSpec,
    Feature,
    IntegratedGradients,
    Output,
    SampledShapley,
    SmoothGrad,
    SignatureFunction,
    XaiExportCallback,
    export_explainable_model,
    validate,
)
from xai_callback.publish import storage
from xai_callback.explain import explain, load_explainer
from xai_callback.explain.errors import MethodNotSupportedError
from xai_callback.explain.instances import instances_to_tensors
from xai_callback.explain.signature import explain_signature_function, signature_outputs
from xai_callback.names import (
    FEATURES_FILE,
    SAMPLE_FILE,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    extra_path,
)
from xai_callback.signatures.functions import compose

pytestmark = pytest.mark.slow  # whole trainings and splits of tutorial models: the full suite runs them, `make test-fast` does not

CLASSES = ["low", "mid", "high"]
PETS = [{"Type": "Cat", "Age": 3, "Breed": "Husky", "Fee": 100.0, "PhotoAmt": 2.0},
        {"Type": "Dog", "Age": 12, "Breed": "Tabby", "Fee": 0.0, "PhotoAmt": 5.0},
        {"Type": "Dog", "Age": 1, "Breed": "Poodle", "Fee": 20.0, "PhotoAmt": 1.0}]


def classifier(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,), name="feats")
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probs")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(seed).normal(size=(96, 4)).astype(np.float32)
    model.fit(x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 1), epochs=1, verbose=0)
    return model, x


def assert_signature_equals_python(path, instances, rtol=1e-5):
    """xai_explain on `instances` == `xai_callback.explain` on them, within `rtol`."""
    explainer = load_explainer(path)
    inputs = instances_to_tensors(instances, explainer.instance_specs)
    got = tf.saved_model.load(path).signatures["xai_explain"](**inputs)
    expected = signature_outputs(quiet(explainer.explain, inputs))
    for key, want in expected.items():
        if want.dtype == object:
            assert got[key].numpy().astype(object).astype(bytes).tolist() == want.astype(bytes).tolist()
            continue
        scale = np.max(np.abs(expected["instance_output"])) + np.max(np.abs(expected["baseline_output"]))
        np.testing.assert_allclose(got[key].numpy(), want, rtol=rtol, atol=rtol * scale, err_msg=key)
    return got, expected


@pytest.fixture(scope="module")
def classifier_export(tmp_path_factory):
    model, x = classifier()
    spec = ExplanationSpec(output=Output("probs", index_display_name_mapping=CLASSES), top_k=2,
                           features=[Feature("feats", baselines=[np.zeros(4), np.full(4, 0.5)])])
    path = str(tmp_path_factory.mktemp("classifier") / "1")
    export_explainable_model(model, path, explanation_spec=spec, explain_signature=True)
    return path, x


@pytest.fixture(scope="module")
def shapley_export(tmp_path_factory):
    return se.petfinder_split_export(tmp_path_factory.mktemp("shapley") / "1", wide=True,
                                     method=SampledShapley(path_count=8), explain_signature=True)[0]


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    """A token export written by hand with the builder, features known when it is built."""
    path = str(tmp_path_factory.mktemp("text") / "1")
    source = se.text_split_export(os.path.join(path + "_source"), epochs=1)[0]
    loaded = tf.saved_model.load(source)
    preprocess = SignatureFunction(loaded.signatures["xai_preprocess"], name="preprocess_fn")
    model_fn = SignatureFunction(loaded.signatures["xai_model"], name="model_fn")
    serving = compose(preprocess, model_fn)
    read = lambda name: storage.read_json(extra_path(source, name))  # noqa: E731
    metadata, parameters, features = read(VERTEX_METADATA_FILE), read(VERTEX_PARAMETERS_FILE), read(FEATURES_FILE)
    explainer = explain_signature_function(serving, model_fn, metadata, parameters, preprocess, features)
    root = tf.Module()
    root.source = loaded
    tf.saved_model.save(root, path, signatures={
        "serving_default": serving.concrete_function(), "xai_model": model_fn.concrete_function(),
        "xai_preprocess": preprocess.concrete_function(), "xai_explain": explainer.concrete_function()})
    storage.copytree(extra_path(source, ""), extra_path(path, ""))
    return path


# --- equal to the Python explainer ---------------------------------------------------

def test_integrated_gradients_top_k_with_class_names(classifier_export):
    path, x = classifier_export
    got, expected = assert_signature_equals_python(path, {"feats": x[:5]})
    assert got["attribution_feats"].shape == (5, 2, 4) and got["output_index"].shape == (5, 2, 1)
    names = got["output_display_name"].numpy().astype(str)
    assert names.tolist() == [[CLASSES[i] for i in row] for row in got["output_index"].numpy()[..., 0]]
    np.testing.assert_allclose(got["prediction_probs"], tf.saved_model.load(path).signatures[
        "serving_default"](feats=tf.constant(x[:5]))["probs"], rtol=1e-6)


def test_sampled_shapley_per_raw_feature(shapley_export):
    got, _ = assert_signature_equals_python(shapley_export, PETS)
    assert {k for k in got if k.startswith("attribution_")} == {
        "attribution_Type", "attribution_Age", "attribution_Breed", "attribution_Fee",
        "attribution_PhotoAmt", "attribution_Type_X_Age"}
    assert got["attribution_Type"].shape == (3, 1)


def test_smoothgrad(tmp_path):
    model, x = classifier(seed=1)
    spec = ExplanationSpec(method=IntegratedGradients(step_count=20, smooth_grad=SmoothGrad(
        noise_sigma=0.2, noisy_sample_count=4)))
    path = str(tmp_path / "1")
    export_explainable_model(model, path, explanation_spec=spec, explain_signature=True)
    assert_signature_equals_python(path, {"feats": x[:3]})


def test_tokens(text_export):
    got, _ = assert_signature_equals_python(text_export, ["the movie was great", "bad"])
    assert got["tokens_text"].numpy()[1].astype(str).tolist() == ["bad"] + [""] * 7
    assert np.all(got["attribution_text"].numpy()[1, 0, 1:] == 0.0)  # padding


# --- any host, TensorFlow only --------------------------------------------------------

def tf_only_env():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def test_runs_in_a_process_with_tensorflow_only(shapley_export):
    inputs = {k: [[p[k]] for p in PETS] for k in PETS[0]}
    done = subprocess.run(script_command("tf_only_explain.py", shapley_export, json.dumps(inputs)),
                          env=tf_only_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = parse_result(done.stdout, "tf_only_explain.py")
    assert result["modules"] == []  # xai_callback never imported
    expected = signature_outputs(quiet(explain, shapley_export, PETS))
    for key, want in expected.items():  # JSON (TF Serving's encoding) == the Python explainer
        np.testing.assert_allclose(result["outputs"][key], want, rtol=1e-5, atol=1e-7, err_msg=key)


def test_saved_model_cli_run(classifier_export, text_export):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    for path, exprs in ((classifier_export[0], "feats=[[0.1,0.2,0.3,0.4]]"),
                        (text_export, 'text=[["the movie was great"]]')):
        done = subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def",
                               "xai_explain", "--input_exprs", exprs],
                              env=tf_only_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Result for output key approximation_error" in done.stdout
    assert "Result for output key tokens_text" in done.stdout


# --- validate, callback, bad settings ------------------------------------------------

def test_validate_compares_the_signature_with_the_explainer(classifier_export, tmp_path):
    report = validate(classifier_export[0])
    assert report.ok and report["explain_signature"].status == "PASS"
    changed = str(tmp_path / "changed")
    storage.copytree(classifier_export[0], changed)
    metadata = storage.read_json(extra_path(changed, VERTEX_METADATA_FILE))
    metadata["inputs"]["feats"]["inputBaselines"] = [[1.0, 1.0, 1.0, 1.0]]
    storage.write_json(extra_path(changed, VERTEX_METADATA_FILE), metadata)
    result = validate(changed)["explain_signature"]
    assert result.status == "FAIL"
    assert "'xai_explain' output" in result.reason and "re-export" in result.reason


def test_export_without_sample_skips_the_comparison(classifier_export, tmp_path):
    bare = str(tmp_path / "bare")
    storage.copytree(classifier_export[0], bare)
    storage.rmtree(extra_path(bare, SAMPLE_FILE))
    assert validate(bare)["explain_signature"].status == "SKIP"


def test_callback_writes_the_signature(tmp_path):
    model, x = classifier(seed=2)
    callback = XaiExportCallback(str(tmp_path / "export"), explain_signature=True)
    model.fit(x, (x[:, 0] > 0).astype(int), epochs=1, verbose=0, callbacks=[callback])
    signatures = tf.saved_model.load(str(tmp_path / "export")).signatures
    assert "xai_explain" in signatures
    assert XaiExportCallback.from_config(callback.get_config()).get_config()["explain_signature"] is True


def test_bad_settings_are_refused_before_writing(tmp_path):
    model, _ = classifier()
    with pytest.raises(TypeError, match="explain_signature.*'yes'"):
        export_explainable_model(model, str(tmp_path / "a"), explain_signature="yes")
    fn = tf.function(lambda feats: {"y": feats}, input_signature=[tf.TensorSpec([None, 4], name="feats")])
    with pytest.raises(ValueError, match="reserved name 'xai_explain'"):
        export_explainable_model(model, str(tmp_path / "b"), extra_signatures={"xai_explain": fn})
    keras.utils.set_random_seed(0)
    image = keras.Input((8, 8, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(image))
    images = keras.Model(image, keras.layers.Dense(2, name="scores")(pooled))
    spec = ExplanationSpec(features=[Feature("image", modality="image")], method=XRAI(step_count=5))
    with pytest.raises(MethodNotSupportedError, match="xraiAttribution"):
        export_explainable_model(images, str(tmp_path / "c"), explanation_spec=spec,
                                 explain_signature=True)
    assert not os.path.exists(tmp_path / "c")
