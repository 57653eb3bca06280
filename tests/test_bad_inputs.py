"""The bad-input catalogue (docs/bad_inputs.md): every case fails before training.

Each case raises a ValueError or TypeError naming the argument and echoing the
value; cases only checkable once `fit` starts must raise in `on_train_begin`,
proven by a batch counter that saw no batch.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import XaiExportCallback, export_explainable_model

from fit_helpers import BatchCounter
from models import N_FEATURES, mlp, parse_csv, tabular_data

SPEC = [tf.TensorSpec([None], tf.string, name="csv")]
FEATS = [tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")]


@tf.function
def no_signature(feats):
    return {"score": feats}


def preprocess_returning(transform):
    return (lambda csv: transform(parse_csv(csv)["feats"]), SPEC)


def make_file(tmp):
    (tmp / "a_file").write_text("x")
    return str(tmp / "a_file")


def make_foreign_dir(tmp):
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "notes.txt").write_text("mine")
    return str(tmp / "foreign")


def make_symlink(tmp):
    (tmp / "real").mkdir()
    os.symlink(tmp / "real", tmp / "link")
    return str(tmp / "link")


def make_savedmodel_dir(tmp):
    export_explainable_model(mlp(), str(tmp / "sm"), verify=False)
    return str(tmp / "sm")


def ok_dir(tmp):
    return str(tmp / "out")


# (id, export_dir factory, callback kwargs, error type, fragments of the message,
#  fit kwargs or None when the constructor raises). The message must contain
#  every fragment: the argument and the value received.
# The model every case trains (a module-level object, so a case's model_fn can call it).
TRAINED = mlp()


def half_gradient_score(feats):
    """The trained model's score, whose gradient is half the true one (a custom gradient
    gone wrong): the values are the model's, the attributions add up to half the change."""
    score = TRAINED(feats)
    return {"score": tf.stop_gradient(score) + 0.5 * (score - tf.stop_gradient(score))}


