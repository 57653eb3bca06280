"""The TensorFlow side of route 2: a `.keras` file -> SavedModel of its `xai_model`.

Run by `tf_subprocess.run_worker` with `KERAS_BACKEND=tensorflow`:

    python -m xai_callback.backends.tf_worker MODEL.keras WORKDIR

Writes `WORKDIR/core` (a SavedModel whose `call` is the model's signature
function, whose `model_variables` are its weights, in `model.weights` order,
and whose `resources` are the lookup tables it reads; the parent copies the
live weights in before use) and `WORKDIR/report.json` (`paths` of the
weights and `output_names`, or `error` and the `layer` it came from).
"""

import importlib
import json
import os
import sys
import zipfile


def main(model_path, workdir):
    if os.environ.get("KERAS_BACKEND") != "tensorflow":
        raise SystemExit("tf_worker runs with KERAS_BACKEND=tensorflow")
    import keras
    import tensorflow as tf

    from xai_callback.backends.base import describe_layer, error_gist, failing_layer, innermost_layer
    from xai_callback.backends.tf_subprocess import CORE_DIR, REPORT_FILE
    from xai_callback.signatures.functions import resources_of
    from xai_callback.signatures.keras_models import model_signature_function

    def report(**values):
        with open(os.path.join(workdir, REPORT_FILE), "w") as f:
            json.dump(values, f)

    with zipfile.ZipFile(model_path) as archive:
        config = json.loads(archive.read("config.json"))
    try:
        import_custom_modules(config)
        # The file was written a moment ago from the user's own model:
        # Lambda layers' code is the user's, so safe mode would only refuse them.
        # Loading restores what is not a weight too (adapted statistics, vocabularies).
        model = keras.saving.load_model(model_path, compile=False, safe_mode=False)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        # Building the model calls every layer: the failing one is on the traceback.
        layer, cause = innermost_layer(
            e, lambda obj: isinstance(obj, keras.layers.Layer) and not isinstance(obj, keras.Model))
        if layer is not None:
            return report(error=f"{describe_layer(layer)} fails on TensorFlow with "
                                f"{type(cause).__name__}: {error_gist(cause)}", layer=layer.name)
        name = undeserializable_layer(config)
        where = f"layer {name[0]!r} ({name[1]})" if name else "the model"
        return report(error=f"{where} cannot be built: {type(e).__name__}: {error_gist(e)}",
                      layer=name[0] if name else None)
    try:
        fn = model_signature_function(model, name="xai_model")
        fn.concrete_function()
        module = tf.Module()
        module.call = fn.tf_function
        module.model_variables = [v.value for v in model.weights]
        module.resources = resources_of([model])
        tf.saved_model.save(module, os.path.join(workdir, CORE_DIR))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        cause = e.__cause__ or e
        layer = failing_layer(model, cause, try_layer=_trace_layer)
        where = describe_layer(layer) if layer is not None else f"model {model.name!r}"
        return report(error=f"{where} fails on TensorFlow with {type(cause).__name__}: {error_gist(cause)}",
                      layer=None if layer is None else layer.name)
    report(paths=[v.path for v in model.weights], output_names=list(fn.output_names or []))


def _trace_layer(layer, specs):
    import tensorflow as tf

    tf.function(lambda x: layer(x, training=False), autograph=False).get_concrete_function(specs)


def import_custom_modules(config):
    """Imports every non-Keras module the model config names.

    Keras imports only its own modules when loading; custom classes are
    found once their module has run its `register_keras_serializable`.

    Raises:
        ImportError: naming the module that does not import here.
    """
    modules = set()

    def visit(value):
        if isinstance(value, dict):
            module = value.get("module")
            if isinstance(module, str) and module.split(".")[0] not in ("keras", "builtins"):
                modules.add(module)
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(config)
    for module in sorted(modules):
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - named for the user
            raise ImportError(
                f"module {module!r}, which defines part of the model, does not import in "
                f"the TensorFlow process: {type(e).__name__}: {e}"
            ) from e


def undeserializable_layer(config):
    """`(name, class_name)` of the first layer whose config does not build, or None."""
    import keras

    for layer in (config.get("config") or {}).get("layers", []):
        try:
            keras.saving.deserialize_keras_object(layer, safe_mode=False)
        except Exception:  # noqa: BLE001 - this layer is the one
            return layer.get("config", {}).get("name") or layer.get("name"), layer.get("class_name")
    return None


if __name__ == "__main__":
    main(*sys.argv[1:3])
