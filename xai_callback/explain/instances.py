"""TF Serving JSON instances -> batched tensors for a signature.

Follows the TF Serving REST "row" format: a list of instances, each a dict
keyed by input name, or a bare value when the signature has one input; binary
values are `{"b64": "..."}`. A dict of batched columns (`{key: [v0, v1, ...]}`,
the "columnar" format) is accepted too.
"""

import base64
import binascii
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xai_callback.explain.errors import InstanceError
from xai_callback.verify import describe_spec


def instances_to_tensors(instances, input_specs, signature_name="serving_default"):
    """Converts instances to `{key: tf.Tensor}` batched along axis 0.

    Example:

    ```python
    specs = {"x": tf.TensorSpec([None, 3], tf.float32)}
    instances_to_tensors([[1, 2, 3], {"x": [4, 5, 6]}], specs)["x"].shape  # (2, 3)
    ```

    Args:
        instances: list of instances (dicts or bare values), or a dict of
            batched columns.
        input_specs: `{key: tf.TensorSpec}` of the signature (batch dim first).
        signature_name: used in error messages.

    Raises:
        InstanceError: naming the instance, key and value that do not fit.
    """
    keys = sorted(input_specs)
    if isinstance(instances, Mapping) and not _is_b64(instances):
        _check_keys(instances, keys, None, signature_name)
        columns = {key: list(instances[key]) for key in keys}
    else:
        rows = list(instances)
        if not rows:
            raise InstanceError("No instances were given: pass a non-empty list.")
        columns = {key: [] for key in keys}
        for index, row in enumerate(rows):
            row = _as_row(row, keys, index, signature_name)
            for key in keys:
                columns[key].append(row[key])
    return {
        key: _column_tensor(columns[key], input_specs[key], key, signature_name)
        for key in keys
    }


def _as_row(row, keys, index, signature_name):
    """`{key: value}` for one instance; bare values feed a single input."""
    if isinstance(row, Mapping) and not _is_b64(row):
        _check_keys(row, keys, index, signature_name)
        return row
    if len(keys) != 1:
        raise InstanceError(
            f"Instance {index} is a bare value ({_short(row)}), but '{signature_name}' "
            f"takes {len(keys)} inputs {keys}: give each instance as a dict keyed by "
            "input name.",
            index=index,
        )
    return {keys[0]: row}


def _check_keys(row, keys, index, signature_name):
    where = "The instances" if index is None else f"Instance {index}"
    missing = sorted(set(keys) - set(row))
    unexpected = sorted(set(row) - set(keys))
    if missing or unexpected:
        bad = (missing or unexpected)[0]
        raise InstanceError(
            f"{where} has keys {sorted(row)} but '{signature_name}' takes inputs "
            f"{keys} (missing: {missing}, unexpected: {unexpected}).",
            key=bad,
            index=index,
        )


def _column_tensor(values, spec, key, signature_name):
    """Stacks one input's values and checks them against its TensorSpec."""
    dtype = spec.dtype
    try:
        decoded = [_decode_value(v, dtype) for v in values]
        array = np.asarray(decoded, dtype=object if dtype == tf.string else None)
    except (ValueError, TypeError, binascii.Error) as e:
        raise InstanceError(
            f"Input '{key}' of '{signature_name}' expects {describe_spec(spec)}, but "
            f"the instances cannot be read as that: {e}.",
            key=key,
        ) from e
    array = _cast(array, values, dtype, key, spec, signature_name)
    expected = spec.shape
    if expected.rank is not None and not expected.is_compatible_with(array.shape):
        raise InstanceError(
            f"Input '{key}' of '{signature_name}' expects {describe_spec(spec)} "
            f"(one instance: {expected.as_list()[1:]}), but the instances give shape "
            f"{list(array.shape[1:])} per instance (first value: {_short(values[0])}).",
            key=key,
        )
    return tf.constant(array, dtype=dtype)


def _cast(array, values, dtype, key, spec, signature_name):
    if dtype == tf.string:
        bad = [v for v in np.ravel(array) if not isinstance(v, bytes)]
        if bad:
            raise InstanceError(
                f"Input '{key}' of '{signature_name}' expects {describe_spec(spec)}, but "
                f"got the value {_short(bad[0])}; give text as a string and binary "
                'data as {"b64": "..."}.',
                key=key,
            )
        return array
    if array.dtype == object or array.dtype.kind in "SU":
        bad = next((v for v in np.ravel(array) if not _is_number(v)), array.flat[0])
        raise InstanceError(
            f"Input '{key}' of '{signature_name}' expects {describe_spec(spec)}, but "
            f"got the value {_short(bad)} (from instance value {_short(values[0])}). "
            "Ragged or non-numeric values cannot feed a numeric input.",
            key=key,
        )
    target = dtype.as_numpy_dtype
    if np.issubdtype(target, np.integer) and array.dtype.kind == "f":
        if not np.all(np.equal(np.mod(array, 1), 0)):
            bad = array[np.mod(array, 1) != 0].flat[0]
            raise InstanceError(
                f"Input '{key}' of '{signature_name}' expects {describe_spec(spec)}, "
                f"but got the non-integer value {bad!r}.",
                key=key,
            )
    return array.astype(target)


def _decode_value(value, dtype):
    """Nested lists with `{"b64": ...}` leaves -> nested lists of bytes/numbers."""
    if _is_b64(value):
        if dtype != tf.string:
            raise TypeError(f'a {{"b64": ...}} value feeds only string inputs, not {dtype.name}')
        return base64.b64decode(value["b64"], validate=True)
    if isinstance(value, (list, tuple)):
        return [_decode_value(v, dtype) for v in value]
    if dtype == tf.string and isinstance(value, str):
        return value.encode("utf-8")
    return value


def _is_b64(value):
    return isinstance(value, Mapping) and set(value) == {"b64"}


def _is_number(value):
    return isinstance(value, (int, float, np.number, bool, np.bool_))


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
