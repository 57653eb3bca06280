"""The private parts of Keras the callbacks must read, in one place.

Keras gives callbacks the model and `params` only. Four facts the export
needs are not public in either Keras we support (Keras 3, tf-keras):

- `fit_locals`: the callback list, `validation_data` (after
  `validation_split`), `validation_freq`, `epochs` and `initial_epoch` of the
  running `Model.fit`, read from its frame on the stack;
- `compiled_metrics`: the metric objects `compile` declared, before `fit`
  builds them (Keras 3 `_compile_metrics`, tf-keras `compiled_metrics`);
- `metric_direction`: whether a Keras 3 metric improves up or down
  (`metric._direction`, what Keras' own `MonitorCallback` reads);
- `ema_weights`: the optimizer's exponential moving averages
  (`_model_variables_moving_average`, indexed by `_var_key`);

plus `print_msg`, Keras' printer that honours its interactive-logging setting.

Every reader is best effort at run time (None or a fallback when the
internal is gone) and has a test per Keras version
(`tests/test_keras_internals.py`) that fails loudly when Keras changes it.
"""

import inspect
import sys

import numpy as np

# How far up the stack `fit`'s frame may be (callback list, trainer, ...).
MAX_FRAMES = 40
# The locals of `Model.fit` read, with their value when absent.
FIT_LOCALS = {"callbacks": None, "validation_data": None, "validation_freq": 1, "epochs": None,
              "initial_epoch": 0}


def fit_locals(model):
    """`{name: value}` of `FIT_LOCALS` in the running `model.fit`, or None.

    Both Keras keep the callbacks as a `CallbackList` and the validation
    split as `validation_data` in `fit`'s locals by the time
    `on_train_begin` runs. `has_validation_data` is None when `fit` had no
    `validation_data` local at all (another trainer).
    """
    frame = inspect.currentframe()
    try:
        for _ in range(MAX_FRAMES):
            frame = frame.f_back
            if frame is None:
                return None
            if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
                local = frame.f_locals
                found = {name: local.get(name, default) for name, default in FIT_LOCALS.items()}
                callbacks = found["callbacks"]
                found["callbacks"] = list(getattr(callbacks, "callbacks", callbacks) or [])
                found["has_validation_data"] = (
                    local["validation_data"] is not None if "validation_data" in local else None)
                return found
        return None
    finally:
        del frame


def compiled_metrics(model):
    """`[(name, metric)]` of what `compile` declared, built or not.

    `metric` is a metric object, a string (`"auc"`) or a function, as given
    to `compile`; `name` is None when it has none. Keras 3 builds its metric
    objects at the first batch (named as `fit` logs them, with the metrics
    the model tracks itself); before it the declared ones are read, named
    without the output prefix `fit` adds on multi-output models. Returns []
    when nothing is known.
    """
    if metrics_built(model):
        return [(metric.name, metric) for metric in _leaves(getattr(model, "metrics", []), "metrics")]
    declared = []
    # Keras 3 keeps them in `_compile_metrics`, tf-keras in `compiled_metrics`.
    for container in (getattr(model, "_compile_metrics", None), getattr(model, "compiled_metrics", None)):
        for attribute in ("_user_metrics", "_user_weighted_metrics"):
            for metric in _leaves(getattr(container, attribute, None)):
                name = metric if isinstance(metric, str) else (
                    getattr(metric, "name", None) or getattr(metric, "__name__", None))
                declared.append((name if isinstance(name, str) else None, metric))
    return declared


def metrics_built(model):
    """Whether Keras 3 built the compiled metrics (at the first batch)."""
    return bool(getattr(getattr(model, "_compile_metrics", None), "built", False))


def _leaves(value, attribute=None):
    """Leaves of nested lists, tuples and dicts (per-output metrics); with
    `attribute`, a container's leaves in its place (`CompileMetrics.metrics`)."""
    if value is None:
        return
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item, attribute)
        return
    inner = getattr(value, attribute, None) if attribute else None
    if inner:
        yield from _leaves(inner, attribute)
    else:
        yield value


def metric_direction(metric):
    """'max' or 'min' for a Keras 3 metric object, None when it declares none."""
    return {"up": "max", "down": "min"}.get(getattr(metric, "_direction", None))


def keras3_trainer_class():
    """Keras 3's `Trainer` (every Keras 3 model's training base), or None."""
    try:
        from keras.src.trainers.trainer import Trainer
    except ImportError:  # pragma: no cover - tf-keras only environments
        return None
    return Trainer


def ema_weights(model):
    """`model.get_weights()` with each trainable weight replaced by its EMA.

    None when the optimizer keeps no averages (`use_ema=False`, not built
    yet, or a Keras whose internals moved). Keras 3 indexes the averages by
    `_trainable_variables_indices`, tf-keras by `_index_dict`, both keyed
    by `_var_key(variable)`.
    """
    optimizer = getattr(model, "optimizer", None)
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or not averages:
        return None
    index = getattr(optimizer, "_trainable_variables_indices", None)
    if index is None:
        index = getattr(optimizer, "_index_dict", None)
    if index is None or not hasattr(optimizer, "_var_key"):
        return None
    weights = []
    for variable in model.weights:
        position = index.get(optimizer._var_key(variable))
        average = averages[position] if position is not None and position < len(averages) else None
        weights.append(np.array(average if average is not None else variable, copy=True))
    return weights


def print_msg(message):
    """Prints as Keras' own callbacks do (to absl logging when Keras'
    interactive logging is off), else to stdout."""
    try:
        from keras.src.utils.io_utils import print_msg as keras_print_msg
    except ImportError:  # pragma: no cover - tf-keras only environments
        print(message, file=sys.stdout, flush=True)
    else:
        keras_print_msg(message)
