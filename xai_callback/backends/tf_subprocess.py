"""Route 2: a TensorFlow subprocess rebuilds the model from its `.keras` file.

The `.keras` format is backend-neutral. Once per conversion (before
training) the model is saved as a `.keras` file (config, weights and the
state that is not a weight: adapted Normalization statistics, lookup and
TextVectorization vocabularies), a fresh Python process on the TensorFlow
backend (`tf_worker.py`) loads it and saves its `xai_model` function as a
SavedModel (the lookup tables with it), and this process loads that back: an
ordinary TensorFlow graph with TensorFlow's own gradients, whose variables
then receive the live weights before it is used and before every write. The
temporary files are removed once loaded, and the process start-up (seconds)
is paid once per `fit`, not per export.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

from xai_callback.backends import numpy_copy_notice_hidden, weights_of
from xai_callback.backends.base import MirroredConverter, describe_layer, layers_of
from xai_callback.errors import ModelConversionError
from xai_callback.signatures.functions import SignatureFunction
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL

WORKER_MODULE = "xai_callback.backends.tf_worker"
MODEL_FILE = "model.keras"
REPORT_FILE = "report.json"
CORE_DIR = "core"
# Loading TensorFlow and the model takes seconds; a hang must not block fit.
WORKER_TIMEOUT_S = 600


class SubprocessConverter(MirroredConverter):
    """The model rebuilt on the TensorFlow backend in a subprocess, reloaded here.

    Example:

    ```python
    fn = SubprocessConverter(model, live_gradients, backend="torch").signature_function()
    ```

    Args:
        model: a built Keras model whose classes are importable (not defined
            in `__main__`): the subprocess imports them by module name.
        live_gradients: see `MirroredConverter`.
        backend: the Keras backend of `model` ("jax" or "torch").
        rtol, atol: tolerances of the live-model checks.
    """

    route = "TensorFlow subprocess"

    @property
    def mismatch_advice(self):
        jax = " or, on JAX, the in-process route (XAI_CALLBACK_JAX_ROUTE=jax2tf);" if self.backend == "jax" else ""
        return (
            " The copy is the model loaded from its .keras file, which holds each layer's "
            "config, weights and saved state (adapted statistics, vocabularies): a custom layer "
            "that keeps state anywhere else loses it. Put that state in the layer's get_config() "
            "or its weights (add_weight(trainable=False)), or save it with save_own_variables/"
            f"save_assets;{jax} or train on KERAS_BACKEND=tensorflow; or pass model_fn= with a "
            "TensorFlow function of your own."
        )

    def __init__(self, model, live_gradients, backend, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
        super().__init__(model, live_gradients, rtol=rtol, atol=atol)
        self.backend = backend

    def _convert(self, name):
        check_importable(self.model, self.backend)
        workdir = tempfile.mkdtemp(prefix="xai-callback-convert-")
        try:
            model_path = os.path.join(workdir, MODEL_FILE)
            save_model(self.model, model_path)
            report = run_worker(model_path, workdir, self.backend)
            paths = [v.path for v in self.model.weights]
            outputs = list(self.keras_fn.output_names or [])
            if _layer_paths(report["paths"]) != _layer_paths(paths) or report["output_names"] != outputs:
                raise ModelConversionError(
                    f"The model rebuilt on TensorFlow has the weights {report['paths']} and "
                    f"outputs {report['output_names']}, the {self.backend} model {paths} and "
                    f"{outputs}: weights cannot be copied between them."
                )
            # Kept: the loaded object owns the variables its function captures.
            self._restored = tf.saved_model.load(os.path.join(workdir, CORE_DIR))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self._variables = list(self._restored.model_variables)
        self._assign()  # the worker's model has fresh initial weights
        restored, keys = self._restored, list(self.keras_fn.input_specs)

        def call_restored(**values):
            return restored.call(*[values[k] for k in keys])

        mirror = SignatureFunction(
            call_restored, dict(self.keras_fn.input_specs), output_names=self.keras_fn.output_names, name=name
        )
        mirror.owners.append(restored)  # its lookup tables are saved with the export
        mirror.concrete_function()
        return mirror

    def _assign(self):
        for variable, value in zip(self._variables, weights_of(self.model)):
            variable.assign(value)


def _layer_paths(paths):
    """`layer/variable` of each weight path. The model's own prefix depends on where the
    weights were created (a Sequential built by `fit` says `sequential/dense/kernel`,
    the same model loaded from its file `dense/kernel`); the order and the layer-local
    names are what a copy needs to match."""
    return ["/".join(path.split("/")[-2:]) for path in paths]


def save_model(model, path):
    """`model` as a `.keras` file: config, weights, and the layers' own state
    (`save_own_variables`, `save_assets`); the worker ignores compile settings."""
    with numpy_copy_notice_hidden():
        model.save(path)


def check_importable(model, backend):
    """Refuses classes the subprocess cannot import (defined in `__main__`).

    Raises:
        ModelConversionError: naming the layer and its class.
    """
    for layer in [model, *layers_of(model)]:
        if type(layer).__module__ == "__main__":
            raise ModelConversionError(
                f"The {backend} model cannot be rebuilt on TensorFlow: {describe_layer(layer)} "
                "is defined in __main__, which the TensorFlow process that writes the export "
                "cannot import. Move the class into a module (and register it with "
                "@keras.saving.register_keras_serializable()).",
                layer=layer.name,
            )


def worker_env():
    """This environment on the TensorFlow backend, with this process's import path."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env.pop("TF_USE_LEGACY_KERAS", None)
    # Custom layers import in the worker exactly as they did here.
    paths = [os.getcwd()] + [p for p in sys.path if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The worker only traces and saves: leave the accelerators to training.
    env["CUDA_VISIBLE_DEVICES"] = "-1"
    return env


def run_worker(model_path, workdir, backend):
    """Runs `tf_worker` on the `.keras` file `model_path`; returns its report or
    raises naming the layer."""
    command = [sys.executable, "-m", WORKER_MODULE, model_path, workdir]
    try:
        done = subprocess.run(
            command, env=worker_env(), timeout=WORKER_TIMEOUT_S,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
    except subprocess.TimeoutExpired as e:
        raise ModelConversionError(
            f"Rebuilding the {backend} model on TensorFlow did not finish in "
            f"{WORKER_TIMEOUT_S} s. Output:\n{_tail(e.output)}"
        ) from None
    report_path = os.path.join(workdir, REPORT_FILE)
    if not os.path.exists(report_path):
        raise ModelConversionError(
            f"Rebuilding the {backend} model on TensorFlow failed (exit {done.returncode}). "
            f"Output:\n{_tail(done.stdout)}"
        )
    with open(report_path) as f:
        report = json.load(f)
    if report.get("error"):
        raise ModelConversionError(
            f"The {backend} model cannot be rebuilt on TensorFlow: {report['error']}",
            layer=report.get("layer"),
        )
    return report


def _tail(output):
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    return (output or "")[-3000:]
