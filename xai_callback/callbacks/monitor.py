"""The monitored quantity: mode, min_delta, best, and what counts as better.

Modelled on Keras 3's `MonitorCallback` (the base of `ModelCheckpoint` and
`EarlyStopping`), without being a callback itself, so the Keras 3 and the
tf-keras adapters share it through `ExportPolicy`. Two differences, both
deliberate: NaN and inf are never an improvement, and `mode="auto"` is
decided before the first batch, from the metric objects `compile` declared
(Keras decides after the first epoch, when they are built), so a monitor
whose direction cannot be known fails before training rather than after it.
"""

import math

from xai_callback.arguments import check_choice, check_number, check_str
from xai_callback.callbacks import keras_internals

MODES = ("auto", "min", "max")
# What `compile` and Keras' own callbacks take for accuracy, whatever it resolves to.
_ACCURACY_NAMES = ("acc", "accuracy")


class Monitor:
    """Tracks the best value of one logged quantity.

    Example:

    ```python
    monitor = Monitor("val_auc")
    monitor.set_direction(model)        # "max": AUC improves upwards
    if monitor.is_improvement(logs["val_auc"]):
        monitor.best = logs["val_auc"]
    ```

    Args:
        monitor: the logged quantity (`"val_loss"`, `"auc"`, ...). Defaults
            to `"val_loss"`.
        mode: `"auto"`, `"min"` or `"max"`. `"auto"` minimises losses and
            otherwise follows the compiled metric's direction, as Keras 3
            does. Defaults to `"auto"`.
        min_delta: smallest change that counts as an improvement (>= 0).
            Defaults to 0.
        initial_value_threshold: a value the monitor must beat to count as
            an improvement at all (`MonitorCallback`'s `baseline`). Defaults
            to None.

    Raises:
        TypeError, ValueError: an argument of the wrong type or out of range,
            named with the value received.
    """

    def __init__(self, monitor="val_loss", mode="auto", min_delta=0.0, initial_value_threshold=None):
        self.mode = check_choice("mode", mode, MODES)
        self.monitor = check_str("monitor", monitor)
        self.min_delta = float(check_number("min_delta", min_delta, minimum=0))
        self.initial_value_threshold = check_number(
            "initial_value_threshold", initial_value_threshold, optional=True)
        self.forget_best()

    def forget_best(self):
        """Back to the threshold; `mode="auto"` is decided again at the next `set_direction`."""
        self.best = self.initial_value_threshold
        self.direction = None if self.mode == "auto" else self.mode

    def set_direction(self, model):
        """Decides `direction` ('min' or 'max') for `model`, as Keras' `_set_monitor_op`.

        Raises:
            ValueError: `mode="auto"` and neither the name (a loss) nor a
                compiled metric tells the direction; the message names the
                monitor and says to pass `mode`.
        """
        if self.direction is None:
            self.direction = direction_of(self.monitor, model)
        if self.direction is None:
            declared = sorted({name for name, _ in keras_internals.compiled_metrics(model)})
            raise ValueError(
                f"monitor={self.monitor!r} with mode='auto': cannot tell whether it should be "
                "minimised or maximised (it is not a loss, and no compiled metric of that name "
                f"declares a direction; compiled metrics: {declared}). Pass mode='min' or mode='max'."
            )
        return self.direction

    def is_improvement(self, value, reference=None):
        """Whether `value` beats `reference` (default: `best`) by more than `min_delta`.

        NaN and inf never do; anything finite beats no reference at all.
        """
        reference = self.best if reference is None else reference
        if math.isnan(value) or math.isinf(value):
            return False
        if reference is None:
            return True
        if self.direction == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def format_best(self):
        """`best` as Keras' callbacks print it (`inf` / `-inf` before any value)."""
        if self.best is None:
            return "-inf" if self.direction == "max" else "inf"
        return format_value(self.best)


def format_value(value):
    return f"{value:.5f}"


def direction_of(monitor, model):
    """'min' or 'max' for `monitor` on `model`, or None when it cannot be told.

    Losses are minimised; otherwise the direction of the compiled metric of
    that name (an output's prefix aside on multi-output models), else of the
    Keras 3 metric the name or the metric's class names (tf-keras metrics
    declare none: `tf_keras.metrics.AUC(name="roc")` follows
    `keras.metrics.AUC`).
    """
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return "min"
    names = {name} | {name.removeprefix(f"{output}_") for output in getattr(model, "output_names", None) or []}
    for declared, metric in keras_internals.compiled_metrics(model):
        if declared not in names:
            continue
        if isinstance(metric, str):
            return _direction_of_named_metric(metric)
        direction = keras_internals.metric_direction(metric)
        if direction is None and not callable(getattr(metric, "update_state", None)):
            return None  # a plain function: no direction, whatever its name says
        return direction or _direction_of_named_metric(type(metric).__name__)
    for candidate in sorted(names):
        direction = _direction_of_named_metric(candidate)
        if direction is not None:
            return direction
    return None


def _direction_of_named_metric(name):
    """Direction of a metric given by name (`"auc"`, `"AUC"`), through Keras 3."""
    if name.lower() in _ACCURACY_NAMES:
        return "max"
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
    return keras_internals.metric_direction(metric)
