"""`tuner.search(..., callbacks=[XaiExportCallback(...)])` with KerasTuner's RandomSearch.

KerasTuner deep-copies the callbacks for every trial, so what one trial knows
of another comes from the published exports' provenance.
"""

import keras
import pytest
import tensorflow as tf

from xai_callback import XaiExportCallback
from xai_callback.publish import placement
from xai_callback.publish.provenance import read_provenance

from models import N_FEATURES, tabular_data

keras_tuner = pytest.importorskip("keras_tuner")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def build(hp):
    inputs = keras.Input((N_FEATURES,), name="feats")
    hidden = keras.layers.Dense(hp.Choice("units", [2, 4, 8, 16]), activation="tanh")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(hp.Choice("learning_rate", [1e-4, 1e-3, 3e-2])), "binary_crossentropy")
    return model


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuner")
    x, y = tabular_data(rows=64)
    best_only = XaiExportCallback(str(root / "best"), monitor="val_loss", save_best_only=True, versioned=True,
                                  publish="best", verify=False)
    every = XaiExportCallback(str(root / "every"), monitor="val_loss", save_best_only=True, versioned=True,
                              verify=False)
    tuner = keras_tuner.RandomSearch(build, objective="val_loss", max_trials=3, seed=3,
                                     directory=str(root / "tuning"), project_name="t", overwrite=True)
    tuner.search(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, callbacks=[best_only, every])
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    return root, trials


def tuner_record(path):
    return read_provenance(str(path))["training"]["tuner"]


def test_every_trial_export_records_its_trial_and_hyperparameters(search):
    root, trials = search
    assert len(trials) == 3
    versions = placement.published_versions(str(root / "every"))
    assert versions == [1, 2, 3]
    for number, trial in zip(versions, trials):
        record = tuner_record(root / "every" / str(number))
        assert record["trial_id"] == trial.trial_id
        assert record["hyperparameters"] == trial.hyperparameters.values
        assert record["objective"] == "val_loss" and record["direction"] == "min"
        assert record["objective_value"] == pytest.approx(trial.score, rel=1e-6)


def test_publish_best_publishes_only_trials_that_beat_every_earlier_one(search):
    root, trials = search
    expected, best = [], None
    for trial in trials:
        if best is None or trial.score < best:
            expected.append(trial.trial_id)
            best = trial.score
    versions = placement.published_versions(str(root / "best"))
    assert len(expected) < len(trials)  # this seed has a trial that must not be published
    assert [tuner_record(root / "best" / str(n))["trial_id"] for n in versions] == expected
    values = [tuner_record(root / "best" / str(n))["objective_value"] for n in versions]
    assert values == sorted(values, reverse=True)  # the newest version is the best model
    newest = root / "best" / str(versions[-1])
    assert values[-1] == pytest.approx(min(t.score for t in trials), rel=1e-6)
    assert "xai_model" in tf.saved_model.load(str(newest)).signatures
