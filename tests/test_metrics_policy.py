"""The monitored value: NaN/inf never best; a missing key warns once, or fails with strict."""

import math
import warnings

import keras
import pytest

from xai_callback import XaiExportCallback
from xai_callback.publish.provenance import read_provenance

from fit_helpers import BatchCounter, InjectMonitor
from models import mlp, tabular_data


@pytest.fixture(scope="module")
def data():
    return tabular_data(rows=32)


def fit(model, data, callbacks, epochs=1, **kwargs):
    x, y = data
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks, **kwargs)


def test_nan_and_inf_never_become_best(data, tmp_path):
    values = [math.nan, math.inf, 0.7, math.nan, -math.inf]
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="fake", mode="min", save_best_only=True)
    fit(mlp(), data, [InjectMonitor("fake", values), callback], epochs=len(values))
    assert callback.best_epoch == 2
    training = read_provenance(str(tmp_path / "m"))["training"]
    assert training["monitor_value"] == pytest.approx(0.7) and training["epoch"] == 3


def test_only_nan_exports_nothing(data, tmp_path, capsys):
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="fake", mode="max", save_best_only=True)
    fit(mlp(), data, [InjectMonitor("fake", [math.nan, math.nan]), callback], epochs=2)
    assert callback.best_epoch is None and not (tmp_path / "m").exists()
    assert "nothing exported" in capsys.readouterr().out


def test_missing_monitor_warns_once_per_fit_with_available_keys(data, tmp_path):
    model = mlp()
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="val_loss", save_best_only=True)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit(model, data, [callback], epochs=3)
        ours = [w for w in caught if "monitor='val_loss'" in str(w.message)]
        assert len(ours) == 1
        assert "available keys: ['auc', 'loss']" in str(ours[0].message)
        assert callback.best_epoch is None  # the epochs did not count
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "monitor, message",
    [
        ("val_loss", r"monitor='val_loss' cannot appear: fit\(\) has no validation data"),
        ("accuracy", r"monitor='accuracy' cannot appear in the logs: the model logs \['auc', 'loss'\]"),
    ],
)
def test_strict_fails_before_the_first_batch(data, tmp_path, monitor, message):
    counter = BatchCounter()
    callback = XaiExportCallback(str(tmp_path / "m"), monitor=monitor, save_best_only=True, strict=True)
    with pytest.raises(ValueError, match=message):
        fit(mlp(), data, [counter, callback])
    assert counter.batches == 0


def test_strict_accepts_a_monitor_that_appears(data, tmp_path):
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="val_auc", save_best_only=True, strict=True)
    fit(mlp(), data, [callback], epochs=2, validation_split=0.25)
    assert callback.best_epoch is not None and (tmp_path / "m").is_dir()


class CustomStep(keras.Model):
    """Logs only what its own train_step returns: unknowable before training."""

    def train_step(self, data):
        logs = super().train_step(data)
        return {"my_loss": logs["loss"]}


def test_strict_fails_at_first_epoch_end_when_only_the_logs_can_tell(data, tmp_path):
    base = mlp()
    model = CustomStep(base.inputs, base.outputs)
    model.compile("adam", "binary_crossentropy")
    counter = BatchCounter()
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="loss", mode="min", save_best_only=True, strict=True)
    with pytest.raises(ValueError, match=r"monitor='loss' is not in the logs of epoch 1; available keys: \['my_loss'\]"):
        fit(model, data, [counter, callback], epochs=5)
    assert counter.batches == 4  # one epoch of 32 rows / 8, no more


def test_strict_needs_save_best_only(tmp_path):
    with pytest.raises(ValueError, match="save_best_only=False"):
        XaiExportCallback(str(tmp_path / "m"), strict=True)


def test_monitor_improvement_as_keras_monitor_callback():
    from xai_callback.callbacks.monitor import Monitor

    monitor = Monitor("val_loss", mode="min", min_delta=0.1)
    assert monitor.is_improvement(5.0)  # anything finite beats no best
    monitor.best = 1.0
    assert monitor.is_improvement(0.85) and not monitor.is_improvement(0.95)  # by more than min_delta
    assert not monitor.is_improvement(math.nan) and not monitor.is_improvement(-math.inf)
    assert monitor.format_best() == "1.00000"
    rising = Monitor("val_auc", mode="max", initial_value_threshold=0.8)
    assert rising.best == 0.8 and not rising.is_improvement(0.75) and rising.is_improvement(0.81)
    rising.best = 0.9
    rising.forget_best()
    assert rising.best == 0.8


def test_direction_of_per_output_metrics_before_they_are_built():
    from models import two_head_model

    from xai_callback.callbacks.monitor import direction_of

    model = two_head_model()
    model.compile("adam", {"price": "mse", "kind": "sparse_categorical_crossentropy"},
                  metrics={"kind": ["accuracy"], "price": [keras.metrics.MeanAbsoluteError(name="mae")]})
    assert direction_of("val_kind_accuracy", model) == "max"
    assert direction_of("price_mae", model) == "min"
    assert direction_of("val_price_loss", model) == "min"
    assert direction_of("kind_nothing", model) is None
