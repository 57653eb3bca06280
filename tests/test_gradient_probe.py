"""The gradient probe through `fit`: structural problems before the
first batch, zero gradients of the trained weights only a warning.

A model whose output is saturated (a sigmoid at 1.0 in float32) or whose ReLU
units are all dead has all-zero gradients: a property of its weights, not a
broken export, so the export is written, verified and valid. A model with a
`tf.stop_gradient` or a cast to int on the path has no gradient whatever its
weights: refused in `on_train_begin`, before any batch.
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import XaiExportCallback
from xai_callback.errors import SpecError
from xai_callback.contract.validation import validate

from fit_helpers import BatchCounter
from models import N_FEATURES, tabular_data

ZERO_WARNING = "is all zero on the exported weights for feature\\(s\\) \\['feats'\\]"


def classifier(hidden_bias=0.0, output_bias=0.0, between=None, seed=0):
    """feats -> [between] -> Dense(8, relu) -> Dense(1, sigmoid) 'score'."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((N_FEATURES,), name="feats")
    x = keras.layers.Lambda(between)(inputs) if between else inputs
    x = keras.layers.Dense(8, activation="relu",
                           bias_initializer=keras.initializers.Constant(hidden_bias))(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score",
                                 bias_initializer=keras.initializers.Constant(output_bias))(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy")
    return model


@pytest.fixture(scope="module")
def data():
    return tabular_data(rows=32)


def fit_with_export(model, data, export_dir):
    counter = BatchCounter()
    callback = XaiExportCallback(export_dir)
    model.fit(*data, epochs=1, batch_size=16, verbose=0, callbacks=[counter, callback])
    return counter


@pytest.mark.parametrize("make_model, why", [
    (lambda: classifier(output_bias=60.0), "saturated"),  # sigmoid(60) == 1.0 in float32
    (lambda: classifier(hidden_bias=-50.0), "dead_relu"),  # no unit ever fires
], ids=["saturated-sigmoid", "dead-relu"])
def test_zero_gradient_model_exports_with_a_warning(make_model, why, data, tmp_path):
    model = make_model()
    x = tf.constant(data[0][:8])
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = model(x)
    assert not np.any(tape.gradient(score, x).numpy()), "the model should have zero gradients"
    export_dir = str(tmp_path / why)
    with pytest.warns(UserWarning, match=ZERO_WARNING):
        counter = fit_with_export(model, data, export_dir)
    assert counter.batches == 2
    report = validate(export_dir)
    assert report.ok, str(report)
    assert "is all zero" in report["differentiability"].reason
    loaded = tf.saved_model.load(export_dir)
    served = loaded.signatures["serving_default"](feats=x)["score"].numpy()
    np.testing.assert_allclose(served, model.predict(x, verbose=0), rtol=1e-5)


def test_healthy_model_exports_without_a_warning(data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning of ours fails the test
        fit_with_export(classifier(), data, str(tmp_path / "healthy"))
    assert validate(str(tmp_path / "healthy")).ok


@pytest.mark.parametrize("between", [
    tf.stop_gradient,
    lambda t: tf.cast(tf.cast(t * 10.0, tf.int32), tf.float32),
], ids=["stop-gradient", "int-cast"])
def test_structurally_non_differentiable_model_is_refused_before_the_first_batch(
        between, data, tmp_path):
    model = classifier(between=between)
    counter = BatchCounter()
    callback = XaiExportCallback(str(tmp_path / "cut"))
    with pytest.raises(SpecError) as info:
        model.fit(*data, epochs=1, verbose=0, callbacks=[counter, callback])
    assert counter.batches == 0
    message = str(info.value)
    assert "feature 'feats'" in message and "`gradient` got None" in message
    assert "SampledShapley()" in message
    assert not (tmp_path / "cut").exists()
