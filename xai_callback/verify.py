"""Checks of the explanation contract on a set of signatures.

Each check raises `ExportVerificationError` naming the signature, key and
value that differ. The exporter runs them on the reloaded export; `validate`
runs them on any SavedModel, ours or not.
"""

import numpy as np
import tensorflow as tf

from xai_callback.errors import ExportVerificationError
from xai_callback.layout import SERVING_DEFAULT, XAI_MODEL, XAI_PREPROCESS

# Output tolerances of the exporter's checks, and of `validate` on exports that
# did not record theirs (`np.isclose` semantics).
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5
# Low-precision floats round at about their machine epsilon: two correct runs
# of the same graph may differ by a few units in the last place.
_EPSILON = {tf.bfloat16: 2.0 ** -7, tf.float16: 2.0 ** -10}
_EPSILONS_ALLOWED = 4


def _as_spec(value, name=None):
    if isinstance(value, tf.TensorSpec):
        return value
    return tf.TensorSpec(value.shape, value.dtype, name=name)


def signature_io(fn):
    """`(inputs, outputs)` of a signature, each `{key: tf.TensorSpec}`.

    Works for signatures of a loaded SavedModel (keyword inputs) and for
    concrete functions traced with a named positional `input_signature`.
    """
    args, kwargs = fn.structured_input_signature
    inputs = {}
    for spec in tf.nest.flatten(args):
        inputs[spec.name] = spec
    for key, spec in kwargs.items():
        inputs[key] = spec
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    return inputs, {k: _as_spec(v, k) for k, v in outputs.items()}


def describe_spec(spec):
    """`float32[None,3]`-style text for messages and listings."""
    dims = "?" if spec.shape.rank is None else ",".join(
        "None" if d is None else str(d) for d in spec.shape.as_list()
    )
    return f"{spec.dtype.name}[{dims}]"


def explained_signature_name(signatures):
    """The signature an explanation service uses: `xai_model` if present."""
    return XAI_MODEL if XAI_MODEL in signatures else SERVING_DEFAULT


def check_signature_set(signatures):
    """The signature set is one the service can use (both rules below)."""
    check_serving_default_present(signatures)
    check_xai_model_present(signatures)


def check_serving_default_present(signatures):
    """`serving_default` exists: serving systems and the service call it."""
    if SERVING_DEFAULT not in signatures:
        raise ExportVerificationError(
            f"The export has no '{SERVING_DEFAULT}' signature (found: "
            f"{sorted(signatures.keys())}). Serving systems and the explanation "
            "service call it by default.",
            signature=SERVING_DEFAULT,
        )


def check_xai_model_present(signatures):
    """With more than one signature, one is named `xai_model`."""
    names = sorted(signatures.keys())
    if len(names) > 1 and XAI_MODEL not in signatures:
        raise ExportVerificationError(
            f"The export has {len(names)} signatures {names} but no '{XAI_MODEL}'. "
            "With more than one signature the explanation service cannot guess "
            f"which to explain: save the differentiable model as '{XAI_MODEL}'.",
            signature=XAI_MODEL,
        )


def check_preprocess_feeds_model(signatures):
    """`xai_preprocess` outputs equal `xai_model` inputs in keys, dtypes, shapes.

    Does nothing when the export has no `xai_preprocess`.
    """
    if XAI_PREPROCESS not in signatures:
        return
    if XAI_MODEL not in signatures:
        raise ExportVerificationError(
            f"The export has '{XAI_PREPROCESS}' but no '{XAI_MODEL}' to feed.",
            signature=XAI_MODEL,
        )
    _, produced = signature_io(signatures[XAI_PREPROCESS])
    expected, _ = signature_io(signatures[XAI_MODEL])
    check_specs_match(produced, expected, XAI_PREPROCESS, XAI_MODEL)


