"""`XaiExportCallback` for Keras 3 `fit`."""

import keras

from xai_callback.callbacks.adapter import PolicyCallback


@keras.saving.register_keras_serializable(package="xai_callback")
class XaiExportCallback(PolicyCallback, keras.callbacks.Callback):
    """Writes an explanation-ready SavedModel at train end or at the best epoch.

    The export has the signatures `serving_default`, `xai_model` (the
    differentiable core) and, with a `preprocess_fn`, `xai_preprocess`, plus
    Vertex AI explanation metadata and parameters, and is reloaded and
    verified after writing. Every signature is traced and checked in
    `on_train_begin`, before the first batch, so a wrong configuration never
    costs a training run.

    Like `ModelCheckpoint`, the best value persists across `fit` calls;
    `reset()` starts afresh. With an optimizer's `use_ema=True`, best-epoch
    mode exports the EMA weights of the best epoch, as a final-weights export
    holds the EMA weights Keras puts into the model at the end of `fit`.

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
        strict: with `save_best_only=True`, a monitor that cannot appear is an
            error before the first batch (`val_*` without validation data, a
            metric that is not compiled), or, when only the logs can tell, at
            the end of the first epoch. Defaults to False: a missing monitor
            warns once per fit and that epoch does not count. Epochs that do
            not validate (`validation_freq > 1`) are skipped.
        publish: `"every"` publishes each export; `"best"` (needs
            `save_best_only=True`) only one that beats every export already at
            `export_dir`, by the monitored value (under KerasTuner, by the
            tuner's objective) recorded in their provenance, so the highest
            version is the best. Defaults to None: `"best"` for a non-versioned
            export in best-epoch mode, `"every"` otherwise.
        **export_options: passed to `ExplainableExporter` (`preprocess_fn`,
            `serving_fn`, `model_fn`, `extra_signatures`, `output_key`,
            `sample`, `explanation_spec`, `overwrite`, `versioned`, `keep`, ...).
    """
