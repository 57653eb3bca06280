"""Inputs as users naturally pass them -> `{key: tf.Tensor}` for a signature.

One conversion for every place that takes model inputs (`explain`, the
exporter's `sample=`), accepting what `model.predict` accepts: a dict by input
name, a list/tuple in input order, an array for a single input, numpy
string/object arrays, and scalars for inputs of shape `[None]` or `[None, 1]`.
Messages name the input and say what it expects.
"""

import base64
import binascii
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xai_callback.errors import InputError
from xai_callback.signatures.specs import describe_spec


def as_input_dict(value, specs, owner="the model", ordered=True):
    """Converts model inputs to `{key: tf.Tensor}` batched along axis 0.

    Example:

    ```python
    specs = {"Type": tf.TensorSpec([None, 1], tf.string),
             "Age": tf.TensorSpec([None, 1], tf.int64)}
    as_input_dict({"Type": np.array(["Cat", "Dog"]), "Age": [3, 1]}, specs, "serving_default")
    # {"Type": <tf.Tensor shape=(2, 1) dtype=string>, "Age": <tf.Tensor shape=(2, 1) dtype=int64>}
    as_input_dict({"Type": "Cat", "Age": 3}, specs)  # scalars: one instance
    ```

    Args:
        value: a dict `{input key: batch}`; a list or tuple of batches in
            input order (several inputs); or the batch of a single input (numpy
            array, tensor, nested list, numpy string/object array). Strings may
            be `str` or `bytes`; `{"b64": ...}` leaves are decoded for string
            inputs. An input of shape `[None]` or `[None, 1]` also takes a
            scalar (one instance) or, for `[None, 1]`, a flat `[batch]` array.
        specs: `{key: tf.TensorSpec}` of the signature, batch dimension first,
            in the model's input order.
        owner: what takes the inputs, for messages (e.g. "serving_default").
            Defaults to "the model".
        ordered: whether `specs` is in the model's input order. Defaults to
            True; when False (a reloaded signature does not keep the order), a
            list or tuple for several inputs is refused.

    Returns:
        `{key: tf.Tensor}` of the specs' dtypes, every input with the same
        batch size.

    Raises:
        InputError: naming the input key and the value that does not fit.
    """
    keys = list(specs)
    if isinstance(value, Mapping) and not is_b64(value):
        check_keys(value, keys, owner)
        columns = dict(value)
    elif isinstance(value, (list, tuple)) and len(keys) > 1:
        if not ordered:
            raise InputError(
                f"'{owner}' takes {len(keys)} inputs {sorted(keys)} and their order is not "
                "recorded: give a dict keyed by input name.")
        if len(value) != len(keys):
            raise InputError(
                f"'{owner}' takes {len(keys)} inputs {keys} in this order, but a "
                f"{type(value).__name__} of {len(value)} was given: give one batch per input, "
                "or a dict keyed by input name.")
        columns = dict(zip(keys, value))
    elif len(keys) == 1:
        columns = {keys[0]: value}
    else:
        raise InputError(
            f"'{owner}' takes {len(keys)} inputs {keys}, but one {type(value).__name__} was "
            "given: give a dict keyed by input name (or a list in input order).")
    tensors = {key: column_tensor(columns[key], specs[key], key, owner) for key in keys}
    check_batch_sizes(tensors, owner)
    return tensors


def check_keys(given, keys, owner, index=None):
    """Refuses missing or unexpected input keys, naming them."""
    where = "The inputs have" if index is None else f"Instance {index} has"
    missing = sorted(set(keys) - set(given))
    unexpected = sorted(set(given) - set(keys), key=str)
    if missing or unexpected:
        bad = (missing or unexpected)[0]
        raise InputError(
            f"{where} keys {sorted(given, key=str)} but '{owner}' takes inputs "
            f"{sorted(keys)} (missing: {missing}, unexpected: {unexpected}).",
            key=bad, index=index)


def check_batch_sizes(tensors, owner):
    sizes = {key: int(t.shape[0]) for key, t in tensors.items() if t.shape.rank}
    if len(set(sizes.values())) > 1:
        raise InputError(
            f"The inputs of '{owner}' have different batch sizes {sizes}: every input needs "
            "one value per instance.", key=min(sizes, key=sizes.get))


