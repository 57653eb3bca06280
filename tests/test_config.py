"""Training configs: get_config/from_config, Keras serialization, import strings,
Hydra's instantiate, and training runs built entirely from examples/train_config.yaml
and examples/hydra/train.yaml."""

import importlib.util
import inspect
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import XaiExportCallback
from xai_callback.callbacks.config import resolve_functions, serialize_options
from xai_callback.callbacks.policy import _EXPORTER_ARGS, ExportPolicy
from xai_callback.spec import ExplanationSpec, Feature, SampledShapley

from models import N_FEATURES, mlp, tabular_data

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Module-level objects, so configs can name them as "test_config:<name>".
LINE_SPEC = [tf.TensorSpec([None], tf.string, name="line")]
FEATS_SPEC = tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")
LOOKUP = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["a"], [1]), default_value=0)


def parse_line(line):
    """`"1,2,3,4"` -> `{"feats": float32[batch, 4]}`."""
    columns = tf.strings.split(line, ",").to_tensor(shape=[None, N_FEATURES])
    return {"feats": tf.strings.to_number(columns, tf.float32)}


@tf.function(input_signature=[FEATS_SPEC])
def feature_mean(feats):
    return {"mean": tf.reduce_mean(feats, axis=1)}


def identity_features(feats):
    return {"feats": feats}


SPEC = ExplanationSpec(
    features=[Feature("feats", baselines=[0.0])], output="score", method=SampledShapley(path_count=7), top_k=1
)
LINES = ["0.5,-1,0.25,2", "-0.3,0.8,1.1,-0.6"]

# Every argument set to a non-default value.
EVERY_ARGUMENT = dict(
    monitor="val_auc",
    mode="max",
    save_best_only=True,
    min_delta=0.01,
    initial_value_threshold=0.2,
    export_on_improvement=True,
    verbose=1,
    strict=True,
    publish="best",
    serving_fn=(parse_line, LINE_SPEC),
    preprocess_fn="test_config:parse_line_with_signature",
    model_fn=(identity_features, {"feats": FEATS_SPEC}),
    extra_signatures={"mean": feature_mean},
    output_key="score",
    sample={"line": tf.constant(LINES)},
    explanation_spec=SPEC,
    legacy_metadata=True,
    track=["test_config:LOOKUP"],  # objects are configurable by import string only
    verify=False,
    rtol=1e-3,
    atol=1e-4,
    overwrite=True,
    versioned=True,
    keep=3,
    split=False,
    store_sample=False,
    explain_signature=True,
)

parse_line_with_signature = tf.function(parse_line, input_signature=LINE_SPEC)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    export_dir = str(tmp_path_factory.mktemp("config") / "export")
    return XaiExportCallback(export_dir, **EVERY_ARGUMENT)


def test_config_covers_every_constructor_argument(full):
    config = full.get_config()
    policy_args = [p for p in inspect.signature(ExportPolicy.__init__).parameters
                   if p not in ("self", "export_options")]
    assert sorted(config) == sorted(set(policy_args) | set(_EXPORTER_ARGS))


def test_config_is_plain_json_with_import_strings(full):
    config = json.loads(json.dumps(full.get_config()))  # plain data only
    assert config["serving_fn"] == [
        "test_config:parse_line", [{"shape": [None], "dtype": "string", "name": "line"}]]
    assert config["preprocess_fn"] == "test_config:parse_line_with_signature"
    assert config["model_fn"] == [
        "test_config:identity_features", {"feats": {"shape": [None, 4], "dtype": "float32", "name": "feats"}}]
    assert config["extra_signatures"] == {"mean": "test_config:feature_mean"}
    assert config["track"] == ["test_config:LOOKUP"]
    assert config["sample"] == {"line": LINES}
    assert ExplanationSpec.from_config(config["explanation_spec"]) == SPEC


def test_from_config_round_trips_and_resolves_the_same_objects(full):
    config = json.loads(json.dumps(full.get_config()))
    rebuilt = XaiExportCallback.from_config(config)
    assert rebuilt.get_config() == full.get_config()
    resolved = resolve_functions(rebuilt.policy.export_options)
    assert resolved["serving_fn"] == (parse_line, LINE_SPEC)
    assert resolved["preprocess_fn"] is parse_line_with_signature
    assert resolved["model_fn"] == (identity_features, {"feats": FEATS_SPEC})
    assert resolved["extra_signatures"] == {"mean": feature_mean}
    assert resolved["track"][0] is LOOKUP


def test_keras_serialization_round_trip(full):
    serialized = keras.saving.serialize_keras_object(full)
    assert serialized["registered_name"] == "xai_callback>XaiExportCallback"
    assert serialized["class_name"] == "XaiExportCallback"
    assert serialized["module"] == "xai_callback.callbacks.keras3"
    rebuilt = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert isinstance(rebuilt, XaiExportCallback)
    assert rebuilt.get_config() == full.get_config()


def test_deserialize_from_a_hand_written_config(tmp_path):
    config = {
        "class_name": "xai_callback>XaiExportCallback",
        "config": {"export_dir": str(tmp_path / "export"), "monitor": "val_auc", "save_best_only": True,
                   "preprocess_fn": "test_config:parse_line_with_signature",
                   "explanation_spec": {"method": "sampled_shapley"}},
    }
    callback = keras.saving.deserialize_keras_object(config)
    assert isinstance(callback, XaiExportCallback)
    assert callback.policy.monitor == "val_auc" and callback.policy.save_best_only
    assert ExplanationSpec.coerce(callback.get_config()["explanation_spec"]).method == SampledShapley()