CASES = [
    ("unknown-mode", ok_dir, dict(mode="best"), ValueError, ["mode=", "'best'"], None),
    ("empty-monitor", ok_dir, dict(monitor=""), ValueError, ["monitor=''"], None),
    ("monitor-not-a-string", ok_dir, dict(monitor=3), TypeError, ["monitor=3"], None),
    ("negative-min-delta", ok_dir, dict(min_delta=-0.1), ValueError, ["min_delta=-0.1"], None),
    ("nan-min-delta", ok_dir, dict(min_delta=float("nan")), ValueError, ["min_delta=nan"], None),
    ("export-dir-not-a-path", lambda t: 42, {}, TypeError, ["export_dir", "42"], None),
    ("export-dir-empty", lambda t: "", {}, ValueError, ["export_dir", "''"], None),
    ("export-dir-is-a-file", make_file, {}, ValueError, ["export_dir=", "a_file'", "is a file"], None),
    ("export-dir-below-a-file", lambda t: make_file(t) + "/model", {}, ValueError,
     ["export_dir=", "a_file/model'", "which is a file"], None),
    ("export-dir-foreign-non-empty", make_foreign_dir, {}, ValueError,
     ["export_dir=", "foreign'", "overwrite=True"], None),
    ("export-dir-symlink", make_symlink, {}, ValueError, ["export_dir=", "link'", "symbolic link"], None),
    ("export-dir-symlink-trailing-slash", lambda t: make_symlink(t) + "/", {}, ValueError,
     ["export_dir=", "link/'", "symbolic link"], None),
    ("export-dir-is-working-directory", lambda t: ".", {}, ValueError,
     ["export_dir='.'", "current working directory", "versioned=True"], None),
    ("export-dir-around-working-directory", lambda t: "..", {}, ValueError,
     ["export_dir='..'", "around the current working directory", "'../model'"], None),
    ("export-dir-unknown-scheme", lambda t: "nosuch://bucket/model", {}, ValueError,
     ["export_dir='nosuch://bucket/model'", "no file system for nosuch://"], None),
    ("versioned-into-savedmodel", make_savedmodel_dir, dict(versioned=True), ValueError,
     ["export_dir=", "sm'", "holds a SavedModel"], None),
    ("threshold-not-a-number", ok_dir, dict(initial_value_threshold="low"), TypeError,
     ["initial_value_threshold='low'"], None),
    ("verbose-out-of-range", ok_dir, dict(verbose=3), ValueError, ["verbose=3"], None),
    ("improvement-without-best", ok_dir, dict(export_on_improvement=True), ValueError,
     ["export_on_improvement", "save_best_only=False"], None),
    ("unknown-export-option", ok_dir, dict(preprocess=parse_csv), TypeError, ["['preprocess']"], None),
    ("versioned-not-bool", ok_dir, dict(versioned="yes"), TypeError, ["versioned='yes'"], None),
    ("keep-zero", ok_dir, dict(versioned=True, keep=0), ValueError, ["keep=0"], None),
    ("keep-not-int", ok_dir, dict(versioned=True, keep=1.5), TypeError, ["keep=1.5"], None),
    ("keep-without-versioned", ok_dir, dict(keep=2), ValueError, ["keep=2", "versioned=True"], None),
    ("overwrite-is-a-string", make_foreign_dir, dict(overwrite="false"), TypeError,
     ["overwrite='false'", "not a boolean"], None),
    ("verify-is-a-string", ok_dir, dict(verify="no"), TypeError, ["verify='no'"], None),
    ("legacy-metadata-is-a-string", ok_dir, dict(legacy_metadata="no"), TypeError, ["legacy_metadata='no'"], None),
    ("min-delta-is-a-string", ok_dir, dict(min_delta="0.1"), TypeError, ["min_delta='0.1'"], None),
    ("strict-not-bool", ok_dir, dict(strict="yes"), TypeError, ["strict='yes'"], None),
    ("strict-without-best", ok_dir, dict(strict=True), ValueError, ["strict=True", "save_best_only=False"], None),
    ("publish-unknown", ok_dir, dict(publish="newest"), ValueError, ["publish='newest'", "'best'"], None),
    ("publish-best-without-best", ok_dir, dict(publish="best"), ValueError,
     ["publish='best'", "save_best_only=False"], None),
    # -- raised in on_train_begin, before the first batch --------------------------
    ("monitor-cannot-appear-val", ok_dir, dict(save_best_only=True, strict=True), ValueError,
     ["monitor='val_loss'", "no validation data"], {}),
    ("monitor-cannot-appear-metric", ok_dir, dict(monitor="accuracy", save_best_only=True, strict=True),
     ValueError, ["monitor='accuracy'", "['auc', 'loss']"], {}),
    ("export-dir-in-backup-dir", lambda t: str(t / "backup" / "export"), {}, ValueError,
     ["export_dir=", "backup/export'", "backup_dir="], {"backup": "backup"}),
    ("backup-dir-in-export-dir", ok_dir, {}, ValueError,
     ["backup_dir=", "out/backup'", "inside export_dir=", "out'"], {"backup": "out/backup"}),
    ("store-sample-not-bool", ok_dir, dict(store_sample="no"), TypeError, ["store_sample='no'"], {}),
    ("reserved-signature-name", ok_dir, dict(extra_signatures={"xai_model": parse_csv}), ValueError,
     ["extra_signatures", "'xai_model'"], {}),
    ("signature-name-empty", ok_dir, dict(extra_signatures={"": parse_csv}), ValueError,
     ["extra_signatures", "''"], {}),
    ("extra-signatures-not-dict", ok_dir, dict(extra_signatures=[parse_csv]), TypeError,
     ["extra_signatures", "[<"], {}),
    ("serving-fn-without-signature", ok_dir, dict(serving_fn=no_signature), ValueError,
     ["serving_fn", "no input signature"], {}),
    ("preprocess-wrong-keys", ok_dir, dict(preprocess_fn=preprocess_returning(lambda f: {"features": f}),
                                           sample={"csv": ["1,2,3,4"]}), ValueError,
     ["'features'", "'feats'"], {}),
    ("preprocess-wrong-dtype", ok_dir, dict(preprocess_fn=preprocess_returning(
        lambda f: {"feats": tf.cast(f, tf.float64)}), sample={"csv": ["1,2,3,4"]}), ValueError,
     ["'feats'", "float64[None,4]", "float32[None,4]"], {}),
    ("preprocess-wrong-shape", ok_dir, dict(preprocess_fn=preprocess_returning(
        lambda f: {"feats": f[:, :2]}), sample={"csv": ["1,2,3,4"]}), ValueError,
     ["'feats'", "float32[None,2]"], {}),
    ("output-key-unknown", ok_dir, dict(output_key="cost"), ValueError, ["output_key='cost'", "['score']"], {}),
    ("output-key-not-a-string", ok_dir, dict(output_key=3), TypeError, ["output_key", "3"], {}),
    ("rtol-negative", ok_dir, dict(rtol=-1), ValueError, ["rtol=-1"], {}),
    ("explain-signature-not-bool", ok_dir, dict(explain_signature="yes"), TypeError,
     ["explain_signature", "'yes'"], {}),
    ("import-string-unresolved", ok_dir, dict(preprocess_fn="no_such_module_xyz:parse"), ValueError,
     ["preprocess_fn='no_such_module_xyz:parse'"], {}),
    ("import-string-no-attribute", ok_dir, dict(preprocess_fn="models:no_such_function"), ValueError,
     ["preprocess_fn='models:no_such_function'", "no attribute"], {}),
    ("string-input-without-sample", ok_dir, dict(preprocess_fn=parse_csv), ValueError,
     ["'csv'", "sample="], {}),
    ("baseline-wrong-shape", ok_dir, dict(explanation_spec=dict(features=[dict(name="feats", baselines=[[0.0] * 3])])),
     ValueError, ["feats", "shape [3]"], {}),
    ("more-than-10-baselines", ok_dir, dict(explanation_spec=dict(features=[dict(name="feats", baselines=[0.0] * 11)])),
     ValueError, ["baselines", "11 baselines"], {}),
    ("two-attribution-methods", ok_dir, dict(explanation_spec=dict(method={
        "integratedGradientsAttribution": {"stepCount": 5}, "sampledShapleyAttribution": {"pathCount": 5}})),
     ValueError, ["integratedGradientsAttribution", "sampledShapleyAttribution"], {}),
    ("step-count-out-of-range", ok_dir, dict(explanation_spec=dict(method={
        "integratedGradientsAttribution": {"stepCount": 0}})), ValueError, ["step_count", "got 0"], {}),
    ("path-count-out-of-range", ok_dir, dict(explanation_spec=dict(method={
        "sampledShapleyAttribution": {"pathCount": 51}})), ValueError, ["path_count", "got 51"], {}),
    ("top-k-zero", ok_dir, dict(explanation_spec=dict(top_k=0)), ValueError, ["top_k", "got 0"], {}),
    ("xrai-in-explain-signature", ok_dir, dict(explain_signature=True, explanation_spec=dict(
        method={"xraiAttribution": {"stepCount": 20}})), ValueError,
     ["explain_signature=True", "xrai", "not a graph op"], None),
    ("split-not-bool", ok_dir, dict(split="auto"), TypeError, ["split='auto'"], {}),
    ("preprocess-int-for-float", ok_dir, dict(preprocess_fn=preprocess_returning(
        lambda f: {"feats": tf.cast(f, tf.int64)}), sample={"csv": ["1,2,3,4"]}), ValueError,
     ["'feats' is int64", "float32", "tf.cast"], {}),
    ("smoothgrad-without-sigma", ok_dir, dict(explanation_spec=dict(method={
        "integratedGradientsAttribution": {"stepCount": 5, "smoothGradConfig": {"noisySampleCount": 3}}})),
     ValueError, ["noise_sigma", "got None"], {}),
    ("model-stops-gradient", ok_dir, dict(model_fn=(
        lambda feats: {"score": tf.reduce_sum(tf.stop_gradient(feats), axis=1, keepdims=True)}, FEATS)),
     ValueError, ["feature 'feats'", "`gradient` got None"], {}),
    ("model-casts-to-int", ok_dir, dict(model_fn=(lambda feats: {"score": tf.cast(
        tf.reduce_sum(tf.cast(feats, tf.int32), axis=1, keepdims=True), tf.float32)}, FEATS)),
     ValueError, ["feature 'feats'", "`gradient` got None"], {}),
    ("gradients-miss-the-output", ok_dir, dict(model_fn=(half_gradient_score, FEATS)),
     ValueError, ["would not be explained", "do not add up", "Feature 'feats'", "SampledShapley()"], {}),
    ("sample-wrong-shape", ok_dir, dict(sample={"feats": np.zeros((2, 3), "float32")}), ValueError,
     ["sample=", "'feats'", "float32[None,4]", "[3]"], {}),
    ("sample-is-a-dataset", ok_dir, dict(sample=tf.data.Dataset.from_tensor_slices(np.zeros((2, 4)))),
     TypeError, ["Dataset", "next(iter(dataset))"], {}),
    ("sample-fails-in-serving", ok_dir, dict(preprocess_fn=parse_csv, sample={"csv": ["1,2,x,4"]}),
     ValueError, ["sample=", "['csv']", "convert string: x"], {}),
    # -- what is knowable at train begin (issue: everything knowable there is checked there) --
    ("sample-empty", ok_dir, dict(sample={"feats": np.zeros((0, N_FEATURES), "float32")}), ValueError,
     ["sample= has no rows", "'feats' has shape (0, 4)"], None),
    ("sample-has-nan", ok_dir, dict(sample={"feats": [[0.5, float("nan"), 0.1, 0.2]]}), ValueError,
     ["sample= holds nan at 'feats'[0, 1]", "NaN never equals NaN"], {}),
    ("preprocess-gives-nan", ok_dir, dict(preprocess_fn=preprocess_returning(lambda f: {"feats": tf.math.log(f)}),
                                          sample={"csv": ["1,-2,3,4"]}), ValueError,
     ["output of preprocess_fn on the sample holds nan at 'feats'[0, 1]"], {}),
    ("serving-fn-returns-a-tensor", ok_dir, dict(serving_fn=(lambda feats: tf.reduce_sum(feats, 1, keepdims=True),
                                                             FEATS)), ValueError,
     ["serving_fn", "['output_0'] share no key", "return a dict"], {}),
    ("serving-fn-returns-a-list", ok_dir, dict(serving_fn=(lambda feats: [tf.reduce_sum(feats, 1, keepdims=True)],
                                                           FEATS)), ValueError,
     ["serving_fn", "['output_0'] share no key", "return a dict"], {}),
    ("serving-fn-differs", ok_dir, dict(serving_fn=(
        lambda feats: {"score": tf.sigmoid(tf.reduce_sum(feats, 1, keepdims=True))}, FEATS)), ValueError,
     ["serving_fn", "'serving_default' output 'score' differs from xai_model"], {}),
    ("model-fn-not-the-trained-model", ok_dir, dict(model_fn=(
        lambda feats: {"score": tf.sigmoid(tf.reduce_sum(feats, 1, keepdims=True))}, FEATS)), ValueError,
     ["model_fn (exported as 'xai_model') does not compute what the model being trained computes", "'score'"], {}),
    ("monitor-direction-unknown", ok_dir, dict(monitor="custom_score", save_best_only=True), ValueError,
     ["monitor='custom_score'", "mode='min' or mode='max'"], {}),
    ("validation-freq-never-validates", ok_dir, dict(save_best_only=True), ValueError,
     ["monitor='val_loss' never appears", "validation_freq=5", "epochs=1"],
     {"fit": dict(validation_split=0.25, validation_freq=5)}),
]


