"""When to export and with which weights: the callbacks' shared policy.

Knows nothing of Keras' callback base classes, so one implementation serves
the Keras 3 and the tf-keras adapters alike.
"""

import inspect
import math
import sys
import warnings

from xai_callback.errors import ExportFailedError
from xai_callback.export import ExplainableExporter
from xai_callback import backends, distribute, placement
# Options <-> config data (import strings, ...): see callbacks/config.py.
from xai_callback.callbacks.config import resolve_functions, serialize_options

MODES = ("auto", "min", "max")


def _print(message):
    try:  # Keras' printer honours its interactive-logging setting.
        from keras.src.utils.io_utils import print_msg
    except ImportError:  # pragma: no cover - tf-keras only environments
        print(message, file=sys.stdout, flush=True)
    else:
        print_msg(message)


class ExportPolicy:
    """Tracks the monitored value and exports at train end or on improvement.

    Args: as `XaiExportCallback`.
    """

    def __init__(
        self,
        export_dir,
        monitor="val_loss",
        mode="auto",
        save_best_only=False,
        min_delta=0.0,
        initial_value_threshold=None,
        export_on_improvement=False,
        verbose=0,
        strict=False,
        **export_options,
    ):
        if not isinstance(export_dir, str) and not hasattr(export_dir, "__fspath__"):
            raise TypeError(
                f"export_dir must be a path string; received {export_dir!r} of type "
                f"{type(export_dir).__name__}."
            )
        export_dir = str(export_dir)
        if not export_dir:
            raise ValueError("export_dir must be a non-empty path; received ''.")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; received mode={mode!r}.")
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                "monitor must be the name of a logged quantity such as 'val_loss'; "
                f"received monitor={monitor!r}."
            )
        if not isinstance(min_delta, (int, float)) or min_delta < 0 or math.isnan(min_delta):
            raise ValueError(
                f"min_delta must be a number >= 0; received min_delta={min_delta!r}."
            )
        if initial_value_threshold is not None and not isinstance(initial_value_threshold, (int, float)):
            raise TypeError(
                "initial_value_threshold must be a number or None; received "
                f"initial_value_threshold={initial_value_threshold!r}."
            )
        if verbose not in (0, 1, 2, True, False):
            raise ValueError(f"verbose must be 0 or 1; received verbose={verbose!r}.")
        if export_on_improvement and not save_best_only:
            raise ValueError(
                "export_on_improvement=True needs save_best_only=True (improvements "
                "are only tracked in best-epoch mode); received "
                f"save_best_only={save_best_only!r}."
            )
        _check_strict(strict, save_best_only)
        placement.validate_version_options(export_options.get("versioned", False), export_options.get("keep"))
        placement.check_destination(
            export_dir, export_options.get("overwrite", False), export_options.get("versioned", False)
        )
        self.strict = strict
        self.export_dir = export_dir
        self.monitor = monitor
        self.mode = mode
        self.save_best_only = bool(save_best_only)
        self.min_delta = float(min_delta)
        self.initial_value_threshold = initial_value_threshold
        self.export_on_improvement = bool(export_on_improvement)
        self.verbose = int(verbose)
        self.export_options = export_options
        # Built once so bad options fail at construction, before fit.
        self._probe_options()
        self.exporter = None
        self.reset()

    def _probe_options(self):
        unknown = set(self.export_options) - set(_EXPORTER_ARGS)
        if unknown:
            raise TypeError(
                f"Unknown export option(s) {sorted(unknown)}; valid options are "
                f"{sorted(_EXPORTER_ARGS)}."
            )

    def reset(self):
        """Per-fit state: best value, its epoch and weights, last export."""
        self.best = self.initial_value_threshold
        self.best_epoch = None
        self.best_weights = None
        self.last_export = None
        self.last_exported_epoch = None
        self._warned_missing = False
        self.direction = None if self.mode == "auto" else self.mode

    def get_config(self):
        """The constructor arguments as plain data (functions as import strings)."""
        config = {
            "export_dir": self.export_dir,
            "monitor": self.monitor,
            "mode": self.mode,
            "save_best_only": self.save_best_only,
            "min_delta": self.min_delta,
            "initial_value_threshold": self.initial_value_threshold,
            "export_on_improvement": self.export_on_improvement,
            "verbose": self.verbose,
            "strict": self.strict,
        }
        config.update(serialize_options(self.export_options))
        return config

    # -- fit events -----------------------------------------------------------

    def on_train_begin(self, model):
        """Resets state and traces/checks every signature before the first batch."""
        self.reset()
        if self.save_best_only and self.direction is None:
            self.direction = infer_direction(self.monitor, model)
        self._check_fit(model)
        distribute.check_supported(distribute.strategy_of(model))
        self.exporter = ExplainableExporter(model, **resolve_functions(self.export_options))
        self.exporter.prepare()

    def on_epoch_end(self, model, epoch, logs):
        if not self.save_best_only:
            return
        value = (logs or {}).get(self.monitor)
        if value is None:
            self._missing_monitor(epoch, logs)
            return
        value = float(value)
        if self.direction is None:
            self.direction = infer_direction(self.monitor, model, required=True)
        if not self.is_improvement(value):
            if self.verbose:
                _print(
                    f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                    f"{_fmt(self.best, self.direction)}"
                )
            return
        if self.verbose:
            _print(
                f"\nEpoch {epoch + 1}: {self.monitor} improved from {_fmt(self.best, self.direction)} "
                f"to {_fmt(value)}, best weights kept for export"
            )
        self.best, self.best_epoch = value, epoch
        self.best_weights = backends.weights_of(model)
        if self.export_on_improvement:
            try:
                self._export(model, self._training_info("improvement"))
            except Exception as e:  # noqa: BLE001 - training must go on
                # Stopping here would throw away the rest of the run; the best
                # weights stay in memory and train end exports (or falls back).
                warnings.warn(
                    f"Exporting epoch {epoch + 1} to {self.export_dir!r} failed "
                    f"({type(e).__name__}: {e}); training continues and the export "
                    "is retried at train end.",
                    stacklevel=2,
                )

    def on_train_end(self, model):
        if self.save_best_only and self.best_weights is None:
            _print(
                f"XaiExportCallback: no epoch reported '{self.monitor}' as an "
                f"improvement; nothing exported to {self.export_dir}."
            )
            return
        if self.save_best_only and self.last_exported_epoch == self.best_epoch:
            return  # The best epoch was already exported on improvement.
        final_weights = backends.weights_of(model) if self.save_best_only else None
        try:
            if self.save_best_only:
                model.set_weights(self.best_weights)
            self._export(model, self._training_info("train_end"), fallback=True)
        finally:
            if final_weights is not None:
                model.set_weights(final_weights)

    # -- checks on the fit call ---------------------------------------------------

    def _check_fit(self, model):
        """Before the first batch: export_dir not in a BackupAndRestore dir; strict monitor."""
        from xai_callback.callbacks import fit_context

        context = fit_context.find_fit(model)
        fit_context.check_not_in_backup_dir(self.export_dir, context)
        if self.strict:
            fit_context.check_monitor_can_appear(self.monitor, model, context)

    def _missing_monitor(self, epoch, logs):
        """The epoch does not count; warn once per fit, or fail with `strict`."""
        available = sorted(logs or {})
        message = (
            f"monitor={self.monitor!r} is not in the logs of epoch {epoch + 1}; "
            f"available keys: {available}."
        )
        if self.strict:
            raise ValueError(message + " (strict=True stops training here.)")
        if not self._warned_missing:
            self._warned_missing = True
            warnings.warn(message + " The epoch does not count as best.", stacklevel=2)

    # -- helpers --------------------------------------------------------------

    def is_improvement(self, value):
        if math.isnan(value) or math.isinf(value):
            return False
        if self.best is None:
            return True
        if self.direction == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def _training_info(self, reason):
        info = {"reason": reason}
        if self.save_best_only:
            info.update(
                epoch=None if self.best_epoch is None else self.best_epoch + 1,
                monitor=self.monitor,
                monitor_value=self.best,
                mode=self.direction,
            )
        return info

    def _export(self, model, training_info, fallback=False):
        epoch = training_info.get("epoch")
        try:
            result = self.exporter.export(self.export_dir, training_info=training_info)
        except Exception as e:
            if not fallback:
                raise
            path = save_fallback_weights(model, self.export_dir, cause=f"{type(e).__name__}: {e}")
            raise ExportFailedError(
                f"Exporting to {self.export_dir!r} failed ({type(e).__name__}: {e}). "
                f"The weights to export were saved to {path!r}; load them with "
                "model.load_weights(...) and call export_explainable_model again.",
                fallback_path=path,
            ) from e
        self.last_export = result
        self.last_exported_epoch = self.best_epoch if self.save_best_only else None
        if self.verbose:
            what = f"epoch {epoch}" if epoch else "final weights"
            _print(f"XaiExportCallback: exported {what} to {result.path}\n{result.describe()}")
        return result


