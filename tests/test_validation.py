"""`validate` and the `validate` / `inspect` commands on real SavedModels.

Most exports are saved by hand with the seed's recipe
(`tf.saved_model.save(module, dir, signatures={...})`), as a user who never
used this package would; broken variants overwrite the metadata files of a
copy with `storage.write_json`.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import export_explainable_model
from xai_callback.publish import storage
from xai_callback.cli import main
from xai_callback.errors import ExportVerificationError, SpecError
from xai_callback.explain import explain
from xai_callback.names import (
    PROVENANCE_FILE,
    SAMPLE_FILE,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    extra_path,
)
from xai_callback.contract.probe import probe_gradients
from xai_callback.spec import ExplanationSpec, Output
from xai_callback.contract.probe import zero_gradient_message
from xai_callback.signatures.tensor_io import encode_tensor_dict
from xai_callback.contract.validation import validate
from xai_callback.contract.checks import check_serving_identity
from xai_callback.signatures.specs import signature_io

from models import N_FEATURES, trained_mlp

SHIFT = 0.5  # what the seed exports' preprocess subtracts
RAW = tf.TensorSpec([None, N_FEATURES], tf.float32, name="raw")
FEATS = tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")
RULES = ["signature_set", "xai_model_present", "preprocess_feeds_model", "serving_identity",
         "metadata_format", "metadata_names", "parameter_ranges", "one_method", "baselines",
         "differentiability", "baselines_run", "routes", "explanations", "explain_signature"]


def seed_signatures(model, serving_shift=SHIFT, preprocess_dtype=tf.float32,
                    cut_gradient=False):
    """serving_default, xai_preprocess, xai_model as in the seed page."""

    @tf.function(input_signature=[RAW])
    def preprocess(raw):
        return {"feats": tf.cast(raw - SHIFT, preprocess_dtype)}

    @tf.function(input_signature=[FEATS])
    def xai_model(feats):
        if cut_gradient:
            feats = tf.stop_gradient(feats)
        return {"score": model(feats)}

    @tf.function(input_signature=[RAW])
    def serving(raw):
        return {"score": model(raw - serving_shift)}

    return {"serving_default": serving, "xai_preprocess": preprocess, "xai_model": xai_model}


def save_by_hand(path, model, signatures, sample=None, metadata=None, parameters=None):
    module = tf.Module()
    module.model = model  # tracks the weights the functions use
    tf.saved_model.save(module, str(path), signatures=signatures)
    write_extras(path, sample=sample, metadata=metadata, parameters=parameters)
    return str(path)


def write_extras(path, sample=None, metadata=None, parameters=None):
    storage.makedirs(extra_path(path, ""))
    for name, value in ((SAMPLE_FILE, sample), (VERTEX_METADATA_FILE, metadata),
                        (VERTEX_PARAMETERS_FILE, parameters)):
        if value is not None:
            storage.write_json(extra_path(path, name), value)


def explained_io(path, name="xai_model"):
    return signature_io(tf.saved_model.load(str(path)).signatures[name])


def statuses(report):
    return {r.rule: r.status for r in report.results}


@pytest.fixture(scope="module")
def trained():
    return trained_mlp(epochs=1)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tmp_path_factory.mktemp("validation")


@pytest.fixture(scope="module")
def seed_export(trained, exports):
    """A correct hand-saved export: three signatures, sample, Vertex files."""
    model, x = trained
    path = save_by_hand(exports / "seed", model, seed_signatures(model),
                        sample=encode_tensor_dict({"raw": x[:4]}))
    metadata, parameters = ExplanationSpec(
        output=Output("score", index_display_name_mapping=["positive"])
    ).build(*explained_io(path))
    write_extras(path, metadata=metadata, parameters=parameters)
    return path


@pytest.fixture(scope="module")
def seed_files(seed_export):
    return (storage.read_json(extra_path(seed_export, VERTEX_METADATA_FILE)),
            storage.read_json(extra_path(seed_export, VERTEX_PARAMETERS_FILE)))


@pytest.fixture
def broken_copy(seed_export, tmp_path):
    """Copies the good export and overwrites its metadata / parameters files."""

    def make(metadata=None, parameters=None):
        path = str(tmp_path / "broken")
        storage.copytree(seed_export, path)
        write_extras(path, metadata=metadata, parameters=parameters)
        return path

    return make


@pytest.fixture(scope="module")
def keras_saved_by_hand(trained, exports):
    """`tf.saved_model.save(keras_model, dir)`: one signature, no metadata files."""
    model, _ = trained
    path = str(exports / "plain")
    tf.saved_model.save(model, path)
    return path


@pytest.fixture(scope="module")
def token_export(exports):
    """A Keras model on int32 token ids (an Embedding), saved by hand."""
    keras.utils.set_random_seed(0)
    ids = keras.Input((3,), dtype="int32", name="ids")
    hidden = keras.layers.Flatten()(keras.layers.Embedding(10, 4)(ids))
    model = keras.Model(ids, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile("adam", "binary_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.integers(0, 10, (64, 3)), rng.integers(0, 2, (64, 1)), epochs=1, verbose=0)
    path = str(exports / "tokens")
    tf.saved_model.save(model, path)
    return path


# --- good exports -----------------------------------------------------------

def test_seed_recipe_export_passes_every_rule(seed_export):
    report = validate(seed_export)
    assert [r.rule for r in report.results] == RULES
    assert report.ok, str(report)
    assert not [r.rule for r in report.results if r.skipped]
    assert "through xai_preprocess" in report["differentiability"].reason
    assert "serving_default == xai_model o xai_preprocess" in report["serving_identity"].reason
    report.raise_for_failures()  # no failure, no exception


def test_keras_model_saved_by_hand_is_checked_against_defaults(keras_saved_by_hand, trained):
    report = validate(keras_saved_by_hand)
    assert report.ok, str(report)
    assert f"no {VERTEX_METADATA_FILE} in the export" in report["metadata_format"].reason
    assert "default parameters" in report["parameter_ranges"].reason
    assert report["serving_identity"].skipped
    assert "generated batch" in report["differentiability"].reason

    (key,) = explained_io(keras_saved_by_hand, "serving_default")[0]
    report = validate(keras_saved_by_hand, sample={key: trained[1][:3]})
    assert report["serving_identity"].status == "PASS"
    assert "the given sample" in report["differentiability"].reason


def test_export_written_by_the_engine_validates(trained, exports):
    model, _ = trained
    path = str(exports / "engine")
    export_explainable_model(model, path)
    report = validate(path)
    assert report.ok, str(report)
    assert f"assets.extra/{VERTEX_METADATA_FILE}" in report["metadata_format"].reason


def test_ram_filesystem_export_validates(seed_export):
    path = "ram://validation/seed"
    storage.copytree(seed_export, path)
    try:
        assert validate(path).ok
    finally:
        storage.rmtree(path)


# --- broken signatures ------------------------------------------------------

@pytest.mark.slow
def test_two_signatures_without_xai_model_fail(trained, exports):
    model, _ = trained
    signatures = seed_signatures(model)
    path = save_by_hand(exports / "no_xai_model", model, {
        "serving_default": signatures["serving_default"], "scores": signatures["xai_model"]})
    report = validate(path)
    assert statuses(report)["signature_set"] == "PASS"
    assert statuses(report)["xai_model_present"] == "FAIL"
    assert "['scores', 'serving_default']" in report["xai_model_present"].reason
    with pytest.raises(ExportVerificationError, match="xai_model_present"):
        report.raise_for_failures()


def test_keras_model_export_has_two_signatures_and_needs_xai_model(trained, exports):
    model, _ = trained
    path = str(exports / "keras_export")
    model.export(path, verbose=False)
    report = validate(path)
    assert statuses(report)["xai_model_present"] == "FAIL"
    assert "'serve'" in report["xai_model_present"].reason


def test_preprocess_output_mismatch_fails(trained, exports):
    model, x = trained
    path = save_by_hand(exports / "float64", model,
                        seed_signatures(model, preprocess_dtype=tf.float64),
                        sample=encode_tensor_dict({"raw": x[:4]}))
    report = validate(path)
    assert statuses(report)["preprocess_feeds_model"] == "FAIL"
    assert "float64[None,4]" in report["preprocess_feeds_model"].reason
    assert "float32[None,4]" in report["preprocess_feeds_model"].reason
    assert report["serving_identity"].skipped


def test_serving_that_differs_from_model_after_preprocess_fails(trained, exports):
    model, x = trained
    path = save_by_hand(exports / "drift", model, seed_signatures(model, serving_shift=0.0),
                        sample=encode_tensor_dict({"raw": x[:4]}))
    report = validate(path)
    assert statuses(report)["serving_identity"] == "FAIL"
    assert "output 'score' differs" in report["serving_identity"].reason


# --- broken metadata and parameters -----------------------------------------

def test_wrong_input_tensor_name_fails(broken_copy, seed_files):
    metadata, _ = seed_files
    metadata = json.loads(json.dumps(metadata))
    metadata["inputs"]["feats"]["inputTensorName"] = "feats:0"
    report = validate(broken_copy(metadata=metadata))
    assert statuses(report)["metadata_names"] == "FAIL"
    assert "'feats:0'" in report["metadata_names"].reason
    assert "['feats']" in report["metadata_names"].reason
    assert report["differentiability"].skipped


def test_wrong_output_tensor_name_fails(broken_copy, seed_files):
    metadata, _ = seed_files
    metadata = {**metadata, "outputs": {"score": {"outputTensorName": "output_0"}}}
    report = validate(broken_copy(metadata=metadata))
    assert statuses(report)["metadata_names"] == "FAIL"
    assert "'output_0'" in report["metadata_names"].reason
    assert "['score']" in report["metadata_names"].reason


def test_two_methods_fail(broken_copy):
    report = validate(broken_copy(parameters={
        "integratedGradientsAttribution": {"stepCount": 50},
        "sampledShapleyAttribution": {"pathCount": 10}}))
    assert statuses(report)["one_method"] == "FAIL"
    assert "['integratedGradientsAttribution', 'sampledShapleyAttribution']" in (
        report["one_method"].reason)
    assert statuses(report)["parameter_ranges"] == "PASS"


@pytest.mark.parametrize("parameters, fragment", [
    ({"integratedGradientsAttribution": {"stepCount": 101}}, "`step_count` got 101"),
    ({"sampledShapleyAttribution": {"pathCount": 0}}, "`path_count` got 0"),
    ({"integratedGradientsAttribution": {"stepCount": 50, "smoothGradConfig": {
        "noiseSigma": 0.1, "noisySampleCount": 51}}}, "`noisy_sample_count` got 51"),
    ({"integratedGradientsAttribution": {"stepCount": 50}, "topK": 0}, "`topK` got 0"),
], ids=["step_count", "path_count", "noisy_sample_count", "top_k"])
def test_out_of_range_counts_fail(broken_copy, parameters, fragment):
    report = validate(broken_copy(parameters=parameters))
    assert statuses(report)["parameter_ranges"] == "FAIL"
    assert fragment in report["parameter_ranges"].reason
    assert statuses(report)["one_method"] == "PASS"


def test_eleven_baselines_fail(broken_copy, seed_files):
    metadata, _ = seed_files
    metadata = json.loads(json.dumps(metadata))
    metadata["inputs"]["feats"]["inputBaselines"] = [0.0] * 11
    report = validate(broken_copy(metadata=metadata))
    assert statuses(report)["metadata_format"] == "PASS"
    assert statuses(report)["baselines"] == "FAIL"
    assert "11 baselines" in report["baselines"].reason


def test_wrong_baseline_shape_fails(broken_copy, seed_files):
    metadata, _ = seed_files
    metadata = json.loads(json.dumps(metadata))
    metadata["inputs"]["feats"]["inputBaselines"] = [[0.0, 0.0, 0.0]]
    report = validate(broken_copy(metadata=metadata))
    assert statuses(report)["baselines"] == "FAIL"
    assert "shape [3]" in report["baselines"].reason
    assert "float32[None,4]" in report["baselines"].reason


def test_legacy_dialect_in_the_vertex_file_fails_format(broken_copy, seed_files):
    from xai_callback.spec import to_legacy_metadata

    report = validate(broken_copy(metadata=to_legacy_metadata(seed_files[0])))
    assert statuses(report)["metadata_format"] == "FAIL"
    assert "'framework'" in report["metadata_format"].reason
    for rule in ("metadata_names", "baselines", "differentiability"):
        assert report[rule].skipped


def test_unreadable_metadata_file_fails_format(broken_copy):
    path = broken_copy()
    storage.write_text(extra_path(path, VERTEX_METADATA_FILE), "{not json")
    report = validate(path)
    assert statuses(report)["metadata_format"] == "FAIL"
    assert "is not valid JSON" in report["metadata_format"].reason


# --- differentiability ------------------------------------------------------

def test_integer_input_with_integrated_gradients_fails(token_export):
    report = validate(token_export)
    assert statuses(report)["differentiability"] == "FAIL"
    reason = report["differentiability"].reason
    assert "int32[None,3]" in reason and "SampledShapley()" in reason


def test_integer_input_with_sampled_shapley_passes(token_export, tmp_path):
    path = str(tmp_path / "tokens")
    storage.copytree(token_export, path)
    write_extras(path, parameters={"sampledShapleyAttribution": {"pathCount": 10}})
    report = validate(path)
    assert report.ok, str(report)
    assert "takes no gradients" in report["differentiability"].reason


def test_stop_gradient_path_fails_the_probe(trained, exports):
    model, x = trained
    path = save_by_hand(exports / "stop_gradient", model,
                        seed_signatures(model, cut_gradient=True),
                        sample=encode_tensor_dict({"raw": x[:4]}))
    report = validate(path)
    assert statuses(report)["differentiability"] == "FAIL"
    assert "feature 'feats': `gradient` got None" in report["differentiability"].reason


def test_explaining_a_thresholded_output_fails_the_probe(trained, exports):
    model, _ = trained

    @tf.function(input_signature=[FEATS])
    def labelled(feats):
        score = model(feats)
        return {"score": score, "label": tf.cast(score > 0.5, tf.int64)}

    path = save_by_hand(exports / "label", model,
                        {"serving_default": labelled, "xai_model": labelled})
    metadata, parameters = ExplanationSpec(output="label").build(*explained_io(path))
    write_extras(path, metadata=metadata, parameters=parameters)
    report = validate(path)
    assert statuses(report)["differentiability"] == "FAIL"
    assert "'label'" in report["differentiability"].reason
    assert "int64" in report["differentiability"].reason


def test_probe_gradients_reports_gradient_size_per_feature(seed_export, seed_files, trained):
    loaded = tf.saved_model.load(seed_export)  # keep: signatures need its variables
    signatures = loaded.signatures
    sample = signatures["xai_preprocess"](raw=tf.constant(trained[1][:4]))
    largest = probe_gradients(signatures["xai_model"], *seed_files, sample)
    assert list(largest) == ["feats"] and largest["feats"] > 0
    with pytest.raises(SpecError, match="feature 'feats'.*'feats'.*sample inputs"):
        probe_gradients(signatures["xai_model"], *seed_files, {"other": sample["feats"]})


# --- report and commands ----------------------------------------------------

def test_report_dict_and_text(broken_copy):
    report = validate(broken_copy(parameters={"xraiAttribution": {"stepCount": 500}}))
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["ok"] is False
    assert [r["rule"] for r in as_dict["rules"]] == RULES
    failed = {r["rule"]: r for r in as_dict["rules"] if r["status"] == "FAIL"}
    assert "parameter_ranges" in failed and "500" in failed["parameter_ranges"]["reason"]
    text = str(report)
    assert "NOT explanation-ready" in text
    assert "FAIL  parameter_ranges" in text and "PASS  signature_set" in text


def test_cli_validate_exit_codes_and_output(seed_export, broken_copy, tmp_path, capsys):
    assert main(["validate", seed_export]) == 0
    assert f"explanation-ready, {len(RULES)} rules pass\n" in capsys.readouterr().out

    broken = broken_copy(parameters={"sampledShapleyAttribution": {"pathCount": 99}})
    assert main(["validate", broken, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "99" in json.dumps(out)

    assert main(["validate", str(tmp_path / "missing")]) == 2
    assert "No such export directory" in capsys.readouterr().err
    (tmp_path / "not_a_model").mkdir()
    assert main(["validate", str(tmp_path / "not_a_model")]) == 2
    assert "is not a SavedModel directory" in capsys.readouterr().err


def test_cli_inspect_prints_signatures_metadata_and_provenance(trained, exports, capsys):
    path = str(exports / "engine_inspect")
    export_explainable_model(trained[0], path, legacy_metadata=True)
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "Signatures (the service explains 'xai_model'):" in out
    assert "float32[None,4]" in out
    assert '"integratedGradientsAttribution"' in out
    assert '"inputTensorName"' in out and '"input_tensor_name"' in out
    assert "Provenance (" in out
    assert main(["inspect", path + "_missing"]) == 2


@pytest.mark.slow
def test_command_line_entry_point_exits_1_on_a_broken_export(broken_copy):
    broken = broken_copy(parameters={"integratedGradientsAttribution": {"stepCount": 0}})
    done = subprocess.run([sys.executable, "-m", "xai_callback.cli", "validate", broken],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "FAIL  parameter_ranges" in done.stdout and "got 0" in done.stdout


def test_probe_reports_an_all_zero_gradient_as_zero_not_as_an_error():
    # Zero (not None) gradients come from the weights: the probe reports them,
    # callers warn; only a missing gradient is an error.
    @tf.function(input_signature=[FEATS])
    def ignores_input(feats):
        return {"score": tf.reduce_sum(feats * 0.0, axis=1, keepdims=True) + 1.0}

    fn = ignores_input.get_concrete_function()
    metadata, parameters = ExplanationSpec().build(*signature_io(fn))
    assert probe_gradients(fn, metadata, parameters, {"feats": tf.ones([2, N_FEATURES])}) == {
        "feats": 0.0}
    message = zero_gradient_message({"feats": 0.0}, metadata)
    assert "['feats']" in message and "'score'" in message and "property of the weights" in message
    assert zero_gradient_message({"feats": 0.5}, metadata) is None


def test_probe_follows_the_path_from_the_baseline():
    # Saturated at the sample (sigmoid(50) is 1.0 in float32, its gradient 0),
    # not on the way from the zero baseline: integrated gradients see a gradient.
    @tf.function(input_signature=[FEATS])
    def confident(feats):
        return {"score": tf.sigmoid(20.0 * tf.reduce_sum(feats, axis=1, keepdims=True) - 30.0)}

    fn = confident.get_concrete_function()
    assert float(fn(feats=tf.ones([1, N_FEATURES]))["score"][0, 0]) == 1.0
    metadata, parameters = ExplanationSpec().build(*signature_io(fn))
    largest = probe_gradients(fn, metadata, parameters, {"feats": tf.ones([2, N_FEATURES])})
    assert largest["feats"] > 0.1


def test_saturated_export_passes_differentiability_with_a_note(trained, exports):
    model, x = trained

    @tf.function(input_signature=[FEATS])
    def saturated(feats):
        return {"score": tf.sigmoid(model(feats) * 0.0 + 60.0)}  # 1.0 in float32 everywhere

    path = save_by_hand(exports / "saturated", model,
                        {"serving_default": saturated, "xai_model": saturated},
                        sample=encode_tensor_dict({"feats": x[:4]}))
    report = validate(path)
    assert report.ok, str(report)
    reason = report["differentiability"].reason
    assert "is all zero" in reason and "['feats']" in reason and "property of the weights" in reason


# --- tolerances ---------------------------------------------------------------

def drifting_serving(model, factor):
    """serving_default = xai_model * factor: differs by a relative `factor - 1`."""
    return (lambda feats: {"score": model(feats) * factor}, [FEATS])


def test_validate_uses_the_tolerances_the_export_was_verified_with(trained, exports):
    # Passed its own check with the default rtol=1e-4; validate (and explain)
    # used to check with rtol=1e-5 and refused it.
    model, x = trained
    path = str(exports / "drift_default")
    export_explainable_model(model, path, serving_fn=drifting_serving(model, 1 + 8e-5))
    record = storage.read_json(extra_path(path, PROVENANCE_FILE))
    assert record["verified_with"] == {"rtol": 1e-4, "atol": 1e-5}
    report = validate(path)
    assert report.ok, str(report)
    assert "rtol=0.0001, atol=1e-05, as the export was verified" in report["serving_identity"].reason
    response = explain(path, [{"feats": x[0].tolist()}], step_count=4)
    assert len(response.explanations) == 1

    path = str(exports / "drift_loose")
    export_explainable_model(model, path, serving_fn=drifting_serving(model, 1.004), rtol=1e-2)
    assert validate(path).ok


def test_validate_without_recorded_tolerances_uses_the_exporter_defaults(trained, exports):
    model, x = trained
    path = str(exports / "drift_foreign")
    drift = drifting_serving(model, 1.004)
    save_by_hand(path, model, {"serving_default": tf.function(drift[0], input_signature=drift[1]),
                               "xai_model": seed_signatures(model)["xai_model"]},
                 sample=encode_tensor_dict({"feats": x[:4]}))
    report = validate(path)
    assert statuses(report)["serving_identity"] == "FAIL"
    assert "rtol=0.0001, atol=1e-05" in report["serving_identity"].reason


@pytest.mark.parametrize("dtype, step", [(tf.bfloat16, 2.0 ** -7), (tf.float16, 2.0 ** -10)])
def test_low_precision_outputs_compare_within_a_few_epsilons(dtype, step):
    value = tf.constant([[0.5], [1.5]], dtype)

    def returning(output):
        return tf.function(lambda feats: {"score": output}, input_signature=[FEATS]
                           ).get_concrete_function()

    def signatures(offset):
        served = tf.cast(tf.cast(value, tf.float32) + offset, dtype)
        return {"serving_default": returning(served), "xai_model": returning(value)}

    sample = {"feats": tf.zeros([2, N_FEATURES])}
    check_serving_identity(signatures(step), sample)  # one unit in the last place at 1.0
    with pytest.raises(ExportVerificationError, match=f"rtol={4 * step}"):
        check_serving_identity(signatures(0.25), sample)


# --- fields of the Vertex v1 messages ---------------------------------------

def test_every_vertex_v1_field_validates(broken_copy, seed_files):
    metadata, _ = seed_files
    metadata = json.loads(json.dumps(metadata))
    metadata["featureAttributionsSchemaUri"] = "gs://bucket/attributions.yaml"
    metadata["latentSpaceSource"] = "score"
    feature = metadata["inputs"]["feats"]
    feature.update(encoding="IDENTITY", modality="numeric", groupName="all",
                   featureValueDomain={"minValue": -3, "maxValue": 3, "originalMean": 0,
                                       "originalStddev": 1},
                   indicesTensorName="feats", denseShapeTensorName="feats")
    report = validate(broken_copy(metadata=metadata, parameters={
        "examples": {"neighborCount": 5, "presets": {"query": "FAST", "modality": "TABULAR"},
                     "exampleGcsSource": {"dataFormat": "JSONL",
                                          "gcsSource": {"uris": ["gs://bucket/x.jsonl"]}}},
        "topK": 1, "outputIndices": [0]}))
    assert report.ok, str(report)
    assert "Examples takes no gradients" in report["differentiability"].reason


def test_vertex_field_of_the_wrong_type_fails(broken_copy, seed_files):
    metadata, _ = seed_files
    metadata = {**metadata, "latentSpaceSource": 3}
    report = validate(broken_copy(metadata=metadata, parameters={
        "examples": {"presets": {"modality": "AUDIO"}}}))
    assert statuses(report)["metadata_format"] == "FAIL"
    assert "`latentSpaceSource` got 3" in report["metadata_format"].reason
    assert statuses(report)["parameter_ranges"] == "FAIL"
    assert "'AUDIO'" in report["parameter_ranges"].reason


def test_smoothgrad_without_a_sigma_fails_parameter_ranges(broken_copy):
    report = validate(broken_copy(parameters={"integratedGradientsAttribution": {
        "stepCount": 50, "smoothGradConfig": {"noisySampleCount": 3}}}))
    assert statuses(report)["parameter_ranges"] == "FAIL"
    assert "`noise_sigma` got None" in report["parameter_ranges"].reason
