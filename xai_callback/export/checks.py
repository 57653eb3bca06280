"""What the export engine checks before training, beyond tracing.

Each check refuses in `prepare()` (the callback's `on_train_begin`, before
the first batch) a configuration that would otherwise fail every export
after training, or pass with an export that is not the trained model:

- `check_sample_rows` (at construction): a sample with no rows;
- `check_before_training`: NaN or inf in the sample or in the preprocess
  output on it (outputs are compared on the sample, and NaN never equals
  NaN); a `serving_default` that does not equal `xai_model` on the sample (a
  `serving_fn` returning a list or a bare tensor, whose outputs are named
  `output_0`, or other values); exported functions that compute something
  else than the model being trained (`trained_model.TrainedModel`).
"""

import collections.abc
import re

import numpy as np
import tensorflow as tf

from xai_callback.contract.checks import check_serving_identity
from xai_callback.errors import ExportVerificationError, InputError, SignatureError
from xai_callback.names import XAI_PREPROCESS

# The keys a function's outputs get when it returns a tensor or a list.
_POSITIONAL_OUTPUT = re.compile(r"output_\d+")


def check_sample_rows(sample):
    """Refuses a `sample=` with no rows (a batch of shape `(0, ...)`).

    Raises:
        InputError: naming the input and its shape.
    """
    if sample is None:
        return
    if isinstance(sample, collections.abc.Mapping):
        batches = list(sample.items())
    elif isinstance(sample, (list, tuple)):
        if not sample:
            raise InputError(f"sample= has no rows: received {sample!r}. {_ROWS_WAY_OUT}")
        # One batch per input, or the rows of a single input (CSV lines).
        batches = [(i, value) for i, value in enumerate(sample) if _is_batch(value)]
    else:
        batches = [(None, sample)]
    for key, value in batches:
        if _rows(value) == 0:
            where = "" if key is None else f" ({key!r} has shape {tuple(np.shape(value))})"
            raise InputError(f"sample= has no rows{where}. {_ROWS_WAY_OUT}", key=key)


_ROWS_WAY_OUT = ("The export is verified on the sample (and `validate` re-checks it later): pass at "
                 "least one row, or sample=None to have one generated.")


def _is_batch(value):
    return isinstance(value, (list, tuple)) or len(getattr(value, "shape", ())) > 0


def _rows(value):
    """Length of the first dimension; None for a scalar (one instance)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return shape[0] if len(shape) else None
    return len(value) if isinstance(value, (list, tuple)) else None


def check_before_training(functions, sample, trained, user_serving, rtol, atol):
    """The checks on the live functions and the verification sample.

    Args:
        functions: `{signature name: SignatureFunction}` to be exported.
        sample: `{serving_default input key: tensor}`, known to run.
        trained: the `TrainedModel` to compare the functions with.
        user_serving: whether `serving_default` is the user's `serving_fn`.
        rtol, atol: tolerances of the comparisons.

    Raises:
        InputError: the sample holds NaN or inf.
        SignatureError: the preprocess output is not finite, `serving_default`
            differs from `xai_model`, or a user function from the trained model.
    """
    check_finite(sample, "sample=", InputError,
                 "Pass rows without NaN or inf, or sample=None to have one generated.")
    preprocess = functions.get(XAI_PREPROCESS)
    if preprocess is not None and set(preprocess.input_specs) <= set(sample):
        check_finite(preprocess.call_dict(sample), f"The output of {preprocess.name} on the sample",
                     SignatureError, "Pass a sample on which it gives finite values, or make it give "
                     "finite values for such rows (impute NaN, clip).")
    live = {name: fn.concrete_function() for name, fn in functions.items()}
    try:
        check_serving_identity(live, sample, rtol=rtol, atol=atol)
    except ExportVerificationError as e:
        raise SignatureError(_serving_message(e, live, sample, user_serving)) from None
    trained.check_live(functions, sample)


def _serving_message(error, live, sample, user_serving):
    who = "serving_fn" if user_serving else "serving_default"
    message = (f"{who} does not keep the contract on the sample (the export would fail the same "
               f"check after training): {error}")
    served = sorted(live["serving_default"](**sample))
    if user_serving and all(_POSITIONAL_OUTPUT.fullmatch(key) for key in served):
        message += (f" serving_fn returned a tensor or a list, so its outputs are named {served}: "
                    "return a dict keyed like xai_model's outputs, e.g. {'score': ...}.")
    return message


def check_finite(values, what, error, way_out):
    """Refuses NaN or inf in the float tensors of `{key: tensor}`.

    Raises:
        `error`: naming `what`, the key, the first position and the value.
    """
    for key, value in values.items():
        value = tf.convert_to_tensor(value)
        if not value.dtype.is_floating:
            continue
        bad = ~tf.math.is_finite(value).numpy()
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            first = float(tf.cast(value[index] if index else value, tf.float64).numpy())
            raise error(
                f"{what} holds {first} at {key!r}{list(index)} ({int(bad.sum())} of {bad.size} values "
                "are NaN or inf): the export is verified by comparing outputs on the sample, and NaN "
                f"never equals NaN. {way_out}",
                **({"key": key} if error is InputError else {}),
            )
