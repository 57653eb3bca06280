"""JSON round trip for dicts of tensors (samples kept inside an export).

Values are stored exactly: `tf.io.serialize_tensor` bytes in base64, with the
dtype and shape alongside for people reading the file.
"""

import base64

import tensorflow as tf


def encode_tensor_dict(tensors):
    """`{key: tensor-like}` -> JSON-able dict."""
    out = {}
    for key, value in tensors.items():
        t = tf.convert_to_tensor(value)
        out[key] = {
            "dtype": t.dtype.name,
            "shape": t.shape.as_list(),
            "serialized_b64": base64.b64encode(
                tf.io.serialize_tensor(t).numpy()
            ).decode("ascii"),
        }
    return out


def decode_tensor_dict(obj):
    """Inverse of `encode_tensor_dict`: JSON-able dict -> `{key: tf.Tensor}`."""
    out = {}
    for key, entry in obj.items():
        raw = base64.b64decode(entry["serialized_b64"])
        out[key] = tf.io.parse_tensor(raw, out_type=tf.as_dtype(entry["dtype"]))
    return out
