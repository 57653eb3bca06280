"""Small input batches used to verify exports and probe gradients."""

import numpy as np
import tensorflow as tf


GENERATED_SAMPLE_ROWS = 4


def generate_sample(specs, owner, rows=GENERATED_SAMPLE_ROWS, seed=0, known=None):
    """A deterministic batch for input specs `{key: tf.TensorSpec}`.

    Inputs in `known` (`{key: list of values}`, e.g. vocabulary entries of the
    lookup layer that reads the input) repeat those values; other floats are
    uniform in [0, 1), integers zero, booleans False; unknown dimensions
    become `rows` (batch) or 8.

    Raises:
        ValueError: a string input has no known values (cannot be made up):
            the caller must pass `sample=`.
    """
    rng = np.random.default_rng(seed)
    known = known or {}
    sample = {}
    for key, spec in specs.items():
        shape = [rows if i == 0 and d is None else (d if d is not None else 8)
                 for i, d in enumerate(spec.shape.as_list() or [])]
        if key in known:
            values = np.asarray(known[key], dtype=object if spec.dtype == tf.string else None)
            sample[key] = tf.constant(np.resize(values, shape), dtype=spec.dtype)
            continue
        if spec.dtype == tf.string:
            raise ValueError(
                f"'{owner}' takes string input '{key}', which cannot be generated to "
                "verify the export: pass sample={...} with a few real inputs in "
                f"'{owner}' format (e.g. sample={{'{key}': [...]}}), or verify=False."
            )
        if spec.dtype.is_floating:
            value = rng.uniform(0.0, 1.0, size=shape)
        elif spec.dtype.is_bool:
            value = np.zeros(shape, bool)
        else:
            value = np.zeros(shape)
        sample[key] = tf.constant(value, dtype=spec.dtype)
    return sample
