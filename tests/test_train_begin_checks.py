"""The export is the model being trained, and what is knowable at train begin is
checked there (the refusals themselves are rows of test_bad_inputs.py; here:
the legitimate neighbours of each case, the check after writing, and `validate`).
"""

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import ExportFailedError, XaiExportCallback, export_explainable_model, validate
from xai_callback.errors import ExportVerificationError
from xai_callback.names import SAMPLE_FILE, extra_path
from xai_callback.signatures.compare import check_close
from xai_callback.signatures.tensor_io import encode_tensor_dict

from fit_helpers import BatchCounter
from models import N_FEATURES, mlp, tabular_data

FEATS = [tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")]


@pytest.fixture(scope="module")
def data():
    return tabular_data(rows=64)


def loaded_scores(path, x, signature="xai_model", key="score"):
    return tf.saved_model.load(str(path)).signatures[signature](feats=tf.constant(x))[key].numpy()


def test_model_fn_over_another_model_is_refused_before_the_first_batch(data, tmp_path):
    other = mlp(seed=7)  # a different model: the exported [0.503 ...] vs trained [0.367 ...]
    counter = BatchCounter()
    callback = XaiExportCallback(str(tmp_path / "m"), model_fn=(lambda feats: {"score": other(feats)}, FEATS))
    with pytest.raises(ValueError, match=r"model_fn \(exported as 'xai_model'\) does not compute what the model "
                                         r"being trained computes.*output 'score'.*call that model"):
        mlp().fit(*data, epochs=1, verbose=0, callbacks=[counter, callback])
    assert counter.batches == 0 and not (tmp_path / "m").exists()


def test_model_fn_over_a_copy_made_before_training_fails_after_writing(data, tmp_path):
    # Equal to the model at train begin, so the first check passes; after training
    # only the reloaded export compared with the trained model tells.
    model = mlp()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    callback = XaiExportCallback(str(tmp_path / "m"), model_fn=(lambda feats: {"score": copy(feats)}, FEATS))
    with pytest.raises(ExportFailedError, match=r"The exported 'xai_model' \(built from model_fn\) does not "
                                                r"compute what the model being trained computes") as info:
        model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    assert "ExportVerificationError" in str(info.value)
    assert not (tmp_path / "m").exists()
    fallback = keras.models.clone_model(model)
    fallback.load_weights(info.value.fallback_path)  # the trained weights are kept
    np.testing.assert_allclose(fallback.predict(data[0], verbose=0), model.predict(data[0], verbose=0), rtol=1e-6)


def test_model_fn_calling_the_trained_model_is_exported(data, tmp_path):
    model = mlp()
    callback = XaiExportCallback(str(tmp_path / "m"), model_fn=(lambda feats: {"score": model(feats)}, FEATS))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # compared: nothing to warn about
        model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    np.testing.assert_allclose(loaded_scores(tmp_path / "m", data[0]), model.predict(data[0], verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_serving_fn_with_extra_outputs_is_compared_on_the_shared_key(data, tmp_path):
    model = mlp()

    def serving(feats):
        score = model(feats)
        return {"score": score, "label": tf.cast(score > 0.5, tf.int32)}

    model.fit(*data, epochs=1, verbose=0, callbacks=[XaiExportCallback(str(tmp_path / "m"),
                                                                        serving_fn=(serving, FEATS))])
    served = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"](feats=tf.constant(data[0]))
    assert sorted(served) == ["label", "score"]


def test_model_fn_exporting_another_quantity_under_another_key_is_said_not_compared(data, tmp_path):
    model = mlp()
    logits = keras.Model(model.inputs, model.layers[-1].output)  # the same model before its sigmoid
    with pytest.warns(UserWarning, match=r"model_fn \(exported as 'xai_model'\) is not compared with the model "
                                         r"being trained: its outputs \['logits'\] share no key with the model's "
                                         r"\['score'\]"):
        export_explainable_model(model, str(tmp_path / "m"),
                                 model_fn=(lambda feats: {"logits": logits(feats)}, FEATS))
    assert validate(str(tmp_path / "m")).ok


def test_validation_freq_leaving_the_last_epoch_unvalidated_warns_and_trains(data, tmp_path):
    callback = XaiExportCallback(str(tmp_path / "m"), save_best_only=True, verify=False)
    with pytest.warns(UserWarning, match=r"validation_freq=3 and epochs=4 the last validation is at epoch 3; "
                                         r"epochs 4\.\.4 train after it"):
        history = mlp().fit(*data, epochs=4, verbose=0, validation_split=0.25, validation_freq=3,
                            callbacks=[callback])
    assert len(history.history["loss"]) == 4 and callback.best_epoch == 2


def test_validation_freq_counts_from_initial_epoch(data, tmp_path):
    # Epochs 4..5 run; validation_freq=5 validates epoch 5: fine, without a warning.
    callback = XaiExportCallback(str(tmp_path / "m"), save_best_only=True, verify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        mlp().fit(*data, epochs=5, initial_epoch=3, verbose=0, validation_split=0.25, validation_freq=5,
                  callbacks=[callback])
    assert callback.best_epoch == 4


def my_metric(y_true, y_pred):
    return keras.ops.mean(y_pred)


class DirectionProbe(keras.callbacks.Callback):
    """Placed after the export callback: what it decided before the first batch."""

    def __init__(self, ours):
        super().__init__()
        self.ours, self.direction = ours, "unset"

    def on_train_begin(self, logs=None):
        self.direction = self.ours.policy.direction


@pytest.mark.parametrize("monitor, metrics, expected", [
    ("val_roc", [keras.metrics.AUC(name="roc")], "max"),  # a named metric object, not built yet
    ("val_mse", ["mse"], "min"),
    ("val_my_metric", [my_metric], None),  # a function: no direction
])
def test_mode_auto_is_decided_at_train_begin(data, tmp_path, monitor, metrics, expected):
    model = mlp()
    model.compile("adam", "binary_crossentropy", metrics=metrics)
    callback = XaiExportCallback(str(tmp_path / "m"), monitor=monitor, save_best_only=True, verify=False)
    probe, counter = DirectionProbe(callback), BatchCounter()
    if expected is None:
        with pytest.raises(ValueError, match=rf"monitor='{monitor}' with mode='auto'.*compiled metrics: "
                                             r"\['my_metric'\]\)\. Pass mode='min' or mode='max'"):
            model.fit(*data, epochs=1, verbose=0, validation_split=0.25, callbacks=[counter, callback, probe])
        assert counter.batches == 0
        return
    model.fit(*data, epochs=1, verbose=0, validation_split=0.25, callbacks=[counter, callback, probe])
    assert probe.direction == expected


def test_custom_metric_with_an_explicit_mode_is_exported(data, tmp_path):
    model = mlp()
    model.compile("adam", "binary_crossentropy", metrics=[my_metric])
    callback = XaiExportCallback(str(tmp_path / "m"), monitor="my_metric", mode="max", save_best_only=True)
    model.fit(*data, epochs=2, verbose=0, callbacks=[callback])
    assert callback.best_epoch is not None and (tmp_path / "m").is_dir()


def test_nan_in_the_sample_is_refused_even_where_the_preprocess_imputes_it(tmp_path):
    # The stored sample is re-run by `validate` and the explainers later: refused
    # whatever the preprocess makes of it; the way out is a finite sample.
    spec = [tf.TensorSpec([None, N_FEATURES], tf.float32, name="raw")]

    def impute(raw):
        return {"feats": tf.where(tf.math.is_nan(raw), tf.zeros_like(raw), raw)}

    raw = np.array([[0.5, np.nan, 0.1, 0.2]], "float32")
    with pytest.raises(ValueError, match=r"sample= holds nan at 'raw'\[0, 1\]"):
        export_explainable_model(mlp(), str(tmp_path / "m"), preprocess_fn=(impute, spec), sample={"raw": raw})
    # The way out the message gives: a finite sample.
    export_explainable_model(mlp(), str(tmp_path / "m"), preprocess_fn=(impute, spec),
                             sample={"raw": np.nan_to_num(raw)})
    assert validate(str(tmp_path / "m")).ok


def test_empty_sample_is_refused_by_the_exporter_too(tmp_path):
    with pytest.raises(ValueError, match=r"sample= has no rows \('feats' has shape \(0, 4\)\)"):
        export_explainable_model(mlp(), str(tmp_path / "m"), sample={"feats": np.zeros((0, N_FEATURES))})
    with pytest.raises(ValueError, match=r"sample= has no rows: received \[\]"):
        export_explainable_model(mlp(), str(tmp_path / "m"), sample=[])
    assert not (tmp_path / "m").exists()


def test_validate_reports_an_empty_stored_sample_as_a_failed_rule(tmp_path):
    path = str(tmp_path / "m")
    export_explainable_model(mlp(), path)
    # As an export written before empty samples were refused holds it.
    with open(extra_path(path, SAMPLE_FILE), "w") as f:
        json.dump(encode_tensor_dict({"feats": np.zeros((0, N_FEATURES), "float32")}), f)
    report = validate(path)
    assert not report.ok
    assert [r.rule for r in report.failures] == ["serving_identity"]
    assert "has no rows ('feats' has shape (0, 4))" in report["serving_identity"].reason
    given = validate(path, sample={"feats": np.zeros((0, N_FEATURES), "float32")})
    assert "the given sample has no rows" in given["serving_identity"].reason


def test_nan_compared_with_nan_is_said_so():
    values = np.array([[0.1], [np.nan]], "float32")
    with pytest.raises(ExportVerificationError, match=r"at index \(1, 0\) both are NaN, and NaN never equals NaN"):
        check_close(values, values.copy(), "serving_default", "score", "xai_model(x)", 1e-4, 1e-5)


def test_a_split_by_hand_is_compared_with_the_model_on_the_raw_sample(tmp_path):
    # preprocess_fn and model_fn cut the model itself: its raw inputs are the sample's.
    model = mlp()
    hidden = model.layers[1].output
    head = keras.Model(hidden, model.output)  # Keras clones the nodes, weights shared
    preprocess = (lambda feats: {"hidden": keras.Model(model.inputs, hidden)(feats)}, FEATS)
    spec = [tf.TensorSpec([None, 8], tf.float32, name="hidden")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # compared, so nothing to warn about
        export_explainable_model(model, str(tmp_path / "m"), preprocess_fn=preprocess,
                                 model_fn=(lambda hidden: {"score": head(hidden)}, spec), split=False)
    other_head = keras.Model(hidden, keras.layers.Dense(1, activation="sigmoid", name="score")(hidden))
    with pytest.raises(ValueError, match=r"model_fn .*does not compute what the model being trained computes"):
        export_explainable_model(model, str(tmp_path / "n"), preprocess_fn=preprocess,
                                 model_fn=(lambda hidden: {"score": other_head(hidden)}, spec), split=False)
