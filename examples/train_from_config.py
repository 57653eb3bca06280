"""Train and export from a training config file (YAML or JSON).

The config builds the model, the data, `compile`, `fit` and the callbacks;
`XaiExportCallback` (like any Keras callback) is given as a Keras-serialized
object `{"class_name": "xai_callback>XaiExportCallback", "config": {...}}`,
built by Keras' own `deserialize_keras_object`. Functions are import strings
("module:function"); examples/ is put on `sys.path` so `config_functions` is
importable. With `TF_USE_LEGACY_KERAS=1` the same config trains with tf-keras.
Sections written for Hydra (`{"_target_": ..., **arguments}`, see
hydra/train.yaml and train_with_hydra.py) are built by `hydra.utils.instantiate`.

    python examples/train_from_config.py examples/train_config.yaml --export-dir /tmp/from_config
"""

import argparse
import importlib
import json
import os
import sys

import tensorflow as tf

import xai_callback  # noqa: F401 - registers XaiExportCallback with Keras
from xai_callback.imports import resolve_import_string

EXAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))


def load_config(path):
    """The config dict of a `.yaml`/`.yml` or `.json` file."""
    with open(path) as f:
        if path.endswith((".yaml", ".yml")):
            import yaml

            return yaml.safe_load(f)
        return json.load(f)


def keras_module():
    """The Keras `tf.keras` resolves to: `keras` (3), or `tf_keras` (2) when
    `TF_USE_LEGACY_KERAS=1` was set before TensorFlow was imported."""
    return importlib.import_module("tf_keras" if tf.keras.__name__.startswith("tf_keras") else "keras")


def build_callback(spec):
    """A Keras callback from `{"class_name", "config"}`.

    Keras' built-in callbacks (EarlyStopping, ...) by class name; anything
    registered for serialization, such as "xai_callback>XaiExportCallback",
    through Keras' own `deserialize_keras_object`.
    """
    if "_target_" in spec:
        return instantiate(spec)
    keras = keras_module()
    builtin = getattr(keras.callbacks, spec["class_name"], None)
    if isinstance(builtin, type):  # Built-ins have no from_config.
        return builtin(**spec.get("config", {}))
    return keras.saving.deserialize_keras_object(spec)


def instantiate(section):
    """A Hydra-style section `{"_target_": "module.name", **arguments}` built by Hydra."""
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate(section, _convert_="all")


def _call(section, where):
    if "_target_" in section:
        return instantiate(section)
    fn = resolve_import_string(section["function"], f"{where}.function")
    return fn(**section.get("args", {}))


def _has_target(value):
    """Whether a Hydra `_target_` appears anywhere in `value`."""
    if isinstance(value, dict):
        return "_target_" in value or any(_has_target(v) for v in value.values())
    return isinstance(value, list) and any(_has_target(v) for v in value)


def _with_export_dir(spec, export_dir):
    """`spec` of an XaiExportCallback with `export_dir` replaced (Keras or Hydra form)."""
    if spec.get("_target_", "").endswith("XaiExportCallback"):
        return {**spec, "export_dir": export_dir}
    if spec.get("class_name", "").endswith("XaiExportCallback"):
        return {**spec, "config": {**spec["config"], "export_dir": export_dir}}
    return spec


def train_from_config(config, export_dir=None):
    """Builds everything the config describes and runs `fit`.

    Example:

    ```python
    model, history, callbacks = train_from_config(load_config("train_config.yaml"))
    ```

    Args:
        config: the config dict (see train_config.yaml).
        export_dir: overrides `export_dir` of every `XaiExportCallback`.

    Returns:
        `(model, history, callbacks)`.
    """
    keras = keras_module()
    if EXAMPLES_DIR not in sys.path:
        sys.path.insert(0, EXAMPLES_DIR)
    if config.get("seed") is not None:
        keras.utils.set_random_seed(config["seed"])
    x, y = _call(config["data"], "data")
    model = _call(config["model"], "model")
    compile_args = dict(config.get("compile", {}))
    if _has_target(compile_args):
        compile_args = instantiate(compile_args)  # optimizer and metrics as Hydra targets
    # Resolved here: tf-keras' compile maps over a dict optimizer's leaves.
    compile_args["optimizer"] = keras.optimizers.get(compile_args.get("optimizer", "rmsprop"))
    compile_args["metrics"] = [keras.metrics.get(m) for m in compile_args.get("metrics", [])]
    model.compile(**compile_args)
    specs = config.get("callbacks", [])
    if export_dir is not None:
        specs = [_with_export_dir(s, export_dir) for s in specs]
    callbacks = [build_callback(spec) for spec in specs]
    history = model.fit(x, y, callbacks=callbacks, **config.get("fit", {}))
    return model, history, callbacks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="YAML or JSON training config")
    parser.add_argument("--export-dir", help="overrides the callbacks' export_dir")
    args = parser.parse_args(argv)
    _, history, callbacks = train_from_config(load_config(args.config), args.export_dir)
    report(history, callbacks)


def report(history, callbacks):
    """Prints the exports written and the training history."""
    for callback in callbacks:
        if getattr(callback, "last_export", None) is not None:
            print(callback.last_export.describe())
    print({k: [round(v, 4) for v in vs] for k, vs in history.history.items()})


if __name__ == "__main__":
    main()