def save_fallback_weights(model, export_dir, cause=None):
    """Saves `model`'s weights next to `export_dir`, else in the temp folder.

    Returns the path written. Raises `ExportFailedError` naming every place
    tried (and `cause`) when none is writable.
    """
    import tempfile
    import uuid

    from xai_callback import storage

    parent, name = placement.split_path(export_dir)
    # Bounded so an over-long export name cannot make the fallback fail too.
    filename = f"{name[:80]}.xai-fallback-{uuid.uuid4().hex[:8]}.weights.h5"
    errors = []
    for directory in (parent, tempfile.gettempdir()):
        path = f"{directory.rstrip('/')}/{filename}"
        try:
            storage.makedirs(directory)
            model.save_weights(path)
            return path
        except Exception as e:  # noqa: BLE001 - try the next place
            errors.append(f"{path}: {type(e).__name__}: {e}")
    raise ExportFailedError(
        f"Exporting to {export_dir!r} failed ({cause}) and the weights could not be "
        "saved anywhere: " + "; ".join(errors)
    )


def _check_strict(strict, save_best_only):
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False; received strict={strict!r}.")
    if strict and not save_best_only:
        raise ValueError(
            "strict=True checks the monitor, which only matters with "
            f"save_best_only=True; received save_best_only={save_best_only!r}."
        )


