"""`XaiExportCallback` inside real Keras 3 `fit` runs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import SignatureError, XaiExportCallback
from xai_callback.publish import storage
from xai_callback.names import PROVENANCE_FILE, extra_path

from models import csv_lines, mlp, parse_csv, tabular_data

# A monitored value scripted per epoch, so the best epoch is known: the
# second epoch (index 1) is best when minimising.
SCRIPTED_SCORES = [3.0, 1.0, 2.0, 4.0]


class ScriptedScore(keras.callbacks.Callback):
    """Writes `score` into the epoch logs; must come first in the list."""

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = SCRIPTED_SCORES[epoch]


class WeightRecorder(keras.callbacks.Callback):
    """Keeps a copy of the weights at every epoch end."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


class BatchCounter(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.batches += 1


@pytest.fixture(scope="module")
def data():
    return tabular_data(rows=96)


def predictions_with(weights, x):
    model = mlp()
    model.set_weights(weights)
    return model.predict(x, verbose=0)


def exported_predictions(path, x):
    loaded = tf.saved_model.load(path)
    return loaded.signatures["xai_model"](feats=tf.constant(x))["score"].numpy()


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


@pytest.fixture(scope="module")
def best_epoch_run(data, tmp_path_factory):
    x, y = data
    path = str(tmp_path_factory.mktemp("cb") / "best")
    model = mlp()
    recorder = WeightRecorder()
    callback = XaiExportCallback(path, monitor="score", mode="min", save_best_only=True, verbose=1)
    model.fit(x, y, epochs=4, batch_size=32, verbose=0,
              callbacks=[ScriptedScore(), callback, recorder])
    return model, callback, recorder, path


def test_best_epoch_export_holds_best_weights_and_live_model_keeps_last(data, best_epoch_run):
    x, _ = data
    model, callback, recorder, path = best_epoch_run
    assert callback.best_epoch == 1
    np.testing.assert_allclose(
        exported_predictions(path, x), predictions_with(recorder.weights[1], x), rtol=1e-5, atol=1e-6
    )
    assert_same_weights(model.get_weights(), recorder.weights[-1])
    # The best and last epochs really differ, so the test can tell them apart.
    assert not np.allclose(predictions_with(recorder.weights[1], x), predictions_with(recorder.weights[-1], x))


def test_best_epoch_is_recorded_in_provenance(best_epoch_run):
    *_, path = best_epoch_run
    training = storage.read_json(extra_path(path, PROVENANCE_FILE))["training"]
    assert training == {
        "reason": "train_end", "epoch": 2, "monitor": "score", "monitor_value": 1.0, "mode": "min",
        "weights": "model",
    }  # "publish only if better" is an argument of publishing, not data of the export


def test_verbose_reports_like_keras(data, tmp_path, capsys):
    x, y = data
    callback = XaiExportCallback(str(tmp_path / "v"), monitor="score", mode="min", save_best_only=True, verbose=1)
    mlp().fit(x, y, epochs=3, verbose=0, callbacks=[ScriptedScore(), callback])
    out = capsys.readouterr().out
    assert "Epoch 1: score improved from inf to 3.00000, best weights kept for export" in out
    assert "Epoch 2: score improved from 3.00000 to 1.00000, best weights kept for export" in out
    assert "Epoch 3: score did not improve from 1.00000" in out
    assert f"exported epoch 2 to {tmp_path / 'v'}" in out
    assert "xai_model(feats: float32[None,4]) -> {score: float32[None,1]}" in out


def test_final_weights_export_without_save_best_only(data, tmp_path):
    x, y = data
    model = mlp()
    path = str(tmp_path / "final")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[XaiExportCallback(path)])
    np.testing.assert_allclose(exported_predictions(path, x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert storage.read_json(extra_path(path, PROVENANCE_FILE))["training"] == {"reason": "train_end", "weights": "model"}


def test_export_on_improvement_exports_each_improvement(data, tmp_path):
    x, y = data
    path = str(tmp_path / "each")
    seen = []

    class ReadExport(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(storage.read_json(extra_path(path, PROVENANCE_FILE))["training"]["epoch"])

    callback = XaiExportCallback(path, monitor="score", mode="min", save_best_only=True, export_on_improvement=True)
    mlp().fit(x, y, epochs=4, verbose=0, callbacks=[ScriptedScore(), callback, ReadExport()])
    assert seen == [1, 2, 2, 2]
    assert callback.best_epoch == 1


@pytest.mark.parametrize("early_stopping_first", [False, True])
def test_early_stopping_restore_best_weights_in_either_order(data, tmp_path, early_stopping_first):
    x, y = data
    path = str(tmp_path / "es")
    model = mlp()
    recorder = WeightRecorder()
    ours = XaiExportCallback(path, monitor="score", mode="min", save_best_only=True)
    stopper = keras.callbacks.EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    pair = [stopper, ours] if early_stopping_first else [ours, stopper]
    model.fit(x, y, epochs=4, verbose=0, callbacks=[ScriptedScore(), recorder, *pair])
    assert len(recorder.weights) == 4  # stopped after two epochs without improvement
    expected = predictions_with(recorder.weights[1], x)
    np.testing.assert_allclose(exported_predictions(path, x), expected, rtol=1e-5, atol=1e-6)
    # EarlyStopping's restore wins for the live model, whatever the order.
    assert_same_weights(model.get_weights(), recorder.weights[1])


def test_nan_is_never_best(data, tmp_path):
    x, y = data
    scores = [float("nan"), 2.0, float("inf"), 1.5]

    class NanScore(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = scores[epoch]

    callback = XaiExportCallback(str(tmp_path / "nan"), monitor="score", mode="min", save_best_only=True)
    mlp().fit(x, y, epochs=4, verbose=0, callbacks=[NanScore(), callback])
    assert callback.best_epoch == 3


def test_wrong_preprocess_fails_before_the_first_batch(data, tmp_path):
    x, y = data

    def bad_preprocess(csv):
        return {"feats": tf.cast(parse_csv(csv)["feats"], tf.float64)}

    counter = BatchCounter()
    callback = XaiExportCallback(
        str(tmp_path / "never"),
        preprocess_fn=(bad_preprocess, [tf.TensorSpec([None], tf.string, name="csv")]),
        sample={"csv": csv_lines(x[:2])},
    )
    with pytest.raises(SignatureError, match=r"'feats' is float64\[None,4\]"):
        mlp().fit(x, y, epochs=1, verbose=0, callbacks=[counter, callback])
    assert counter.batches == 0
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    "monitor, expected",
    [("val_loss", "min"), ("val_auc", "max"), ("auc", "max"), ("loss", "min")],
)
def test_auto_mode_follows_keras3(data, tmp_path, monitor, expected):
    x, y = data
    callback = XaiExportCallback(str(tmp_path / "auto"), monitor=monitor, save_best_only=True)
    mlp().fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[callback])
    assert callback.policy.direction == expected


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"mode": "best"}, ValueError, "mode='best'"),
        ({"min_delta": -0.1}, ValueError, "min_delta=-0.1"),
        ({"export_on_improvement": True}, ValueError, "save_best_only=False"),
        ({"monitor": ""}, ValueError, "monitor=''"),
        ({"not_an_option": 1}, TypeError, "not_an_option"),
    ],
)
def test_bad_arguments_fail_at_construction(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        XaiExportCallback(str(tmp_path / "x"), **kwargs)


def test_config_round_trip_through_keras_serialization(tmp_path):
    callback = XaiExportCallback(
        str(tmp_path / "cfg"), monitor="val_auc", mode="max", save_best_only=True, min_delta=0.01,
        preprocess_fn="models:parse_csv", output_key="score",
    )
    config = keras.saving.serialize_keras_object(callback)
    rebuilt = keras.saving.deserialize_keras_object(config)
    assert isinstance(rebuilt, XaiExportCallback)
    assert rebuilt.get_config() == callback.get_config()
    assert rebuilt.get_config()["preprocess_fn"] == "models:parse_csv"


def test_failed_export_on_improvement_warns_and_training_goes_on(data, tmp_path):
    x, y = data
    path = tmp_path / "blocked"

    class BlockThenFree(keras.callbacks.Callback):
        """A file where the export goes during epoch 1, gone by epoch 2."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                path.write_text("not a directory")
            elif path.is_file():
                path.unlink()

    callback = XaiExportCallback(
        str(path), monitor="score", mode="min", save_best_only=True, export_on_improvement=True
    )
    counter = BatchCounter()
    with pytest.warns(UserWarning, match=r"Exporting epoch 1 to .*blocked.* failed"):
        mlp().fit(x, y, epochs=4, batch_size=32, verbose=0,
                  callbacks=[ScriptedScore(), BlockThenFree(), callback, counter])
    assert counter.batches == 4 * 3  # every epoch ran
    training = storage.read_json(extra_path(str(path), PROVENANCE_FILE))["training"]
    assert training["epoch"] == 2