def _doc_stages():
    """`{case id: the "when" column}` of docs/bad_inputs.md's table."""
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "bad_inputs.md")).read()
    table = doc.split("| id |", 1)[1].split("\n\n", 1)[0]  # the first table: the callback's cases
    rows = (line.split("|") for line in table.splitlines() if line.startswith("| `"))
    return {cells[1].strip().strip("`"): cells[4].strip() for cells in rows}


DOC_STAGES = _doc_stages()


@pytest.fixture(scope="module")
def model():
    return TRAINED


@pytest.fixture(scope="module")
def data():
    return tabular_data(rows=16)


@pytest.mark.parametrize(
    "make_dir, kwargs, error, fragments, fit_kwargs",
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_fails_before_training(model, data, tmp_path, request, make_dir, kwargs, error, fragments,
                                         fit_kwargs):
    export_dir = make_dir(tmp_path)
    stage = "constructor"
    with pytest.raises(error) as info:
        callback = XaiExportCallback(export_dir, **kwargs)
        stage = "train begin"
        assert fit_kwargs is not None, "the constructor should have raised"
        counter = BatchCounter()
        callbacks = [counter]
        if fit_kwargs.get("backup"):
            callbacks.append(keras.callbacks.BackupAndRestore(str(tmp_path / fit_kwargs["backup"])))
        callbacks.append(callback)
        try:
            model.fit(*data, epochs=1, verbose=0, callbacks=callbacks, **fit_kwargs.get("fit", {}))
        finally:
            assert counter.batches == 0
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    # docs/bad_inputs.md says when each case is refused; it must be true.
    assert DOC_STAGES[request.node.callspec.id].startswith(stage), (stage, DOC_STAGES[request.node.callspec.id])


def test_catalogue_has_at_least_25_cases_and_matches_the_docs():
    assert len(CASES) >= 25
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "bad_inputs.md")).read()
    missing = [case[0] for case in CASES if f"`{case[0]}`" not in doc]
    assert not missing, f"cases not in docs/bad_inputs.md: {missing}"


def test_unbuilt_model_is_refused_before_writing(tmp_path):
    # fit() builds a model before callbacks run, so this case belongs to the engine.
    model = keras.Sequential([keras.layers.Dense(1)], name="never_built")
    with pytest.raises(ValueError, match="has no defined inputs") as info:
        export_explainable_model(model, str(tmp_path / "m"))
    assert "never_built" in str(info.value)
    assert not (tmp_path / "m").exists()
