"""`XaiExportCallback` for tf-keras (Keras 2) `fit`.

Selected by `xai_callback.XaiExportCallback` when `TF_USE_LEGACY_KERAS=1`;
a Keras 3 callback crashes inside tf-keras `fit`, so tf-keras needs its own
base class. Everything else is the shared `ExportPolicy`.
"""

import tf_keras

from xai_callback.callbacks.adapter import PolicyCallback


@tf_keras.saving.register_keras_serializable(package="xai_callback")
class XaiExportCallback(PolicyCallback, tf_keras.callbacks.Callback):
    """Writes an explanation-ready SavedModel at train end or at the best epoch.

    Same arguments and behaviour as the Keras 3 callback
    (`xai_callback.callbacks.keras3.XaiExportCallback`); `mode="auto"` uses
    Keras 3's metric directions, not tf-keras' guess from the name (which
    minimises `val_auc`).

    Example:

    ```python
    # TF_USE_LEGACY_KERAS=1 set before TensorFlow is imported.
    from xai_callback import XaiExportCallback
    callback = XaiExportCallback("exports/churn", monitor="val_auc",
                                 save_best_only=True)
    model.fit(x, y, validation_split=0.2, epochs=30, callbacks=[callback])
    ```

    Args:
        export_dir: where the SavedModel goes (local path, `gs://`, ...).
        **kwargs: as the Keras 3 `XaiExportCallback` (`monitor`, `mode`,
            `save_best_only`, ..., and the `ExplainableExporter` options).
    """
