"""Every private Keras fact the callbacks read (callbacks/keras_internals.py),
checked per Keras version: Keras 3 in this process, tf-keras in a subprocess
(TF_USE_LEGACY_KERAS=1 must be set before TensorFlow is imported).

At run time the readers are best effort (None when an internal is gone); these
tests are where a Keras release that moves one fails loudly.
"""

import importlib.util

import keras
import numpy as np
import pytest

from xai_callback.callbacks import keras_internals
from xai_callback.callbacks.monitor import direction_of

from models import mlp, tabular_data
from subprocess_runs import run_script


@pytest.fixture(scope="module")
def data():
    return tabular_data(rows=32)


class Probe(keras.callbacks.Callback):
    """Reads the internals where the export callback does: at train begin and epoch end."""

    def on_train_begin(self, logs=None):
        self.fit = keras_internals.fit_locals(self.model)
        self.metrics_at_begin = sorted(name for name, _ in keras_internals.compiled_metrics(self.model))

    def on_epoch_end(self, epoch, logs=None):
        self.ema = keras_internals.ema_weights(self.model)
        self.raw = self.model.get_weights()


def test_fit_locals_of_keras3_fit(data):
    probe = Probe()
    mlp().fit(*data, epochs=3, initial_epoch=1, validation_split=0.25, validation_freq=2, verbose=0,
              callbacks=[probe])
    found = probe.fit
    assert found is not None, "Keras 3 fit's frame was not found on the stack"
    assert any(c is probe for c in found["callbacks"])  # the CallbackList, unwrapped
    assert found["has_validation_data"] is True  # validation_split applied before on_train_begin
    assert (found["validation_freq"], found["epochs"], found["initial_epoch"]) == (2, 3, 1)
    without = Probe()
    mlp().fit(*data, epochs=1, verbose=0, callbacks=[without])
    assert without.fit["has_validation_data"] is False


def test_fit_locals_is_none_outside_fit():
    assert keras_internals.fit_locals(mlp()) is None


def my_metric(y_true, y_pred):
    return keras.ops.mean(y_pred)


def test_compiled_metrics_before_and_after_keras3_builds_them(data):
    model = mlp()
    model.compile("adam", "binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="roc"), "mse", my_metric])
    probe = Probe()
    assert not keras_internals.metrics_built(model)
    model.fit(*data, epochs=1, verbose=0, callbacks=[probe])
    assert probe.metrics_at_begin == ["mse", "my_metric", "roc"]  # declared, before the first batch
    assert keras_internals.metrics_built(model)
    built = dict(keras_internals.compiled_metrics(model))
    assert {"roc", "mse", "my_metric", "loss"} <= set(built)


def test_metric_direction_is_what_keras_own_monitor_reads(data):
    model = mlp()
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="roc"), "mse", my_metric])
    model.fit(*data, epochs=1, verbose=0)
    built = dict(keras_internals.compiled_metrics(model))
    assert keras_internals.metric_direction(built["roc"]) == "max"
    assert keras_internals.metric_direction(built["mse"]) == "min"
    assert keras_internals.metric_direction(built["my_metric"]) is None
    for name, ours in (("val_roc", "max"), ("mse", "min")):
        stopper = keras.callbacks.EarlyStopping(monitor=name)
        stopper.set_model(model)
        stopper._set_monitor_op()  # Keras' own decision, from the same attribute
        assert (stopper.monitor_op is keras.ops.greater) == (ours == "max")
        assert direction_of(name, model) == ours
    with pytest.raises(ValueError, match="my_metric"):
        stopper = keras.callbacks.EarlyStopping(monitor="my_metric")
        stopper.set_model(model)
        stopper._set_monitor_op()


def test_ema_weights_are_what_keras3_writes_at_the_end_of_fit(data):
    model = mlp(seed=3)
    model.compile(keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.9), "binary_crossentropy")
    probe = Probe()
    model.fit(*data, epochs=2, batch_size=8, verbose=0, callbacks=[probe])
    assert probe.ema is not None, "the Keras 3 optimizer's EMA internals were not found"
    for averaged, final in zip(probe.ema, model.get_weights()):
        np.testing.assert_allclose(averaged, final, rtol=1e-6, atol=1e-7)
    assert not all(np.allclose(a, r) for a, r in zip(probe.ema, probe.raw))  # averages, not the raw weights
    plain = mlp()
    plain.fit(*data, epochs=1, verbose=0)
    assert keras_internals.ema_weights(plain) is None


def test_print_msg_prints_like_keras(capsys):
    keras_internals.print_msg("printed by print_msg")
    assert "printed by print_msg" in capsys.readouterr().out


def test_keras3_models_are_keras3_trainers():
    assert isinstance(mlp(), keras_internals.keras3_trainer_class())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tf_keras") is None,
                    reason="tf-keras (the optional extra xai-callback[legacy]) is not installed")
def test_every_internal_under_tf_keras():
    result = run_script("keras_internals_script.py", timeout=300, TF_USE_LEGACY_KERAS=1)
    assert result["fit"] == {"has_validation_data": True, "validation_freq": 2, "epochs": 3, "initial_epoch": 1,
                             "finds_itself": True}
    assert result["metrics_at_begin"] == ["err", "roc"]
    # tf-keras metrics declare no direction: Keras 3's metric of the same class decides.
    assert result["directions"] == {"val_roc": "max", "err": "min", "loss": "min"}
    assert result["ema_found"] and result["ema_is_final"] and result["ema_differs_from_raw"]
    assert result["no_ema_without_use_ema"]
    assert result["printed"]
    assert result["is_keras3_trainer"] is False
