"""When to export and with which weights: the callbacks' shared policy.

Knows nothing of Keras' callback base classes, so one implementation serves
the Keras 3 and the tf-keras adapters alike. The monitored value (mode,
min_delta, best) is `Monitor`'s, as `ModelCheckpoint` builds on Keras'
`MonitorCallback`; the policy adds when to export and which weights.
"""

import inspect
import warnings

from xai_callback.arguments import check_bool, check_choice, check_int
from xai_callback.errors import ExportFailedError
from xai_callback.export.engine import ExplainableExporter
from xai_callback.export.options import BOOLEAN_OPTIONS, check_export_options
from xai_callback import backends
from xai_callback.export import distribute
from xai_callback.callbacks import fit_context, keras_internals
from xai_callback.publish.destination import Destination
from xai_callback.publish.fallback import save_fallback_weights
from xai_callback.publish.ranking import PUBLISH_MODES, NotPublished, Ranking
# Options <-> config data (import strings, ...): see callbacks/config.py.
from xai_callback.callbacks.config import plain_containers, resolve_functions, serialize_options
from xai_callback.callbacks.monitor import Monitor, format_value

_print = keras_internals.print_msg


class ExportPolicy(Monitor):
    """Tracks the monitored value and exports at train end or on improvement.

    Like `ModelCheckpoint`, the best value persists across `fit` calls until
    `reset()`; with `publish="best"` (the default for a non-versioned export
    in best-epoch mode) an export is published only when it beats the ones
    already at `export_dir`, also those written by other processes.

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
        publish=None,
        **export_options,
    ):
        # Types first, whatever wrote them (a YAML "false" is a non-empty string).
        super().__init__(monitor, mode, min_delta, initial_value_threshold)
        save_best_only = check_bool("save_best_only", save_best_only)
        export_on_improvement = check_bool("export_on_improvement", export_on_improvement)
        strict = check_bool("strict", strict)
        publish = check_choice("publish", publish, PUBLISH_MODES, optional=True)
        # Keras' own callbacks take verbose=True/False as 1/0.
        verbose = int(verbose) if isinstance(verbose, bool) else check_int(
            "verbose", verbose, allowed=(0, 1, 2))
        # Every engine option too, before the destination check reads them.
        _check_export_options(export_options)
        if export_on_improvement and not save_best_only:
            raise ValueError(
                "export_on_improvement=True needs save_best_only=True (improvements "
                "are only tracked in best-epoch mode); received "
                f"save_best_only={save_best_only!r}."
            )
        _check_strict(strict, save_best_only)
        _check_publish(publish, save_best_only)
        # Where exports go, resolved and checked once, writability included.
        self.destination = Destination(
            export_dir, versioned=export_options.get("versioned", False),
            overwrite=export_options.get("overwrite", False), keep=export_options.get("keep"))
        self.destination.check()
        self.destination.probe()
        self.strict = strict
        self.export_dir = self.destination.given
        self.save_best_only = bool(save_best_only)
        self.export_on_improvement = bool(export_on_improvement)
        self.verbose = int(verbose)
        self.publish = publish
        self.export_options = export_options
        self.exporter = None
        self.fit_context = self.tuner = None  # found in on_train_begin
        self._forget_best()
        self._fresh = False  # compare with what is already published

    @property
    def publish_mode(self):
        """'best' or 'every' (what `publish=None` means for these options)."""
        if self.publish is not None:
            return self.publish
        versioned = self.export_options.get("versioned", False)
        return "best" if self.save_best_only and not versioned else "every"

    def reset(self):
        """Starts afresh: forgets the best value and weights of earlier fits.

        The next export is then published whatever is already at `export_dir`
        (also an export with a better recorded value); later ones again only
        when they improve on it.
        """
        self._forget_best()
        self._fresh = True

    def _forget_best(self):
        self.forget_best()
        self.best_epoch = None
        self.best_weights = None
        self.best_exported = False
        self.best_objective = None
        self.best_beaten = None  # (value, path) of a published export that beats every epoch
        self.last_export = None
        self.weights_kind = "model"

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
            "publish": self.publish,
        }
        config.update(serialize_options(self.export_options))
        return config

    # -- fit events -----------------------------------------------------------

    def on_train_begin(self, model, params=None):
        """Checks the fit call and traces/checks every signature before the first batch.

        Args:
            model: the model `fit` trains.
            params: the callback's `params` (`epochs`, `steps`, `verbose`).
        """
        self._warned_missing = False
        self._check_fit(model, params or {})
        if self.save_best_only:
            self.set_direction(model)  # mode="auto" decided now, not after an epoch
        self.destination.probe()  # still writable: time may have passed since construction
        distribute.check_supported(distribute.strategy_of(model))
        self.exporter = ExplainableExporter(model, **resolve_functions(self.export_options))
        self.exporter.prepare()
        if self.save_best_only and self.publish_mode == "best" and not self._fresh:
            self._start_from_published()

    def on_epoch_end(self, model, epoch, logs):
        if not self.save_best_only:
            if self.tuner is not None:  # the final weights' objective: the last epoch's
                self.best_objective = self.tuner.objective_value(logs)
            return
        value = (logs or {}).get(self.monitor)
        if value is None:
            if not self._validation_skipped(epoch):
                self._missing_monitor(epoch, logs)
            return
        value = float(value)
        self.set_direction(model)  # decided at train begin; a no-op then
        if not self.is_improvement(value):
            if self.verbose:
                _print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.format_best()}")
            return
        if self.verbose:
            _print(
                f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.format_best()} "
                f"to {format_value(value)}, best weights kept for export"
            )
        self.best, self.best_epoch, self.best_exported = value, epoch, False
        self.best_weights, self.weights_kind = weights_to_export(model)
        if self.tuner is not None:
            self.best_objective = self.tuner.objective_value(logs)
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
        self.fit_context = None  # holds fit's callback list: not kept past the fit
        if self.save_best_only and self.best_weights is None:
            beaten = (
                f" beat {self.monitor}={self.best_beaten[0]} of the export already at "
                f"{self.best_beaten[1]} (call reset(), or pass publish='every', to replace it anyway)"
                if self.best_beaten else f" reported '{self.monitor}' as an improvement"
            )
            _print(f"XaiExportCallback: no epoch{beaten}; nothing exported to {self.export_dir}.")
            return
        if self.save_best_only and self.best_exported:
            return  # The best epoch was already exported (on improvement or in an earlier fit).
        if not self.save_best_only:  # Keras put the averages into the model already
            self.weights_kind = "ema" if getattr(getattr(model, "optimizer", None), "use_ema", False) else "model"
        final_weights = backends.weights_of(model) if self.save_best_only else None
        try:
            if self.save_best_only:
                model.set_weights(self.best_weights)
            self._export(model, self._training_info("train_end"), fallback=True)
        finally:
            if final_weights is not None:
                model.set_weights(final_weights)

    # -- checks on the fit call ---------------------------------------------------

    def _check_fit(self, model, params):
        """Before the first batch: BackupAndRestore dir, strict monitor, validation
        epochs; finds validation and tuner."""
        context = fit_context.find_fit(model)
        fit_context.check_backup_dir(self.export_dir, context)
        if self.strict:
            fit_context.check_monitor_can_appear(self.monitor, model, context)
        if self.save_best_only:
            fit_context.check_validation_epochs(self.monitor, context, params.get("epochs"))
        self.fit_context = context
        self.tuner = fit_context.find_tuner_trial(context)

    def _validation_skipped(self, epoch):
        """True when `monitor` is a validation value and fit validates not this epoch."""
        return (self.monitor.startswith("val_") and self.fit_context is not None
                and self.fit_context.has_validation and not self.fit_context.validates_at(epoch))

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

    def _start_from_published(self):
        """`best` starts from the best export already at `export_dir` (same monitor)."""
        key = self._rank_key()
        if key is None or key != (self.monitor, self.direction):
            return  # ranked by a tuner objective: compared at publish time only
        ranking = Ranking(*key)
        published = ranking.best_published(self.destination)
        if published is None or (self.best is not None and not ranking.beats(published[0], self.best)):
            return
        self.best, self.best_beaten = published[0], published
        self.best_weights, self.best_epoch, self.best_exported = None, None, False

    # -- helpers --------------------------------------------------------------

    def _rank_key(self):
        if self.tuner is not None:
            return self.tuner.objective, self.tuner.direction
        if self.save_best_only and self.direction in ("min", "max"):
            return self.monitor, self.direction
        return None

    def _training_info(self, reason):
        info = {"reason": reason}
        if self.save_best_only:
            info.update(
                epoch=None if self.best_epoch is None else self.best_epoch + 1,
                monitor=self.monitor,
                monitor_value=self.best,
                mode=self.direction,
            )
        info["weights"] = self.weights_kind
        if self.tuner is not None:
            info["tuner"] = self.tuner.record(self.best_objective)
        return info

    def _ranking(self, training_info):
        """How this export ranks against those published: publish only if
        better (publish="best", unless reset()), and which versions keep keeps."""
        key = self._rank_key()
        if key is None:
            return None
        return Ranking.of_training(training_info, *key,
                                   only_if_better=self.publish_mode == "best" and not self._fresh)

    def _export(self, model, training_info, fallback=False):
        epoch = training_info.get("epoch")
        try:
            result = self.exporter.export(self.destination, training_info=training_info,
                                          ranking=self._ranking(training_info))
        except NotPublished as e:
            self.best_exported = True  # nothing better to write: a better export is there
            _print(f"XaiExportCallback: {e}")
            return None
        except Exception as e:
            if not fallback:
                raise
            path = save_fallback_weights(
                model, self.export_dir, cause=f"{type(e).__name__}: {e}",
                versioned=self.export_options.get("versioned", False),
            )
            raise ExportFailedError(
                f"Exporting to {self.export_dir!r} failed ({type(e).__name__}: {e}). "
                f"The weights to export were saved to {path!r}; load them with "
                "model.load_weights(...) and call export_explainable_model again.",
                fallback_path=path,
            ) from e
        self.last_export = result
        self.best_exported = True
        self._fresh = False
        if self.verbose:
            what = f"epoch {epoch}" if epoch else "final weights"
            _print(f"XaiExportCallback: exported {what} to {result.path}\n{result.describe()}")
        return result


def weights_to_export(model):
    """(copies of the weights, 'ema' | 'model'): EMA averages where the optimizer keeps them."""
    averaged = keras_internals.ema_weights(model)
    if averaged is not None:
        return averaged, "ema"
    return backends.weights_of(model), "model"




def _check_export_options(options):
    """Names and types of the engine options, at construction (no model yet).

    Booleans are stored back as Python bools (numpy's pass the check).
    """
    unknown = set(options) - set(_EXPORTER_ARGS)
    if unknown:
        raise TypeError(
            f"Unknown export option(s) {sorted(unknown)}; valid options are "
            f"{sorted(_EXPORTER_ARGS)}."
        )
    checked = check_export_options(**plain_containers(options))  # Hydra passes OmegaConf objects
    options.update({name: checked[name] for name in BOOLEAN_OPTIONS if name in options})


def _check_publish(publish, save_best_only):
    if publish == "best" and not save_best_only:
        raise ValueError(
            "publish='best' ranks exports by the monitored value, which needs "
            f"save_best_only=True; received save_best_only={save_best_only!r}."
        )


def _check_strict(strict, save_best_only):
    if strict and not save_best_only:
        raise ValueError(
            "strict=True checks the monitor, which only matters with "
            f"save_best_only=True; received save_best_only={save_best_only!r}."
        )


_EXPORTER_ARGS = tuple(
    p.name
    for p in inspect.signature(ExplainableExporter.__init__).parameters.values()
    if p.kind is p.KEYWORD_ONLY
)
