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
