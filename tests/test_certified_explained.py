"""Certified means explained.

What `prepare()` and `validate` pass, `explain`, `xai_explain` and `serve`
explain: both run the export's method through explain's engine (the
rehearsal, `xai_callback/explain/rehearsal.py`), and what the explanation
would refuse is refused before the first training batch. Recurrent models
(LSTM, GRU, Bidirectional; TextVectorization -> Embedding(mask_zero=True) ->
Bidirectional(GRU)) are explained with integrated gradients from the reloaded
export: loading loses the handle data of their loops' variables, which
`contract/loaded.py` restores.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import xai_callback
from completeness import assert_adds_up
from conformance_models import discretization, reviews
from serve_helpers import ThreadServer, request
from xai_callback.contract.loaded import load_export, restore_handle_data
from xai_callback.contract.probe import probe_gradients
from xai_callback.errors import SpecError
from xai_callback.explain import load_explainer
from xai_callback.explain.rehearsal import RehearsalError

# Models trained per test and whole explanation runs: the full tier (`make test`), not `make test-fast`.
pytestmark = pytest.mark.slow

STEPS, FEATURES = 6, 3


def sequences(rows=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, STEPS, FEATURES)).astype("float32")
    return x, (x[:, :, 0].sum(axis=1) > 0).astype("float32")


def recurrent(kind):
    layer = {
        "lstm": lambda: keras.layers.LSTM(4),
        "gru": lambda: keras.layers.GRU(4),
        "bidirectional": lambda: keras.layers.Bidirectional(keras.layers.LSTM(3)),
    }[kind]()
    keras.utils.set_random_seed(0)
    seq = keras.Input((STEPS, FEATURES), name="seq")
    model = keras.Model(seq, keras.layers.Dense(1, name="score")(layer(seq)))
    model.compile("adam", "binary_crossentropy")
    return model


def fit_with_callback(model, x, y, export_dir, **options):
    """One epoch with the callback (`x` a tf.data.Dataset when `y` is None)."""
    callback = xai_callback.XaiExportCallback(str(export_dir), **options)
    model.fit(x, y, epochs=1, batch_size=None if y is None else 16, verbose=0, callbacks=[callback])
    return callback.last_export.path


@pytest.fixture(scope="module", params=["lstm", "gru", "bidirectional"])
def rnn_export(request, tmp_path_factory):
    x, y = sequences()
    path = fit_with_callback(recurrent(request.param), x, y,
                             tmp_path_factory.mktemp(request.param) / "export", sample=x[:4],
                             explain_signature=True)
    return request.param, path, x


def test_validate_passes_and_says_it_explained(rnn_export):
    _, path, _ = rnn_export
    report = xai_callback.validate(path)
    assert report.ok, str(report)
    explained = report["explanations"]
    assert not explained.skipped and "integrated-gradients(stepCount=50) explains 4 instance(s)" in (
        explained.reason), explained.reason


def test_integrated_gradients_from_the_reloaded_rnn_add_up(rnn_export):
    """Failed before the fix: `ValueError: Internal error: Tried to take gradients (or
    similar) of a variable without handle data: Tensor(".../lstm_1/while:7" ...)`."""
    _, path, x = rnn_export
    response = xai_callback.explain(path, {"seq": x[:3]})
    assert_adds_up(response, path, tf.saved_model.load(path), {"seq": x[:3]}, rtol=0.05)
    attributions = response.explanations[0].attributions[0].feature_attributions["seq"]
    assert np.shape(attributions) == (STEPS, FEATURES) and np.abs(attributions).max() > 1e-4


def test_xai_explain_of_an_rnn_is_validated_and_agrees(rnn_export):
    _, path, x = rnn_export
    report = xai_callback.validate(path)
    assert report["explain_signature"].passed and not report["explain_signature"].skipped, str(report)
    loaded = tf.saved_model.load(path)
    got = loaded.signatures["xai_explain"](seq=tf.constant(x[:2]))["attribution_seq"].numpy()
    local = xai_callback.explain(path, {"seq": x[:2]})
    want = np.stack([e.attributions[0].feature_attributions["seq"] for e in local.explanations])
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5, atol=1e-7)


def test_the_probe_takes_gradients_as_explain_does(tmp_path):
    """An eager tape differentiates a loaded LSTM even without its handle data; the
    compiled functions of `explain` do not. The probe runs compiled, so it fails on a
    plain `tf.saved_model.load` and passes once the handle data is restored.

    The export is written with verify=False: its first load in this process is the
    plain one (a later load of the same functions finds them restored)."""
    x, _ = sequences(rows=4)
    path = xai_callback.export_explainable_model(recurrent("lstm"), str(tmp_path / "lstm"),
                                                 verify=False).path
    plain = tf.saved_model.load(path)
    explainer = load_explainer(path, validate=False, loaded=tf.saved_model.load(path))
    args = (explainer.metadata, explainer.parameters, {"seq": x[:2]})
    with tf.GradientTape() as tape:  # eager: works without the handle data
        seq = tf.constant(x[:2])
        tape.watch(seq)
        score = plain.signatures["xai_model"](seq=seq)["score"]
    assert tape.gradient(score, seq) is not None
    with pytest.raises(SpecError, match="without handle data") as refused:
        probe_gradients(plain.signatures["xai_model"], *args)
    assert "load_export" in str(refused.value)
    assert restore_handle_data(plain) > 0
    assert restore_handle_data(plain) == 0  # once per loaded SavedModel
    largest = probe_gradients(plain.signatures["xai_model"], *args)
    assert largest["seq"] > 0
    restored = load_export(path)
    assert probe_gradients(restored.signatures["xai_model"], *args)["seq"] == pytest.approx(
        largest["seq"], rel=1e-6)


# -- text: TextVectorization -> Embedding(mask_zero=True) -> Bidirectional(GRU) -------------

@pytest.fixture(scope="module")
def text_rnn_export(tmp_path_factory):
    keras.utils.set_random_seed(0)
    texts, labels = reviews()
    vectorize = keras.layers.TextVectorization(max_tokens=16, output_sequence_length=6)
    vectorize.adapt(texts[:, 0])
    text = keras.Input((1,), dtype="string", name="text")
    x = keras.layers.Embedding(16, 4, mask_zero=True)(vectorize(text))
    x = keras.layers.Bidirectional(keras.layers.GRU(3))(x)
    model = keras.Model(text, keras.layers.Dense(1, activation="sigmoid", name="positive")(x))
    model.compile("adam", "binary_crossentropy")
    train = tf.data.Dataset.from_tensor_slices((tf.constant(texts), labels)).batch(16)
    path = fit_with_callback(model, train, None, tmp_path_factory.mktemp("text") / "export",
                             sample={"text": texts[:4]})
    return path, texts


def test_text_rnn_is_validated_and_explained_per_token(text_rnn_export):
    path, texts = text_rnn_export
    report = xai_callback.validate(path)
    assert report.ok and not report["explanations"].skipped, str(report)
    response = xai_callback.explain(path, [{"text": t} for t in texts[:2, 0]])
    explanation = response.explanations[0]
    (name, values), = explanation.attributions[0].feature_attributions.items()
    tokens = explanation.tokens[name]
    assert len(values) == len(tokens) == 6
    words = texts[0, 0].split()
    assert tokens[:len(words)] == words
    assert all(v == 0 for v in values[len(words):])  # padding is kept: exactly 0
    unit = explanation.attributions[0]
    change = unit.instance_output_value - unit.baseline_output_value
    assert abs(sum(values) - change) <= 0.05 * abs(change) + 1e-5


@pytest.mark.slow
def test_serve_explains_the_text_rnn(text_rnn_export):
    path, texts = text_rnn_export
    instances = [{"text": t} for t in texts[:2, 0]]
    with ThreadServer(path, model_name="reviews") as server:
        status, body, _ = request(server.port, "POST", "/v1/models/reviews:explain",
                                  {"instances": instances})
    assert status == 200, body
    local = xai_callback.explain(path, instances).to_dict()
    served = body["explanations"][0]["attributions"][0]["featureAttributions"]
    want = local["explanations"][0]["attributions"][0]["featureAttributions"]
    assert served.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(served[key], want[key], rtol=1e-6, atol=1e-9)


# -- refused before training: what the explanation would refuse ------------------------------

class StraightThroughRound(keras.layers.Layer):
    """Quantization-aware training's rounding: the forward pass rounds, the gradient is 1."""

    def call(self, x):
        return x + tf.stop_gradient(tf.round(x * 3.0) / 3.0 - x)


