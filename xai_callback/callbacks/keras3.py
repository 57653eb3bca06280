"""`XaiExportCallback` for Keras 3 `fit`."""

import keras

from xai_callback.callbacks.policy import ExportPolicy


@keras.saving.register_keras_serializable(package="xai_callback")
class XaiExportCallback(keras.callbacks.Callback):
    """Writes an explanation-ready SavedModel at train end or at the best epoch.

    The export has the signatures `serving_default`, `xai_model` (the
    differentiable core) and, with a `preprocess_fn`, `xai_preprocess`, plus
    Vertex AI explanation metadata and parameters, and is reloaded and
    verified after writing. Every signature is traced and checked in
    `on_train_begin`, before the first batch, so a wrong configuration never
    costs a training run.

    Example:

    ```python
    callback = XaiExportCallback("exports/churn", monitor="val_loss",
                                 save_best_only=True)
    model.fit(x, y, validation_split=0.2, epochs=30, callbacks=[callback])
    ```

    Args:
        export_dir: where the SavedModel goes (local path, `gs://`, ...).
        monitor: logged quantity that defines the best epoch. Defaults to
            `"val_loss"`.
        mode: `"auto"`, `"min"` or `"max"`. `"auto"` minimises losses and
            otherwise follows the compiled metric's direction, as Keras 3 does.
            Defaults to `"auto"`.
        save_best_only: False exports the final weights at train end; True
            keeps the best epoch's weights in memory and exports those at train
            end, leaving the live model with the weights training left.
            Defaults to False.
        min_delta: smallest change that counts as an improvement. Defaults to 0.
        initial_value_threshold: a value the monitor must beat to count as an
            improvement at all. Defaults to None.
        export_on_improvement: also export at each improvement, so a crash
            later still leaves the best so far. Needs `save_best_only=True`.
            Defaults to False.
        verbose: 0 is silent, 1 reports improvements and exports. Defaults to 0.
        **export_options: passed to `ExplainableExporter` (`preprocess_fn`,
            `serving_fn`, `model_fn`, `extra_signatures`, `output_key`,
            `sample`, `explanation_spec`, ...).
    """

    def __init__(self, export_dir, **kwargs):
        super().__init__()
        self.policy = ExportPolicy(export_dir, **kwargs)

    @property
    def export_dir(self):
        return self.policy.export_dir

    @property
    def last_export(self):
        """The `ExportResult` of the latest export of this fit, or None."""
        return self.policy.last_export

    @property
    def best_epoch(self):
        """0-based epoch of the best monitored value in this fit, or None."""
        return self.policy.best_epoch

    def get_config(self):
        return self.policy.get_config()

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def on_train_begin(self, logs=None):
        self.policy.on_train_begin(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self.policy.on_epoch_end(self.model, epoch, logs)

    def on_train_end(self, logs=None):
        self.policy.on_train_end(self.model)
