"""Keras backends: the TensorFlow function `xai_model` calls, whatever `fit` ran on.

The export is always a TensorFlow SavedModel. On the TensorFlow backend the
Keras model is already TensorFlow; on JAX and PyTorch a converter builds a
TensorFlow copy of it once, before training, and brings that copy's weights
up to date (and checks it against the live model) before every write. The
export engine sees one interface, `ModelConverter`:

- `signature_function(name)`: the model as a `SignatureFunction` (same input
  keys and output names on every backend);
- `sync()`: the current weights into the TensorFlow copy, then a check that
  it computes what the live model computes.

Routes (measured and explained in docs/compatibility.md):
- tensorflow: the model itself (`tensorflow.py`).
- jax: jax2tf in this process (`jax.py`); when that fails, a TensorFlow
  subprocess (`tf_subprocess.py`).
- torch: a TensorFlow subprocess (`torch.py`): Keras' own torch export needs
  torch_xla and is not differentiable in TensorFlow.

Example:

```python
converter = xai_callback.backends.for_model(model)
xai_model = converter.signature_function("xai_model")   # before training
converter.sync()                                         # before each write
```
"""

import importlib
import warnings

import numpy as np

from xai_callback._keras import keras_backend
from xai_callback.errors import ModelConversionError
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL

SUPPORTED = ("tensorflow", "jax", "torch")


def for_model(model, *, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
    """The `ModelConverter` for `model` on its backend.

    Args:
        model: a Keras model (Keras 3 on any supported backend, or tf-keras).
        rtol, atol: tolerances of the check that the TensorFlow copy computes
            what the live model computes. Default to the exporter's.

    Raises:
        ModelConversionError: the backend cannot export (e.g. "numpy").
    """
    import tensorflow as tf

    # A TensorFlow Trackable is TensorFlow whatever KERAS_BACKEND says
    # (tf-keras models, Keras 3 models on the TensorFlow backend).
    backend = "tensorflow" if isinstance(model, tf.__internal__.tracking.Trackable) else keras_backend()
    if backend not in SUPPORTED:
        raise ModelConversionError(
            f"The Keras backend {backend!r} cannot export a SavedModel; supported "
            f"backends are {list(SUPPORTED)} (set KERAS_BACKEND before importing keras)."
        )
    module = importlib.import_module(f"xai_callback.backends.{backend}")
    return module.converter(model, rtol=rtol, atol=atol)


class numpy_copy_notice_hidden(warnings.catch_warnings):
    """Hides NumPy 2's notice about Keras variables' `__array__` (no `copy` argument).

    On JAX and PyTorch, NumPy warns each time Keras turns a variable into an
    array (`get_weights()`, a config holding the learning rate): noise we
    cause but cannot fix.
    """

    def __enter__(self):
        result = super().__enter__()
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        return result


def weights_of(model):
    """Copies of `model.get_weights()`, without NumPy 2's notice on JAX/PyTorch."""
    with numpy_copy_notice_hidden():
        return [np.array(w, copy=True) for w in model.get_weights()]


__all__ = ["SUPPORTED", "current", "for_model", "weights_of"]
