"""Callbacks: thin adapters of `ExportPolicy` to Keras' `fit`.

`XaiExportCallback` is the adapter for the Keras in use: Keras 3, or tf-keras
when `TF_USE_LEGACY_KERAS=1` is set (as TensorFlow itself decides).
"""

from xai_callback._keras import use_legacy_keras
from xai_callback.callbacks.policy import ExportPolicy

if use_legacy_keras():
    from xai_callback.callbacks.tf_keras import XaiExportCallback
else:
    from xai_callback.callbacks.keras3 import XaiExportCallback

__all__ = ["ExportPolicy", "XaiExportCallback"]
