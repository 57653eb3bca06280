"""The callback inside tf-keras (Keras 2) `fit`, checked on the reloaded export.

tf-keras is chosen by `TF_USE_LEGACY_KERAS=1` before TensorFlow is imported,
so the training runs once in a subprocess (legacy_keras_script.py); these
tests assert on what it reports and on the SavedModel it wrote.
"""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from subprocess_runs import run_script
from xai_callback.signatures.specs import signature_io

# Not imported here: this process runs Keras 3.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("tf_keras") is None,
    reason="tf-keras (the optional extra xai-callback[legacy]) is not installed",
)]

TIMEOUT_S = 300


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("legacy")
    result = run_script("legacy_keras_script.py", out_dir, timeout=TIMEOUT_S, TF_USE_LEGACY_KERAS=1)
    arrays = dict(np.load(os.path.join(out_dir, "arrays.npz")))
    return result, arrays


@pytest.fixture(scope="module")
def loaded(run):
    result, _ = run
    return tf.saved_model.load(result["export_path"])


def epoch_weights(arrays, epoch):
    keys = sorted((k for k in arrays if k.startswith(f"epoch{epoch}_w")), key=lambda k: int(k.split("_w")[1]))
    return [arrays[k] for k in keys]


def test_the_tf_keras_adapter_is_selected(run):
    result, _ = run
    assert result["callback_class"] == "xai_callback.callbacks.tf_keras.XaiExportCallback"
    assert result["is_tf_keras_callback"]
    assert result["provenance"]["keras_flavour"] == "tf_keras"


def test_auto_mode_maximises_val_auc_where_tf_keras_would_minimise(run):
    result, _ = run
    val_auc = result["history"]["val_auc"]
    # The data makes the peak neither the first nor the last epoch.
    assert 0 < int(np.argmax(val_auc)) < len(val_auc) - 1
    assert result["tf_keras_auto_minimises_val_auc"]  # tf-keras' own guess
    assert result["direction"] == "max"
    assert result["best_epoch"] == int(np.argmax(val_auc))
    training = result["provenance"]["training"]
    assert training["epoch"] == result["best_epoch"] + 1
    assert training["monitor_value"] == pytest.approx(max(val_auc))


def test_export_has_the_contract_signatures(loaded):
    assert sorted(loaded.signatures) == ["serving_default", "xai_model"]
    for name in ("serving_default", "xai_model"):
        inputs, outputs = signature_io(loaded.signatures[name])
        assert sorted(inputs) == ["feats"] and sorted(outputs) == ["score"]
        assert inputs["feats"].dtype == tf.float32
        assert inputs["feats"].shape.as_list() == [None, 4]


def test_export_holds_the_best_epoch_weights(run, loaded):
    result, arrays = run
    best = epoch_weights(arrays, result["best_epoch"])
    final = epoch_weights(arrays, len(result["history"]["val_auc"]) - 1)
    saved = [v.numpy() for v in loaded.variables]
    for weight in best:
        assert any(s.shape == weight.shape and np.array_equal(s, weight) for s in saved)
    assert not any(np.array_equal(s, final[0]) for s in saved if s.shape == final[0].shape)
    x = tf.constant(arrays["x_val"])
    for name in ("serving_default", "xai_model"):
        got = loaded.signatures[name](feats=x)["score"].numpy()
        np.testing.assert_allclose(got, arrays["best_predictions"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(arrays["best_predictions"], arrays["final_predictions"])


def test_tf_keras_serialization_round_trip(run):
    result, _ = run
    serialization = result["serialization"]
    assert serialization["registered_name"] == "xai_callback>XaiExportCallback"
    assert serialization["rebuilt_class"] == "xai_callback.callbacks.tf_keras.XaiExportCallback"
    assert serialization["rebuilt_same_config"] and serialization["by_name_same_config"]


def test_parameter_server_strategy_is_refused_before_training(run):
    result, _ = run
    refusal = result["parameter_server"]
    assert refusal["error_type"] == "NotImplementedError"
    assert "ParameterServerStrategy" in refusal["message"]
    assert "export_explainable_model" in refusal["message"]


# -- Tutorial models under tf-keras: split as in Keras 3, explained ------

@pytest.fixture(scope="module")
def tutorials(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("legacy_tutorials")
    return run_script("legacy_tutorials_script.py", out_dir, timeout=TIMEOUT_S, TF_USE_LEGACY_KERAS=1)


def case(tutorials, name):
    result = tutorials[name]
    assert "error" not in result, result.get("error")
    assert result["validate_ok"], result["validate"]
    return result


def assert_complete(result, atol=5e-3):
    """Sum of attributions == f(x) - f(baseline) from the SavedModel's own signatures."""
    for total, change, reported in result["completeness"]:
        assert abs(total - change) <= 0.05 * abs(change) + atol, (total, change)
        assert reported == pytest.approx(change, rel=1e-4, abs=1e-5)


def test_petfinder_is_split_at_its_one_hot_encodings_and_explained_with_ig(tutorials):
    """Was: refused for integrated gradients (int and string inputs of xai_model)."""
    result = case(tutorials, "petfinder_split")
    model_inputs = result["signatures"]["xai_model"]
    assert {k: v[0] for k, v in model_inputs.items()} == dict.fromkeys(
        ["Age", "Color1", "Fee", "PhotoAmt", "Type"], "float32")
    assert model_inputs["Type"][1] == [None, 3]  # [UNK], Cat, Dog
    assert result["signatures"]["xai_preprocess"]["Type"][0] == "string"
    assert result["features"] == ["Age", "Color1", "Fee", "PhotoAmt", "Type"]
    assert_complete(result)


def test_petfinder_whole_gets_baselines_its_lookups_accept(tutorials):
    """split=False and sampled Shapley. Was: the export was written, then explain
    refused it: "baselines_run: feature 'Type': baseline 0: ... expected strings"."""
    result = case(tutorials, "petfinder_whole")
    assert result["signatures"]["xai_model"]["Type"][0] == "string"
    assert result["baselines"]["Type"] == ["[UNK]"] and result["baselines"]["Color1"] == ["[UNK]"]
    assert result["baselines"]["Age"] == [-1]  # IntegerLookup's OOV token
    assert_complete(result, atol=1e-5)  # sampled Shapley is exact on every path


def test_a_lookup_outside_the_model_is_saved_without_track(tutorials):
    """Was, after training: "A signature uses a resource (e.g. a lookup table)
    that is not reachable from the model; pass it with track=[...]"."""
    result = case(tutorials, "outside_lookup")
    assert result["signatures"]["xai_preprocess"]["Type"][0] == "string"
    assert_complete(result)


def test_feature_space_as_preprocess_fn_is_split_per_raw_feature(tutorials):
    """Was: AttributeError "'str' object has no attribute 'name'" at train begin."""
    result = case(tutorials, "feature_space")
    assert sorted(result["signatures"]["xai_model"]) == ["age", "chol", "sex", "sex_X_age", "thal"]
    assert sorted(result["signatures"]["serving_default"]) == ["age", "chol", "sex", "thal"]
    assert_complete(result)
