"""Arguments are what they say: every boolean, choice and number of the callback
and the engine is checked for its type at construction, by every route that
builds them (constructor, from_config, Keras' deserialize_keras_object, Hydra)."""

import os

import keras
import numpy as np
import pytest

from xai_callback import ExplainableExporter, XaiExportCallback
from xai_callback.callbacks.policy import _EXPORTER_ARGS

from models import mlp

# argument -> a wrongly typed value a config could carry
CALLBACK_CASES = {
    "monitor": 3,
    "mode": 1,
    "save_best_only": "false",
    "min_delta": "0.1",
    "initial_value_threshold": "0.5",
    "export_on_improvement": "no",
    "verbose": "1",
    "strict": "yes",
    "publish": True,
}
ENGINE_CASES = {
    "extra_signatures": ["serve2"],
    "output_key": 3,
    "sample": {1, 2},
    "explanation_spec": 5,
    "legacy_metadata": "no",
    "track": "table",
    "verify": "no",
    "rtol": "1e-4",
    "atol": [1e-5],
    "overwrite": "false",
    "versioned": "yes",
    "keep": "3",
    "split": "true",
    "store_sample": 0,
    "explain_signature": "false",
}
# Arguments whose values are functions (checked when traced, in prepare()).
FUNCTION_ARGS = {"serving_fn", "preprocess_fn", "model_fn"}


def test_every_documented_argument_has_a_wrong_type_case():
    assert set(ENGINE_CASES) | FUNCTION_ARGS == set(_EXPORTER_ARGS)


def _names_value(error, name, value):
    message = str(error.value)
    assert name in message and repr(value) in message, message


@pytest.mark.parametrize("name", sorted(CALLBACK_CASES) + sorted(ENGINE_CASES))
def test_callback_refuses_a_wrongly_typed_argument(tmp_path, name):
    value = CALLBACK_CASES.get(name, ENGINE_CASES.get(name))
    kwargs = {name: value}
    if name in ("export_on_improvement", "strict", "publish"):
        kwargs["save_best_only"] = True  # so only the type is wrong
    with pytest.raises((TypeError, ValueError)) as error:
        XaiExportCallback(str(tmp_path / "export"), **kwargs)
    _names_value(error, name, value)


@pytest.mark.parametrize("name", sorted(ENGINE_CASES))
def test_engine_refuses_a_wrongly_typed_argument(name):
    value = ENGINE_CASES[name]
    with pytest.raises((TypeError, ValueError)) as error:
        ExplainableExporter(mlp(), **{name: value})
    _names_value(error, name, value)


@pytest.mark.parametrize("spelling", ["false", "False", "no", "0", "off", ""])
def test_overwrite_as_a_string_keeps_the_users_folder(tmp_path, spelling):
    """The reported defect: overwrite="false" replaced a folder with the user's file."""
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(TypeError, match="overwrite") as error:
        XaiExportCallback(str(folder), overwrite=spelling)
    assert repr(spelling) in str(error.value)
    assert (folder / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("name,value", [("verify", "no"), ("legacy_metadata", "no"),
                                        ("overwrite", "false")])
def test_from_config_and_keras_deserialization_refuse_strings_for_booleans(tmp_path, name, value):
    config = XaiExportCallback(str(tmp_path / "export")).get_config()
    config[name] = value
    with pytest.raises(TypeError, match=name):
        XaiExportCallback.from_config(config)
    serialized = keras.saving.serialize_keras_object(XaiExportCallback(str(tmp_path / "export")))
    serialized["config"][name] = value
    with pytest.raises(TypeError, match=name):
        keras.saving.deserialize_keras_object(serialized)


def test_hydra_instantiate_refuses_a_string_for_a_boolean(tmp_path):
    pytest.importorskip("hydra", reason="hydra-core (in the test extra)")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    section = OmegaConf.create({"_target_": "xai_callback.XaiExportCallback",
                                "export_dir": str(tmp_path / "export"), "overwrite": "false"})
    with pytest.raises(Exception) as error:  # Hydra wraps the error in its own type
        instantiate(section)
    assert "overwrite" in str(error.value) and "'false'" in str(error.value)


def test_real_booleans_and_numbers_pass_also_as_numpy_values(tmp_path):
    callback = XaiExportCallback(
        str(tmp_path / "export"), save_best_only=np.bool_(True), min_delta=np.float32(0.5),
        verbose=True, overwrite=np.bool_(False), versioned=True, keep=np.int64(2), rtol=1)
    assert callback.policy.export_options["overwrite"] is False
    assert callback.policy.min_delta == 0.5 and callback.policy.verbose == 1
    assert os.fspath(callback.export_dir).endswith("export")