def _fmt(value, direction="min"):
    if value is None:
        return "-inf" if direction == "max" else "inf"
    return f"{value:.5f}"


def infer_direction(monitor, model, required=False):
    """'min' or 'max' for `monitor`, as Keras 3's `mode="auto"` decides.

    Losses are minimised; otherwise the compiled metric's own direction.
    Returns None when it cannot be known yet (metrics are built lazily) and
    `required` is False.
    """
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss" or name.endswith("_loss"):
        return "min"
    for metric in _all_metrics(model):
        if getattr(metric, "name", None) == name and hasattr(metric, "_direction"):
            return "max" if metric._direction == "up" else "min"
        if getattr(metric, "name", None) == name:
            # tf-keras metrics carry no direction: ask Keras 3 about the same
            # class (e.g. tf_keras AUC(name="roc") -> keras.metrics.AUC).
            direction = _direction_of_named_metric(type(metric).__name__)
            if direction is not None:
                return direction
    direction = _direction_of_named_metric(name)
    if direction is None and required:
        raise ValueError(
            f"monitor={monitor!r}: cannot tell whether it should be minimised or "
            "maximised. Pass mode='min' or mode='max'."
        )
    return direction


def _all_metrics(model):
    found = []
    for metric in getattr(model, "metrics", []) or []:
        found.append(metric)
        found.extend(getattr(metric, "metrics", []) or [])
    return found


def _direction_of_named_metric(name):
    """Direction of a metric given by name (e.g. 'auc'), through Keras 3."""
    try:
        import keras

        metric = keras.metrics.get(name)
    except Exception:  # noqa: BLE001 - unknown names are simply unknown
        return None
    if isinstance(metric, type):
        try:
            metric = metric()
        except Exception:  # noqa: BLE001
            return None
    direction = getattr(metric, "_direction", None)
    return {"up": "max", "down": "min"}.get(direction)


_EXPORTER_ARGS = tuple(
    p.name
    for p in inspect.signature(ExplainableExporter.__init__).parameters.values()
    if p.kind is p.KEYWORD_ONLY
)