def column_tensor(values, spec, key, owner):
    """One input's batch as a tensor of `spec`, checked; scalars fill `[None(, 1)]` inputs."""
    dtype = spec.dtype
    if isinstance(values, tf.Tensor) and values.dtype == dtype and spec.shape.is_compatible_with(
            values.shape):
        return values  # already what the signature takes
    try:
        array = _as_array(values, dtype)
    except (ValueError, TypeError, binascii.Error) as e:
        raise InputError(
            f"Input '{key}' of '{owner}' expects {describe_spec(spec)}, but the values "
            f"cannot be read as that: {e}.", key=key) from e
    array = _cast(array, values, dtype, key, spec, owner)
    array = _fit_rank(array, spec)
    expected = spec.shape
    if expected.rank is not None and not expected.is_compatible_with(array.shape):
        raise InputError(
            f"Input '{key}' of '{owner}' expects {describe_spec(spec)} "
            f"(one instance: {expected.as_list()[1:]}), but the values give shape "
            f"{list(array.shape[1:])} per instance (batch shape {list(array.shape)}; "
            f"first value: {short(_first(values))}).", key=key)
    return tf.constant(array, dtype=dtype)


def _as_array(values, dtype):
    if isinstance(values, tf.Tensor):
        values = values.numpy()
    if dtype == tf.string:
        return np.asarray(_decode_strings(values), dtype=object)
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values
    return np.asarray(_decode_numbers(values, dtype))


def _decode_strings(values):
    """Nested lists/arrays of str, bytes or `{"b64": ...}` -> nested lists of bytes."""
    if is_b64(values):
        return base64.b64decode(values["b64"], validate=True)
    if isinstance(values, np.ndarray):
        return _decode_strings(values.tolist()) if values.ndim else _decode_strings(values.item())
    if isinstance(values, (list, tuple)):
        return [_decode_strings(v) for v in values]
    if isinstance(values, str):
        return values.encode("utf-8")
    return values


def _decode_numbers(values, dtype):
    if is_b64(values):
        raise TypeError(f'a {{"b64": ...}} value feeds only string inputs, not {dtype.name}')
    if isinstance(values, (list, tuple)):
        return [_decode_numbers(v, dtype) for v in values]
    return values


def _cast(array, values, dtype, key, spec, owner):
    if dtype == tf.string:
        bad = [v for v in np.ravel(array) if not isinstance(v, bytes)]
        if bad:
            raise InputError(
                f"Input '{key}' of '{owner}' expects {describe_spec(spec)}, but got the value "
                f"{short(bad[0])}; give text as a string and binary data as "
                '{"b64": "..."}.', key=key)
        return array
    if array.dtype == object or array.dtype.kind in "SU":
        bad = next((v for v in np.ravel(array) if not _is_number(v)), array.flat[0] if array.size else None)
        raise InputError(
            f"Input '{key}' of '{owner}' expects {describe_spec(spec)}, but got the value "
            f"{short(bad)} (first value: {short(_first(values))}). Ragged or non-numeric "
            "values cannot feed a numeric input.", key=key)
    target = dtype.as_numpy_dtype
    if np.issubdtype(target, np.integer) and array.dtype.kind == "f":
        fractional = np.mod(array, 1) != 0
        if np.any(fractional):
            raise InputError(
                f"Input '{key}' of '{owner}' expects {describe_spec(spec)}, but got the "
                f"non-integer value {array[fractional].flat[0].item()!r}.", key=key)
    return array.astype(target)


def _fit_rank(array, spec):
    """A scalar -> one instance; `[batch]` -> `[batch, 1]` for a `[None, 1]` input (as Keras does)."""
    rank = spec.shape.rank
    if rank is None or array.ndim == rank:
        return array
    example = spec.shape.as_list()[1:]
    if example in ([], [1]):
        if array.ndim == 0:
            return array.reshape([1] * max(rank, 1))
        if array.ndim == 1 and rank == 2:
            return array[:, None]
    return array


def _first(values):
    if isinstance(values, np.ndarray):
        return values.flat[0] if values.size else values
    if isinstance(values, (list, tuple)) and values:
        return values[0]
    return values


def is_b64(value):
    return isinstance(value, Mapping) and set(value) == {"b64"}


def is_scalar(value):
    """A single value: string, number, `{"b64": ...}` or a 0-d array."""
    if isinstance(value, (np.ndarray, tf.Tensor)):
        return len(value.shape) == 0
    return is_b64(value) or isinstance(value, (str, bytes)) or _is_number(value)


def _is_number(value):
    return isinstance(value, (int, float, np.number, bool, np.bool_))


def short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
