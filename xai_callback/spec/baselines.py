"""Baselines: from lists, numpy arrays or tensors to JSON lists, and shape fit."""

import numpy as np

from xai_callback.spec.fields import Shown, spec_error, type_error

MAX_BASELINES = 10


def normalize_baselines(where, field, value):
    """Returns the baselines as a list of JSON values (scalars or nested lists).

    A list or tuple is a list of baselines; a lone scalar, numpy array or
    tensor is ONE baseline (so `np.zeros(4)` is one baseline of shape [4],
    while `[0.0, 1.0]` are two scalar baselines, as in Vertex's JSON).
    """
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or len(items) > MAX_BASELINES:
        raise spec_error(where, field, Shown(f"{len(items)} baselines"),
                         f"expected 1 to {MAX_BASELINES} baselines (several are averaged)")
    return [_baseline_to_json(where, f"{field}[{i}]", item) for i, item in enumerate(items)]


def _baseline_to_json(where, field, item):
    if hasattr(item, "numpy"):  # tf.Tensor / tf.Variable
        item = item.numpy()
    try:
        array = np.asarray(item)
    except ValueError:  # numpy >= 1.24 refuses ragged nesting
        array = np.asarray(item, dtype=object)
    if array.dtype.kind == "S":
        array = array.astype(str)
    if array.dtype.kind not in "biufU":
        raise type_error(where, field, item, "expected a number, a string or a rectangular "
                         "array of them (ragged nesting is not a baseline)")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise spec_error(where, field, item, "expected finite numbers (JSON has no NaN or inf)")
    return array.tolist()


def baseline_shape(baseline):
    return list(np.shape(baseline))


def fits_example(shape, example_shape):
    """Whether a baseline of `shape` broadcasts to one example's shape.

    `example_shape` may hold None (unknown) dims, which accept any size.
    A scalar always fits; a baseline may not carry the batch dimension.
    """
    if example_shape is None:  # unknown rank
        return True
    if len(shape) > len(example_shape):
        return False
    for got, want in zip(reversed(shape), reversed(example_shape)):
        if got != 1 and want is not None and got != want:
            return False
    return True
