"""TF Serving JSON instances (or `model.predict`-style inputs) -> batched tensors.

Follows the TF Serving REST "row" format: a list of instances, each a dict
keyed by input name, or a bare value when the signature has one input; binary
values are `{"b64": "..."}`; a scalar feeds an input of shape `[None, 1]`. A
dict of batched columns (`{key: [v0, v1, ...]}`, the "columnar" format), a
dict of scalars (one instance), and whatever `xai_callback.signatures.inputs.as_input_dict`
takes (an array for a single input, numpy string arrays) are accepted too.
"""

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xai_callback.explain.errors import InstanceError
from xai_callback.signatures.inputs import as_input_dict, check_keys, column_tensor, is_b64, is_scalar, short


def instances_to_tensors(instances, input_specs, signature_name="serving_default"):
    """Converts instances to `{key: tf.Tensor}` batched along axis 0.

    Example:

    ```python
    specs = {"x": tf.TensorSpec([None, 3], tf.float32)}
    instances_to_tensors([[1, 2, 3], {"x": [4, 5, 6]}], specs)["x"].shape  # (2, 3)
    ```

    Args:
        instances: list of instances (dicts or bare values), a dict of
            batched columns or of one instance's scalars, or an array for a
            single input.
        input_specs: `{key: tf.TensorSpec}` of the signature (batch dim first).
        signature_name: used in error messages.

    Raises:
        InstanceError: naming the instance, key and value that do not fit.
    """
    keys = sorted(input_specs)
    if isinstance(instances, Mapping) and not is_b64(instances):
        if not (instances and all(is_scalar(v) for v in instances.values())):
            return as_input_dict(instances, input_specs, signature_name, ordered=False)
        instances = [instances]  # one instance given by its scalars
    elif isinstance(instances, (np.ndarray, tf.Tensor)) or (
            isinstance(instances, (list, tuple)) and len(keys) > 1 and instances
            and not any(isinstance(row, Mapping) for row in instances)):
        return as_input_dict(instances, input_specs, signature_name, ordered=False)
    rows = list(instances)
    if not rows:
        raise InstanceError("No instances were given: pass a non-empty list.")
    columns = {key: [] for key in keys}
    for index, row in enumerate(rows):
        row = _as_row(row, keys, index, signature_name)
        for key in keys:
            columns[key].append(row[key])
    return {key: column_tensor(columns[key], input_specs[key], key, signature_name)
            for key in keys}


def _as_row(row, keys, index, signature_name):
    """`{key: value}` for one instance; bare values feed a single input."""
    if isinstance(row, Mapping) and not is_b64(row):
        check_keys(row, keys, signature_name, index)
        return row
    if len(keys) != 1:
        raise InstanceError(
            f"Instance {index} is a bare value ({short(row)}), but '{signature_name}' "
            f"takes {len(keys)} inputs {keys}: give each instance as a dict keyed by "
            "input name.",
            index=index,
        )
    return {keys[0]: row}