def quantized_model():
    keras.utils.set_random_seed(1)
    a = keras.Input((2,), name="a")
    b = keras.Input((2,), name="b")
    merged = keras.layers.concatenate([a, StraightThroughRound()(b)])
    model = keras.Model([a, b], keras.layers.Dense(1, name="score")(merged))
    model.compile("adam", "mse")
    return model


def quantized_data(rows=32):
    rng = np.random.default_rng(2)
    a, b = rng.uniform(size=(rows, 2)).astype("float32"), rng.uniform(size=(rows, 2)).astype("float32")
    return {"a": a, "b": b}, (a.sum(1) + b.sum(1)).astype("float32")


def test_gradients_that_miss_the_output_change_are_refused_before_training(tmp_path):
    """Every gradient exists (the probe passes), but integrated gradients integrate the
    straight-through slope, not the staircase: no stepCount makes them add up."""
    model = quantized_model()
    x, y = quantized_data()
    callback = xai_callback.XaiExportCallback(str(tmp_path / "export"))
    with pytest.raises(RehearsalError) as refused:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    message = str(refused.value)
    assert refused.value.feature == "b"
    assert "Feature 'b': switching it alone to its baseline" in message
    assert "with stepCount 200" in message and "SampledShapley()" in message
    assert "before the first training batch" in message and "verify=False" in message
    assert model.optimizer.iterations.numpy() == 0
    assert not tf.io.gfile.exists(str(tmp_path / "export"))