def check_specs_match(produced, expected, producer, consumer):
    """Outputs of `producer` equal inputs of `consumer` key by key."""
    if set(produced) != set(expected):
        missing = sorted(set(expected) - set(produced))
        extra = sorted(set(produced) - set(expected))
        raise ExportVerificationError(
            f"'{producer}' outputs keys {sorted(produced)} but '{consumer}' takes "
            f"{sorted(expected)} (missing: {missing}, unexpected: {extra}).",
            signature=producer,
            key=(missing or extra)[0],
        )
    for key in sorted(expected):
        got, want = produced[key], expected[key]
        if not same_spec(got, want):
            raise ExportVerificationError(
                f"'{producer}' output '{key}' is {describe_spec(got)} but "
                f"'{consumer}' input '{key}' is {describe_spec(want)}: keys, dtypes "
                "and shapes must be equal (cast, or fix the shape with "
                "tf.ensure_shape/set_shape, inside the preprocess function).",
                signature=producer,
                key=key,
            )


def same_spec(a, b):
    """Equal dtype and shape (unknown dims must be unknown on both sides)."""
    if a.dtype != b.dtype or a.shape.rank != b.shape.rank:
        return False
    return a.shape.rank is None or a.shape.as_list() == b.shape.as_list()


def explained_inputs_from_sample(signatures, sample):
    """The explained signature's inputs for a `serving_default` sample.

    Through `xai_preprocess` when it takes the sample's keys; the sample itself
    when it has the explained signature's keys; else None (e.g. a custom
    `serving_default` whose inputs are neither).
    """
    if XAI_PREPROCESS in signatures:
        if set(signature_io(signatures[XAI_PREPROCESS])[0]) == set(sample):
            return signatures[XAI_PREPROCESS](**sample)
        return None
    inputs, _ = signature_io(signatures[explained_signature_name(signatures)])
    if set(inputs) <= set(sample):
        return {k: sample[k] for k in inputs}
    return None


def check_serving_identity(signatures, sample, expected=None, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
    """On `sample`, `serving_default(x) == xai_model(**xai_preprocess(x))`.

    Compared on the output keys both sides have. Without `xai_preprocess`,
    `xai_model` is called on `x` directly when it takes the same keys (a
    custom `serving_default` with its own inputs cannot be composed).

    Args:
        signatures: mapping of signature name to function (e.g.
            `tf.saved_model.load(d).signatures`).
        sample: dict of `serving_default` inputs (a small batch).
        expected: optional `{output_key: array}` that `serving_default` must
            also equal, e.g. the live model's prediction.
        rtol, atol: float tolerances (`np.isclose` semantics); widened to a
            few epsilons for bfloat16 and float16 outputs.
    """
    served = signatures[SERVING_DEFAULT](**sample)
    for key, value in (expected or {}).items():
        if key not in served:
            raise ExportVerificationError(
                f"Output '{key}' of the live model is missing from "
                f"'{SERVING_DEFAULT}' outputs {sorted(served)}.",
                signature=SERVING_DEFAULT,
                key=key,
            )
        _check_close(served[key], value, SERVING_DEFAULT, key, "the live model's prediction", rtol, atol)
    explained = explained_signature_name(signatures)
    if explained == SERVING_DEFAULT:
        return
    model_inputs = explained_inputs_from_sample(signatures, sample)
    if model_inputs is None:
        return  # a custom serving_default with its own inputs: nothing to compose
    composed = signatures[explained](**model_inputs)
    common = sorted(set(served) & set(composed))
    if not common:
        raise ExportVerificationError(
            f"'{SERVING_DEFAULT}' outputs {sorted(served)} share no key with "
            f"'{explained}' outputs {sorted(composed)}.",
            signature=SERVING_DEFAULT,
        )
    for key in common:
        _check_close(served[key], composed[key], SERVING_DEFAULT, key,
                     f"the composed {explained}(**{XAI_PREPROCESS}(x))"
                     if XAI_PREPROCESS in signatures else f"{explained}(x)", rtol, atol)


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


def _check_close(got, want, signature, key, against, rtol, atol):
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
        raise ExportVerificationError(
            f"Signature '{signature}' output '{key}' differs from {against}: at "
            f"index {index} it is {got[index]!r}, expected {want[index]!r} "
            f"(rtol={rtol}, atol={atol}; {int((~close).sum())} of {close.size} "
            "values differ).",
            signature=signature,
            key=key,
        )


def _is_inexact(dtype):
    """Float or complex, including ml_dtypes' bfloat16 (numpy kind 'V')."""
    try:
        tf_dtype = tf.as_dtype(dtype)
    except TypeError:
        return False
    return tf_dtype.is_floating or tf_dtype.is_complex