@pytest.mark.parametrize(
    "value, message",
    [
        ("no_such_module_xyz:parse", r"preprocess_fn='no_such_module_xyz:parse': cannot import module"),
        ("test_config:no_such_function", r"preprocess_fn='test_config:no_such_function'.*no attribute"),
        ("test_config.parse_line", r"preprocess_fn='test_config.parse_line' is not an import string"),
    ],
)
def test_bad_import_string_fails_at_train_begin_before_any_batch(tmp_path, value, message):
    callback = XaiExportCallback(str(tmp_path / "export"), preprocess_fn=value)  # not resolved yet
    model = mlp()
    x, y = tabular_data(rows=32)
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert int(model.optimizer.iterations.numpy()) == 0


def test_function_without_import_string_is_named_by_get_config(tmp_path):
    callback = XaiExportCallback(str(tmp_path / "export"), preprocess_fn=(lambda line: parse_line(line), LINE_SPEC))
    with pytest.raises(ValueError, match=r"preprocess_fn=<function .*<lambda>.* cannot be written to a config"):
        callback.get_config()


def test_untracked_object_without_import_string_is_named(tmp_path):
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["b"], [2]), default_value=0)
    with pytest.raises(ValueError, match=r"track\[0\]=.*StaticHashTable.* cannot be written to a config"):
        serialize_options({"track": [table]})


def test_malformed_input_signature_in_config_is_named():
    with pytest.raises(ValueError, match=r"\{'shape': \[None\]\} is not a TensorSpec"):
        resolve_functions({"preprocess_fn": ["test_config:parse_line", [{"shape": [None]}]]})


# -- training from a config file --------------------------------------------------


def _load_example():
    path = os.path.join(REPO_DIR, "examples", "train_from_config.py")
    spec = importlib.util.spec_from_file_location("train_from_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["keras", "hydra"])
def trained_from_config(request, tmp_path_factory):
    """The example run from examples/train_config.yaml (Keras-serialized objects)
    or examples/hydra/train.yaml (Hydra `_target_`s, composed by Hydra)."""
    example = _load_example()
    export_dir = str(tmp_path_factory.mktemp(f"from_{request.param}") / "export")
    if request.param == "keras":
        pytest.importorskip("yaml", reason="the example config is YAML (pyyaml, extra xai-callback[yaml])")
        config = example.load_config(os.path.join(REPO_DIR, "examples", "train_config.yaml"))
        spec = config["callbacks"][0]["config"]["explanation_spec"]
    else:
        pytest.importorskip("hydra", reason="hydra-core (in the test extra)")
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        with initialize_config_dir(config_dir=os.path.join(REPO_DIR, "examples", "hydra"), version_base=None):
            config = OmegaConf.to_container(compose("train", overrides=[f"export_dir={export_dir}"]), resolve=True)
        spec = config["callbacks"][0]["explanation_spec"]
    model, history, callbacks = example.train_from_config(config, export_dir=export_dir)
    return spec, model, history, callbacks, export_dir


def test_config_file_builds_the_callbacks(trained_from_config):
    spec, _, _, callbacks, _ = trained_from_config
    assert [type(c).__name__ for c in callbacks] == ["XaiExportCallback", "EarlyStopping"]
    ours = callbacks[0]
    assert isinstance(ours, XaiExportCallback)
    assert ours.policy.monitor == "val_auc" and ours.policy.direction == "max"
    assert ExplanationSpec.coerce(ours.get_config()["explanation_spec"]) == ExplanationSpec.coerce(spec)


def test_config_file_training_exports_the_best_epoch(trained_from_config):
    _, model, history, callbacks, export_dir = trained_from_config
    val_auc = history.history["val_auc"]
    loaded = tf.saved_model.load(export_dir)
    assert sorted(loaded.signatures) == ["serving_default", "xai_model", "xai_preprocess"]
    record = callbacks[0].last_export.provenance["training"]
    assert record["epoch"] == int(np.argmax(val_auc)) + 1
    assert record["monitor_value"] == pytest.approx(max(val_auc))
    metadata = callbacks[0].last_export.metadata
    assert metadata["inputs"]["features"]["inputTensorName"] == "features"
    assert callbacks[0].last_export.parameters == {"integratedGradientsAttribution": {"stepCount": 25}}
    # The example's seeded run improves every epoch, so the live model holds
    # the exported (best) weights.
    assert int(np.argmax(val_auc)) == len(val_auc) - 1, val_auc
    lines = tf.constant(["0.5,-1.0,0.25,2.0", "-0.3,0.8,1.1,-0.6"])
    got = loaded.signatures["serving_default"](csv_line=lines)["score"].numpy()
    x = np.array([[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, 1.1, -0.6]], "float32")
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


# -- Hydra's instantiate ------------------------------------------------------------


def test_hydra_instantiate_builds_the_callback_the_constructor_builds(tmp_path):
    """Nested sections arrive as OmegaConf DictConfig/ListConfig (no `_convert_`)."""
    pytest.importorskip("hydra", reason="hydra-core (in the test extra)")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    arguments = {
        "export_dir": str(tmp_path / "export"), "monitor": "loss", "save_best_only": True,
        "preprocess_fn": "test_config:parse_line_with_signature", "sample": {"line": LINES},
        "explanation_spec": SPEC.get_config(),
    }
    section = OmegaConf.create({"_target_": "xai_callback.XaiExportCallback", **arguments})
    callback = instantiate(section)
    assert isinstance(callback, XaiExportCallback)
    assert callback.get_config() == XaiExportCallback(**arguments).get_config()
    model = mlp()
    x, y = tabular_data(rows=32)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert sorted(tf.saved_model.load(arguments["export_dir"]).signatures) == [
        "serving_default", "xai_model", "xai_preprocess"]
    assert callback.last_export.parameters == {"sampledShapleyAttribution": {"pathCount": 7}, "topK": 1}