def test_validate_and_explain_agree_on_an_export_that_does_not_add_up(tmp_path):
    model = quantized_model()
    x, y = quantized_data()
    model.fit(x, y, epochs=1, verbose=0)
    path = xai_callback.export_explainable_model(model, str(tmp_path / "export"), verify=False,
                                                 sample={"a": x["a"][:4], "b": x["b"][:4]}).path
    report = xai_callback.validate(path)
    assert not report.ok and [r.rule for r in report.failures] == ["explanations"], str(report)
    assert "Feature 'b'" in report["explanations"].reason
    with pytest.raises(xai_callback.ExportVerificationError, match="explanations: integrated-gradients"):
        xai_callback.explain(path, {"a": x["a"][:2], "b": x["b"][:2]})
    # The way out the message names: sampled Shapley needs no gradients, and adds up.
    shapley = xai_callback.explain(path, {"a": x["a"][:2], "b": x["b"][:2]}, method="sampled-shapley")
    assert_adds_up(shapley, path, tf.saved_model.load(path), {"a": x["a"][:2], "b": x["b"][:2]},
                   rtol=1e-3)


def test_a_low_step_count_warns_and_passes(tmp_path):
    """A curved model explained with stepCount=2: the gap shrinks with 4x the steps, so
    the export is fine and the warning says to raise stepCount."""
    keras.utils.set_random_seed(3)
    feats = keras.Input((2,), name="feats")
    curved = keras.layers.Lambda(lambda t: tf.exp(3.0 * t), name="curve")(feats)
    model = keras.Model(feats, keras.layers.Dense(1, name="score")(curved))
    spec = xai_callback.ExplanationSpec(method=xai_callback.IntegratedGradients(step_count=2))
    x = np.random.default_rng(4).uniform(0.5, 1.0, size=(4, 2)).astype("float32")
    path = xai_callback.export_explainable_model(model, str(tmp_path / "export"), sample=x,
                                                 explanation_spec=spec).path
    result = xai_callback.validate(path)["explanations"]
    assert result.passed and result.warning, result.reason
    assert "raise stepCount" in result.reason and "with stepCount 8" in result.reason


def test_a_discretized_column_is_validated_and_explained(tmp_path):
    """The one-hot `price` of a raw `price` (Discretization -> CategoryEncoding)
    took the encoded baseline into the raw input: `baselines_run` failed ("Input to reshape
    is a tensor with 4 values, but the requested shape has 1") where explain worked."""
    path, instances = discretization(tmp_path / "export")
    report = xai_callback.validate(path)
    assert report.ok and not report["explanations"].skipped, str(report)
    response = xai_callback.explain(path, instances)
    assert_adds_up(response, path, tf.saved_model.load(path), instances, rtol=0.05)
