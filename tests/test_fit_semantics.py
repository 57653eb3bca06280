"""Semantics users expect from Keras: `best` across fits (and processes),
`publish="best"`, EMA weights, `validation_freq` with `strict`, `store_sample`."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import XaiExportCallback, export_explainable_model
from xai_callback.publish import placement
from xai_callback.names import SAMPLE_FILE, extra_path
from xai_callback.publish.provenance import read_provenance

from fit_helpers import InjectMonitor
from models import mlp, tabular_data


@pytest.fixture(scope="module")
def data():
    return tabular_data(rows=32)


@pytest.fixture(scope="module")
def model():
    return mlp(seed=0)


def fit(model, data, values, *callbacks, **kwargs):
    x, y = data
    model.fit(x, y, epochs=len(values), batch_size=16, verbose=0,
              callbacks=[InjectMonitor("fake", values), *callbacks], **kwargs)


def exported_value(path):
    return read_provenance(str(path))["training"]["monitor_value"]


def best_callback(path, **kwargs):
    return XaiExportCallback(str(path), monitor="fake", mode="min", save_best_only=True, verify=False, **kwargs)


def test_second_fit_does_not_replace_a_better_export(model, data, tmp_path, capsys):
    callback = best_callback(tmp_path / "m")
    fit(model, data, [0.5, 0.3], callback)
    assert exported_value(tmp_path / "m") == pytest.approx(0.3)
    fit(model, data, [0.9, 0.4], callback)  # worse than the first fit's best
    assert exported_value(tmp_path / "m") == pytest.approx(0.3) and callback.best == pytest.approx(0.3)
    assert "no epoch beat" not in capsys.readouterr().out  # the callback's own best: nothing to say
    fit(model, data, [0.35, 0.2], callback)
    assert exported_value(tmp_path / "m") == pytest.approx(0.2)
    callback.reset()  # a fresh start, as documented
    fit(model, data, [0.9], callback)
    assert exported_value(tmp_path / "m") == pytest.approx(0.9)


def test_a_new_callback_compares_with_the_export_already_there(model, data, tmp_path, capsys):
    fit(model, data, [0.3], best_callback(tmp_path / "m"))
    fit(model, data, [0.9, 0.4], best_callback(tmp_path / "m"))  # another run, later
    assert exported_value(tmp_path / "m") == pytest.approx(0.3)
    out = capsys.readouterr().out
    assert "no epoch beat fake=0.3" in out and "reset()" in out and "publish='every'" in out
    fit(model, data, [0.25], best_callback(tmp_path / "m"))
    assert exported_value(tmp_path / "m") == pytest.approx(0.25)
    # Another monitor does not compare; publish="every" replaces whatever is there.
    fit(model, data, [5.0], best_callback(tmp_path / "m", publish="every"))
    assert exported_value(tmp_path / "m") == pytest.approx(5.0)


def test_publish_best_makes_the_highest_version_the_best(model, data, tmp_path):
    base = tmp_path / "base"
    first = best_callback(base, versioned=True, keep=2, export_on_improvement=True, publish="best")
    fit(model, data, [0.5, 0.3], first)
    assert placement.published_versions(str(base)) == [1, 2]
    fit(model, data, [0.9, 0.4], best_callback(base, versioned=True, keep=2, publish="best"))
    assert placement.published_versions(str(base)) == [1, 2]  # worse runs are not published
    fit(model, data, [0.2], best_callback(base, versioned=True, keep=2, publish="best"))
    versions = placement.published_versions(str(base))
    assert versions == [2, 3] and exported_value(base / "3") == pytest.approx(0.2)
    # Without publish="best" (the versioned default), a worse run gets the highest
    # number, which is what TF Serving serves: the documented trap.
    fit(model, data, [0.8], best_callback(base, versioned=True, keep=2))
    assert placement.published_versions(str(base)) == [3, 4] and exported_value(base / "4") == pytest.approx(0.8)
    # What a server polls: the newest complete version, checked newest first.
    (base / "9").mkdir()  # a version still being copied: no saved_model.pb yet
    assert placement.newest_published_version(str(base)) == 4
    assert placement.newest_published_version(str(tmp_path / "empty")) is None


class RawWeights(keras.callbacks.Callback):
    """The model's own (not averaged) weights at each epoch end."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_ema_best_epoch_exports_the_weights_final_export_would(data, tmp_path):
    x, y = data
    model = mlp(seed=4)
    model.compile(keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.9), "binary_crossentropy")
    best = best_callback(tmp_path / "best")
    final = XaiExportCallback(str(tmp_path / "final"), verify=False)
    raw = RawWeights()
    # The last epoch is the best, so both exports should hold the same weights.
    fit(model, data, [0.5, 0.4, 0.3], raw, best, final)

    def predict(path):
        return tf.saved_model.load(str(path)).signatures["xai_model"](feats=tf.constant(x))["score"].numpy()

    np.testing.assert_allclose(predict(tmp_path / "best"), predict(tmp_path / "final"), rtol=1e-6, atol=1e-7)
    assert read_provenance(str(tmp_path / "best"))["training"]["weights"] == "ema"
    assert read_provenance(str(tmp_path / "final"))["training"]["weights"] == "ema"
    # The raw weights of that epoch predict differently: the test tells them apart.
    with_raw = mlp(seed=5)
    with_raw.set_weights(raw.weights[-1])
    assert not np.allclose(with_raw.predict(x, verbose=0), predict(tmp_path / "best"), atol=1e-4)


def test_strict_with_validation_freq_trains_every_epoch(data, tmp_path):
    x, y = data
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="val_loss", save_best_only=True, strict=True,
                                 verify=False)
    history = mlp().fit(x, y, epochs=4, batch_size=16, verbose=0, validation_split=0.25, validation_freq=2,
                        callbacks=[callback])
    assert len(history.history["loss"]) == 4
    assert callback.best_epoch in (1, 3)
    assert read_provenance(str(tmp_path / "m"))["training"]["epoch"] in (2, 4)


class CustomStep(keras.Model):
    """Logs only what its own train_step returns: the monitor is unknowable before training."""

    def train_step(self, data):
        return {"my_loss": super().train_step(data)["loss"]}


def test_strict_still_fails_when_a_validation_epoch_lacks_the_monitor(data, tmp_path):
    x, y = data
    base = mlp()
    model = CustomStep(base.inputs, base.outputs)
    model.compile("adam", "binary_crossentropy")
    raw = RawWeights()
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="val_nothing", mode="min", save_best_only=True,
                                 strict=True, verify=False)
    # Epoch 1 does not validate (no error); epoch 2 does, without the monitor.
    with pytest.raises(ValueError, match=r"monitor='val_nothing' is not in the logs of epoch 2"):
        model.fit(x, y, epochs=4, verbose=0, validation_split=0.25, validation_freq=2, callbacks=[raw, callback])
    assert len(raw.weights) == 2


@pytest.mark.slow
def test_store_sample_false_keeps_user_rows_out_of_the_export(model, tmp_path):
    export_explainable_model(model, str(tmp_path / "with"))
    export_explainable_model(model, str(tmp_path / "without"), store_sample=False)
    assert os.path.exists(extra_path(str(tmp_path / "with"), SAMPLE_FILE))
    assert not os.path.exists(extra_path(str(tmp_path / "without"), SAMPLE_FILE))
    assert "xai_model" in tf.saved_model.load(str(tmp_path / "without")).signatures
    assert XaiExportCallback(str(tmp_path / "cb"), store_sample=False).get_config()["store_sample"] is False
