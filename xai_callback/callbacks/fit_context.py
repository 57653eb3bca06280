"""Checks on the surrounding `fit` call that Keras' callback API does not expose.

A callback sees the model and `params` (epochs, steps, verbose) only: not the
other callbacks, nor whether (and how often) validation runs. Both Keras 3
and tf-keras keep them as locals of `Model.fit` (`callbacks`, the
CallbackList, `validation_data`, set after `validation_split` is applied, and
`validation_freq`), so `find_fit` looks for that frame on the stack. This is
best effort: under another trainer, or a Keras that renames those locals, it
returns None and the checks that need it fall back to the end of the first
epoch (missing monitor) or are skipped (BackupAndRestore, KerasTuner trial).
"""

import inspect
import os

MAX_FRAMES = 40


class FitContext:
    """What `fit` was called with, as far as it could be found."""

    def __init__(self, has_validation, callbacks, validation_freq=1):
        self.has_validation = has_validation
        self.callbacks = callbacks
        self.validation_freq = validation_freq

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
    frame = inspect.currentframe()
    try:
        for _ in range(MAX_FRAMES):
            frame = frame.f_back
            if frame is None:
                return None
            if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
                local = frame.f_locals
                callbacks = getattr(local.get("callbacks"), "callbacks", local.get("callbacks"))
                has_validation = None
                if "validation_data" in local:
                    has_validation = local["validation_data"] is not None
                return FitContext(has_validation, list(callbacks or []), local.get("validation_freq", 1))
        return None
    finally:
        del frame


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
    try:
        from keras.src.trainers.trainer import Trainer
    except ImportError:  # pragma: no cover - tf-keras only environments
        return None
    if not isinstance(model, Trainer):
        return None
    custom = [c for c in type(model).__mro__ if "train_step" in vars(c)]
    if custom and custom[0].__module__.split(".")[0] != "keras":
        return None  # a custom train_step logs whatever it returns
    names = {"loss"}
    outputs = list(getattr(model, "output_names", None) or [])
    if len(outputs) > 1:
        names.update(f"{name}_loss" for name in outputs)
    compiled = getattr(model, "_compile_metrics", None)
    if compiled is None:
        return names
    if getattr(compiled, "built", False):
        return names | {m.name for m in compiled.metrics}
    declared = []
    for group in (getattr(compiled, "_user_metrics", None), getattr(compiled, "_user_weighted_metrics", None)):
        if group is None:
            continue
        if not isinstance(group, (list, tuple)):
            return None  # per-output dicts: names get output prefixes
        declared.extend(group)
    if declared and len(outputs) > 1:
        return None  # per-output metrics get output-name prefixes
    for metric in declared:
        name = metric if isinstance(metric, str) else getattr(metric, "name", None) or getattr(metric, "__name__", None)
        if not isinstance(name, str):
            return None
        names.add(name)
    return names
