"""Output comparisons within tolerances, the same for every check.

`np.isclose` semantics with the package's default tolerances, widened to a
few epsilons for low-precision floats (bfloat16, float16).
"""

import numpy as np
import tensorflow as tf

from xai_callback.errors import ExportVerificationError

# Output tolerances of the exporter's checks, and of `validate` on exports that
# did not record theirs (`np.isclose` semantics).
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5
# Low-precision floats round at about their machine epsilon: two correct runs
# of the same graph may differ by a few units in the last place.
_EPSILON = {tf.bfloat16: 2.0 ** -7, tf.float16: 2.0 ** -10}
_EPSILONS_ALLOWED = 4


def tolerances_for(dtype, rtol, atol):
    """`(rtol, atol)` for outputs of `dtype`: at least a few epsilons of a
    low-precision float (bfloat16, float16), as given otherwise."""
    epsilon = _EPSILON.get(tf.as_dtype(dtype)) if _is_inexact(dtype) else None
    if epsilon is None:
        return rtol, atol
    floor = _EPSILONS_ALLOWED * epsilon
    return max(rtol, floor), max(atol, floor)


def _as_array(value):
    # `np.asarray` refuses bfloat16 tensors; `.numpy()` gives an ml_dtypes array.
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def check_close(got, want, signature, key, against, rtol, atol):
    got, want = _as_array(got), _as_array(want)
    if got.shape != want.shape:
        raise ExportVerificationError(
            f"Signature '{signature}' output '{key}' has shape {got.shape}, but "
            f"{against} has shape {want.shape}.",
            signature=signature,
            key=key,
        )
    if _is_inexact(got.dtype) or _is_inexact(want.dtype):
        rtol, atol = (max(pair) for pair in zip(tolerances_for(got.dtype, rtol, atol),
                                                tolerances_for(want.dtype, rtol, atol)))
        # float64 (complex128) so that bfloat16 and float16 compare exactly as numbers.
        wide = np.complex128 if "c" in (got.dtype.kind, want.dtype.kind) else np.float64
        close = np.isclose(got.astype(wide), want.astype(wide), rtol=rtol, atol=atol)
    else:
        close = got == want
    if not np.all(close):
        index = tuple(int(i) for i in np.argwhere(~close)[0])
        values = f"it is {got[index]!r}, expected {want[index]!r}"
        if _is_nan(got[index]) and _is_nan(want[index]):
            values = ("both are NaN, and NaN never equals NaN: the inputs compared on (a sample "
                      "holding NaN, a preprocessing giving NaN) or the model make NaN")
        raise ExportVerificationError(
            f"Signature '{signature}' output '{key}' differs from {against}: at "
            f"index {index} {values} "
            f"(rtol={rtol}, atol={atol}; {int((~close).sum())} of {close.size} "
            "values differ).",
            signature=signature,
            key=key,
        )


def _is_nan(value):
    array = np.asarray(value)
    try:  # float64 also reads ml_dtypes' bfloat16
        return bool(np.isnan(array.astype(np.complex128 if array.dtype.kind == "c" else np.float64)))
    except (TypeError, ValueError):
        return False


def _is_inexact(dtype):
    """Float or complex, including ml_dtypes' bfloat16 (numpy kind 'V')."""
    try:
        tf_dtype = tf.as_dtype(dtype)
    except TypeError:
        return False
    return tf_dtype.is_floating or tf_dtype.is_complex
