"""Small input batches used to verify exports and probe gradients."""

import numpy as np
import tensorflow as tf

# Re-exported: the exporter and the validator take model inputs from a sample.
from xai_callback.verify import explained_inputs_from_sample  # noqa: F401

GENERATED_SAMPLE_ROWS = 4


def generate_sample(specs, owner, rows=GENERATED_SAMPLE_ROWS, seed=0):
    """A deterministic batch for numeric input specs `{key: tf.TensorSpec}`.

    Floats are uniform in [0, 1), integers zero, booleans False; unknown
    dimensions become `rows` (batch) or 8.

    Raises:
        ValueError: an input is a string (cannot be generated): the caller
            must pass `sample=`.
    """
    rng = np.random.default_rng(seed)
    sample = {}
    for key, spec in specs.items():
        if spec.dtype == tf.string:
            raise ValueError(
                f"'{owner}' takes string input '{key}', which cannot be generated to "
                "verify the export: pass sample={...} with a few real inputs in "
                f"'{owner}' format (e.g. sample={{'{key}': [...]}}), or verify=False."
            )
        shape = [rows if i == 0 and d is None else (d if d is not None else 8)
                 for i, d in enumerate(spec.shape.as_list() or [])]
        if spec.dtype.is_floating:
            value = rng.uniform(0.0, 1.0, size=shape)
        elif spec.dtype.is_bool:
            value = np.zeros(shape, bool)
        else:
            value = np.zeros(shape)
        sample[key] = tf.constant(value, dtype=spec.dtype)
    return sample
