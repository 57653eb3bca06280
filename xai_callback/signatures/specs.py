"""Tensor specs of signatures: reading them, describing them, comparing them.

Every room reads a signature's inputs and outputs the same way
(`signature_io`) and names a spec the same way in its messages
(`describe_spec`, e.g. `float32[None,3]`).
"""

import tensorflow as tf

from xai_callback.errors import ExportVerificationError
from xai_callback.names import SERVING_DEFAULT, XAI_MODEL


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
