"""The fast path of decoding: plain numeric instances -> numpy arrays, one `np.asarray` per input.

The general decoder (`xai_callback.explain.instances.instances_to_tensors`)
walks every value in Python (b64 leaves, strings, checks), about 250 µs for
8 instances of 4 floats: a large part of a small request's cost. Most
requests to a numeric model are nested lists of numbers, which numpy reads
in a few microseconds. `NumericInputs.arrays` takes exactly those and gives
the arrays the general decoder would give (same dtype, shape and values; a
flat `[batch]` column fills a `[None, 1]` input, as there); anything else
(strings, b64, ragged or mis-shaped values, wrong keys, batch sizes that
differ, non-integral values for integer inputs) gives None, and the caller
runs the general decoder, which decodes it or words the error as always.
tests/test_serve_fast_path.py holds the two paths to the same answers.
"""

from collections.abc import Mapping

import numpy as np


class NumericInputs:
    """A signature's inputs, prepared once for the numeric fast path.

    Example:

    ```python
    fast = NumericInputs({"x": tf.TensorSpec([None, 3], tf.float32)})
    fast.arrays([[1, 2, 3], [4, 5, 6]])["x"].dtype   # float32, shape (2, 3)
    fast.arrays([["1", "2", "3"]])                   # None: not plain numbers
    ```

    Args:
        specs: `{key: tf.TensorSpec}` of the signature's inputs (batch first).
    """

    def __init__(self, specs):
        self.keys = sorted(specs)
        self.layout = {}
        # A row `{"b64": ...}` is a bare binary value to the general decoder,
        # never a keyed instance: with an input named "b64", leave it all to it.
        if "b64" in specs:
            return
        for key, spec in specs.items():
            dtype = spec.dtype
            if not (dtype.is_floating or dtype.is_integer or dtype.is_bool) or dtype.is_quantized:
                self.layout = {}
                return
            dims = None if spec.shape.rank is None else tuple(spec.shape.as_list())
            self.layout[key] = (np.dtype(dtype.as_numpy_dtype), dims)

    def arrays(self, data):
        """`{key: np.ndarray}` of row instances or columnar inputs, or None
        when they are not plain numbers fitting the specs."""
        if not self.layout:
            return None
        columns = self._columns(data)
        if columns is None:
            return None
        arrays = {}
        for key, (dtype, dims) in self.layout.items():
            array = _numeric_array(columns[key], dtype, dims)
            if array is None:
                return None
            arrays[key] = array
        if len({a.shape[0] for a in arrays.values() if a.ndim}) > 1:
            return None  # the general decoder names the input whose batch size differs
        return arrays

    def _columns(self, data):
        keys = self.keys
        if isinstance(data, Mapping):  # columnar: {key: [value per instance]}
            if len(data) != len(keys) or any(key not in data for key in keys):
                return None
            return data
        if not isinstance(data, list) or not data:
            return None
        if not isinstance(data[0], Mapping):  # bare values of a single input
            return {keys[0]: data} if len(keys) == 1 else None
        try:
            if any(len(row) != len(keys) for row in data):
                return None
            return {key: [row[key] for row in data] for key in keys}
        except (KeyError, TypeError):  # a row without the key, or not an object
            return None


def _numeric_array(values, dtype, dims):
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):  # ragged
        return None
    kind = array.dtype.kind
    if kind not in "biuf":  # strings, objects (b64, None, mixed)
        return None
    if dtype.kind in "iu" and kind == "f" and not np.all(np.mod(array, 1) == 0):
        return None  # the general decoder names the non-integer value
    if dims is not None and len(dims) == 2 and dims[1] == 1 and array.ndim == 1:
        array = array[:, None]  # one scalar per instance, as `inputs._fit_rank` reads it
    if dims is not None and (len(dims) != array.ndim or any(
            d is not None and d != n for d, n in zip(dims, array.shape))):
        return None
    return array.astype(dtype, copy=False)
