"""The callback inside Keras 3 `fit` on JAX and PyTorch, checked on the reloaded export.

The backend is fixed when Keras is imported, so each backend trains once in its
own subprocess (backend_script.py, `KERAS_BACKEND` set, hard timeout); both run
at the same time. These tests assert on what the scripts report and on the
SavedModels they wrote, loaded here in a TensorFlow-only process.
"""

import concurrent.futures
import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from subprocess_runs import run_script
from xai_callback.explain import explain
from xai_callback.signatures.specs import signature_io

BACKENDS = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
TIMEOUT_S = 800  # Each script loads TensorFlow, its backend and one or two TF subprocesses.

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not BACKENDS, reason="neither jax nor torch is installed (extras xai-callback[jax] / [torch])")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`{backend: (RESULT, arrays)}`, the backends' scripts run concurrently."""

    def run(backend):
        out_dir = tmp_path_factory.mktemp(backend)
        result = run_script("backend_script.py", out_dir, timeout=TIMEOUT_S, KERAS_BACKEND=backend)
        return result, dict(np.load(os.path.join(out_dir, "arrays.npz")))

    with concurrent.futures.ThreadPoolExecutor(len(BACKENDS)) as pool:
        return dict(zip(BACKENDS, pool.map(run, BACKENDS)))


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def run(runs, backend):
    return runs[backend]


@pytest.fixture
def loaded(run):
    return tf.saved_model.load(run[0]["export_path"])


def epoch_weights(arrays, epoch):
    keys = sorted((k for k in arrays if k.startswith(f"epoch{epoch}_w")), key=lambda k: int(k.split("_w")[1]))
    return [arrays[k] for k in keys]


def xla_platforms(export_dir):
    """Platforms of every XlaCallModule op in the SavedModel (empty: an ordinary graph)."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    found = set()
    for function in proto.meta_graphs[0].graph_def.library.function:
        for node in function.node_def:
            if node.op == "XlaCallModule":
                found.add(tuple(p.decode() for p in node.attr["platforms"].list.s))
    return found


def test_the_script_ran_on_its_backend(run, backend):
    result, _ = run
    assert result["backend"] == backend
    assert result["provenance"]["keras_backend"] == backend


def test_export_has_the_contract_signatures(loaded):
    assert sorted(loaded.signatures) == ["serving_default", "xai_model", "xai_preprocess"]
    model_in, model_out = signature_io(loaded.signatures["xai_model"])
    assert {k: (s.dtype, s.shape.as_list()) for k, s in model_in.items()} == {"feats": (tf.float32, [None, 4])}
    assert sorted(model_out) == ["score"]
    serving_in, _ = signature_io(loaded.signatures["serving_default"])
    assert {k: s.dtype for k, s in serving_in.items()} == {"csv": tf.string}


def test_export_holds_the_best_epoch_weights(run, loaded):
    result, arrays = run
    val_loss = result["history"]["val_loss"]
    best = int(np.argmin(val_loss))
    assert result["best_epoch"] == best < len(val_loss) - 1  # the data makes the last epoch worse
    assert result["provenance"]["training"]["epoch"] == best + 1
    saved = [v.numpy() for v in loaded.variables]
    for weight in epoch_weights(arrays, best):  # BatchNormalization statistics included
        assert any(s.shape == weight.shape and np.array_equal(s, weight) for s in saved)
    final = epoch_weights(arrays, len(val_loss) - 1)
    assert not any(np.array_equal(s, final[0]) for s in saved if s.shape == final[0].shape)
    got = loaded.signatures["xai_model"](feats=tf.constant(arrays["x_val"]))["score"].numpy()
    np.testing.assert_allclose(got, arrays["best_predictions"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(arrays["best_predictions"], arrays["final_predictions"])


def test_serving_parses_csv_and_equals_the_live_model(run, loaded):
    result, arrays = run
    lines = tf.constant(result["lines"])
    served = loaded.signatures["serving_default"](csv=lines)["score"].numpy()
    np.testing.assert_allclose(served, arrays["best_predictions"][: len(result["lines"])], rtol=1e-5, atol=1e-6)
    parsed = loaded.signatures["xai_preprocess"](csv=lines)["feats"].numpy()
    np.testing.assert_allclose(parsed, arrays["x_val"][: len(result["lines"])], rtol=1e-6)


def test_integrated_gradients_of_the_export_equal_the_live_models(run):
    """IG through the export's TensorFlow gradients vs jax.grad / torch autograd."""
    result, arrays = run
    response = explain(result["export_path"], [{"csv": line} for line in result["lines"]])
    got = np.stack([e.attributions[0].feature_attributions["feats"] for e in response.explanations])
    live = arrays["live_ig"]
    assert np.abs(live).max() > 1e-3  # a real signal, not zeros on both sides
    np.testing.assert_allclose(got, live, rtol=0, atol=1e-4)


