"""Checks on the surrounding `fit` call that Keras' callback API does not expose.

A callback sees the model and `params` (epochs, steps, verbose) only: not the
other callbacks, nor whether (and how often) validation runs. Both Keras 3
and tf-keras keep them as locals of `Model.fit`, which
`keras_internals.fit_locals` reads. This is best effort: under another
trainer, or a Keras that renames those locals, `find_fit` returns None and
the checks that need it fall back to the end of the first epoch (missing
monitor) or are skipped (BackupAndRestore, validation epochs, KerasTuner
trial).
"""

import os
import warnings

from xai_callback.callbacks import keras_internals


class FitContext:
    """What `fit` was called with, as far as it could be found."""

    def __init__(self, has_validation, callbacks, validation_freq=1, epochs=None, initial_epoch=0):
        self.has_validation = has_validation
        self.callbacks = callbacks
        self.validation_freq = validation_freq
        self.epochs = epochs
        self.initial_epoch = initial_epoch if isinstance(initial_epoch, int) else 0

    def validates_at(self, epoch):
        """Whether `fit` validates at the end of 0-based `epoch` (Keras' `_should_eval`)."""
        if not self.has_validation:
            return False
        freq = self.validation_freq
        if isinstance(freq, int) and freq > 0:
            return (epoch + 1) % freq == 0
        if isinstance(freq, (list, tuple, set)):
            return epoch + 1 in freq
        return True


def find_fit(model):
    """The `FitContext` of the `fit` running `model`, or None when not found."""
    found = keras_internals.fit_locals(model)
    if found is None:
        return None
    return FitContext(found["has_validation_data"], found["callbacks"], found["validation_freq"],
                      found["epochs"], found["initial_epoch"])


def check_validation_epochs(monitor, context, epochs=None):
    """A `val_*` monitor must be logged by some epoch of this `fit`.

    Args:
        monitor: the monitored name.
        context: the `FitContext` (None: nothing to check).
        epochs: `params["epochs"]`; defaults to the one `fit` was called with.

    Raises:
        ValueError: `validation_freq` validates at none of the epochs, so
            nothing could be exported (the message gives the ways out).

    Warns when the last epochs train after the last validation: they cannot
    be the best, whatever they learn.
    """
    if not monitor.startswith("val_") or context is None or not context.has_validation:
        return
    epochs = epochs if isinstance(epochs, int) else context.epochs
    if not isinstance(epochs, int) or epochs <= context.initial_epoch:
        return
    validating = [epoch + 1 for epoch in range(context.initial_epoch, epochs) if context.validates_at(epoch)]
    freq = context.validation_freq
    if not validating:
        raise ValueError(
            f"monitor={monitor!r} never appears in this fit: validation_freq={freq!r} validates at "
            f"none of epochs {context.initial_epoch + 1}..{epochs} (epochs={epochs}), so no epoch can "
            "be the best and nothing would be exported. Pass a validation_freq that divides epochs "
            f"(e.g. validation_freq=1), more epochs, or monitor the training value {monitor[4:]!r}."
        )
    if validating[-1] != epochs:
        warnings.warn(
            f"monitor={monitor!r}: with validation_freq={freq!r} and epochs={epochs} the last "
            f"validation is at epoch {validating[-1]}; epochs {validating[-1] + 1}..{epochs} train "
            "after it and cannot be exported as the best. Make epochs a multiple of "
            "validation_freq to count every epoch's training.",
            stacklevel=3,
        )


def check_backup_dir(export_dir, context):
    """Refuses an `export_dir` inside a BackupAndRestore `backup_dir`, or around one.

    Raises:
        ValueError: BackupAndRestore deletes its whole directory at train end
            (an export inside it would go too), and an export replaces or
            prunes what is inside `export_dir` (a backup inside it could go).
    """
    for callback in (context.callbacks if context else []):
        backup_dir = getattr(callback, "backup_dir", None)
        if type(callback).__name__ != "BackupAndRestore" or not backup_dir:
            continue
        if is_inside(export_dir, backup_dir):
            raise ValueError(
                f"export_dir={export_dir!r} is inside BackupAndRestore's "
                f"backup_dir={str(backup_dir)!r}, which Keras deletes at the end of "
                "training: the export would be lost. Use a path outside it."
            )
        if is_inside(backup_dir, export_dir):
            raise ValueError(
                f"BackupAndRestore's backup_dir={str(backup_dir)!r} is inside "
                f"export_dir={export_dir!r}: exports replace what is in export_dir, and "
                "Keras deletes backup_dir at the end of training. Put them side by side."
            )


class TunerTrial:
    """The KerasTuner trial a `fit` runs for: id, hyperparameters, objective."""

    def __init__(self, trial_id, hyperparameters, objective):
        self.trial_id = trial_id
        self.hyperparameters = hyperparameters
        self._objective = objective
        self.objective = getattr(objective, "name", None)
        self.direction = getattr(objective, "direction", None)

    def objective_value(self, logs):
        """The objective's value in one epoch's logs, or None."""
        try:
            if not self._objective.has_value(logs or {}):
                return None
            return float(self._objective.get_value(logs))
        except (AttributeError, KeyError, TypeError, ValueError):
            return None

    def record(self, objective_value):
        """The provenance entry."""
        return {
            "trial_id": self.trial_id,
            "hyperparameters": self.hyperparameters,
            "objective": self.objective,
            "direction": self.direction,
            "objective_value": objective_value,
        }


def find_tuner_trial(context):
    """The `TunerTrial` when KerasTuner runs this fit, else None.

    KerasTuner adds its own `TunerCallback` (holding the tuner and the trial)
    to every trial's fit; found by its name, so keras_tuner is not imported.
    """
    for callback in (context.callbacks if context else []):
        trial, tuner = getattr(callback, "trial", None), getattr(callback, "tuner", None)
        if type(callback).__name__ != "TunerCallback" or trial is None or tuner is None:
            continue
        objective = getattr(getattr(tuner, "oracle", None), "objective", None)
        values = getattr(getattr(trial, "hyperparameters", None), "values", None) or {}
        plain = {str(k): v for k, v in values.items() if isinstance(v, (bool, int, float, str)) or v is None}
        return TunerTrial(str(getattr(trial, "trial_id", "")), plain, objective)
    return None


def is_inside(path, directory):
    """True when `path` is `directory` or below it (normalised, no I/O)."""
    path, directory = _normal(path), _normal(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _normal(path):
    path = str(path)
    if "://" in path:
        return path.rstrip("/")
    return os.path.realpath(os.path.abspath(path))


def check_monitor_can_appear(monitor, model, context):
    """For `strict=True`: refuses a monitor that `fit` will never log.

    Only refuses what is certain: `val_*` when `fit` has no validation data,
    or a name that is neither the loss nor a compiled metric of a model with
    Keras' own `train_step`. Otherwise the end of the first epoch decides.

    Raises:
        ValueError: naming `monitor` and what will be logged.
    """
    is_val = monitor.startswith("val_")
    if is_val and context is not None and context.has_validation is False:
        raise ValueError(
            f"monitor={monitor!r} cannot appear: fit() has no validation data. Pass "
            "validation_data= or validation_split= to fit, or monitor the training "
            f"value {monitor[4:]!r}."
        )
    names = loggable_names(model)
    base = monitor[4:] if is_val else monitor
    if names is not None and base not in names:
        available = sorted(names) + (sorted(f"val_{n}" for n in names) if is_val else [])
        raise ValueError(
            f"monitor={monitor!r} cannot appear in the logs: the model logs {available}. "
            "Compile the metric, or monitor one of these."
        )


def loggable_names(model):
    """Names (without `val_`) Keras 3 `fit` will log, or None when unknowable."""
    trainer = keras_internals.keras3_trainer_class()
    if trainer is None or not isinstance(model, trainer):
        return None
    custom = [c for c in type(model).__mro__ if "train_step" in vars(c)]
    if custom and custom[0].__module__.split(".")[0] != "keras":
        return None  # a custom train_step logs whatever it returns
    names = {"loss"}
    outputs = list(getattr(model, "output_names", None) or [])
    if len(outputs) > 1:
        names.update(f"{name}_loss" for name in outputs)
    metrics = keras_internals.compiled_metrics(model)
    if metrics and len(outputs) > 1 and not keras_internals.metrics_built(model):
        return None  # declared per-output metrics are logged with output-name prefixes
    metric_names = {name for name, _ in metrics}
    if None in metric_names:
        return None
    return names | metric_names