def test_unconvertible_model_is_refused_before_training_naming_the_layer(run, backend):
    result, _ = run
    cases = {"jax": [("refused", "host_tanh")], "torch": [("refused", "torch_tanh"), ("refused_main", "main_scale")]}
    for key, layer in cases[backend]:
        refused = result[key]
        assert refused["error_type"] == "ModelConversionError", refused
        assert refused["layer"] == layer
        assert f"layer '{layer}'" in refused["message"]
        assert refused["iterations"] == 0  # on_train_begin: no batch ran
        assert not refused["export_exists"]
    if backend == "torch":
        assert "defined in __main__" in result["refused_main"]["message"]
    else:  # both routes were tried
        assert "jax2tf" in result["refused"]["message"] and "TensorFlow" in result["refused"]["message"]


def test_exports_raise_no_deprecation_warnings(run, backend):
    """jax2tf's argument notices are avoided, NumPy 2's copy-keyword notices on
    Keras variables hidden where our code causes them."""
    result, _ = run
    assert [w for w in result["export_warnings"] if "Deprecation" in w] == []
    assert [w for w in result["fit_warnings"] if "jax" in w or "xai_callback" in w] == []
    if backend == "jax":
        assert [w for w in result["fit_warnings"] if "Deprecation" in w] == []
    # On torch, Keras' own fit (logs, predict) raises NumPy's notice with or
    # without the callback (keras/src/backend/torch/core.py convert_to_numpy).


def test_export_outside_fit(run):
    result, arrays = run
    loaded = tf.saved_model.load(result["standalone_export"])
    got = loaded.signatures["serving_default"](feats=tf.constant(arrays["x_val"]))["score"].numpy()
    np.testing.assert_allclose(got, arrays["best_predictions"], rtol=1e-5, atol=1e-6)


def test_placement_leaves_no_staging_directories(run):
    result, _ = run
    assert result["export_dir_listing"] == ["arrays.npz", "export"]


@pytest.mark.parametrize("backend", ["jax"] if "jax" in BACKENDS else [], indirect=True)
def test_jax_exports_through_jax2tf_for_cpu_and_gpu(run):
    result, _ = run
    assert xla_platforms(result["export_path"]) == {("CPU", "CUDA")}
    assert xla_platforms(result["standalone_export"]) == {("CPU", "CUDA")}
    # A layer defined in __main__ needs no import in process.
    main_layer = tf.saved_model.load(result["main_layer_export"])
    assert sorted(main_layer.signatures) == ["serving_default", "xai_model"]


@pytest.mark.parametrize("backend", ["jax"] if "jax" in BACKENDS else [], indirect=True)
def test_jax_falls_back_to_the_tensorflow_subprocess_with_a_warning(run):
    result, _ = run
    assert xla_platforms(result["fallback_export"]) == set()  # an ordinary TensorFlow graph
    loaded = tf.saved_model.load(result["fallback_export"])
    x = tf.constant(result["fallback_x"], tf.float32)
    np.testing.assert_allclose(loaded.signatures["xai_model"](feats=x)["score"].numpy(),
                               result["fallback_predictions"], rtol=1e-5, atol=1e-6)
    fallback = [w for w in result["export_warnings"] if "goes through TensorFlow subprocess" in w]
    assert len(fallback) == 1 and "lax.while_loop" in fallback[0]


@pytest.mark.parametrize("backend", ["jax"] if "jax" in BACKENDS else [], indirect=True)
def test_unknown_jax_route_is_named(run):
    result, _ = run
    refused = result["unknown_route"]
    assert refused["error_type"] == "ModelConversionError"
    assert "XAI_CALLBACK_JAX_ROUTE='fast'" in refused["message"] and "tf_subprocess" in refused["message"]
