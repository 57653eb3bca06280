"""The provenance record written inside every export.

It says what wrote the export (package, TensorFlow and Keras versions), which
signatures it has, and, from the callback, the epoch and monitored value it
was exported at. Its presence also marks a directory as one of our exports.
"""

import datetime
import math

import tensorflow as tf

from xai_callback.publish import storage
from xai_callback._keras import keras_backend, keras_version, use_legacy_keras
from xai_callback._version import __version__
from xai_callback.names import PROVENANCE_FILE, extra_path

VERIFIED_WITH = "verified_with"  # the output tolerances of the export's own check


def build_provenance(signature_names, explained_signature, output_key=None, training=None,
                     tolerances=None):
    """The provenance dict.

    Args:
        signature_names: names of the signatures written.
        explained_signature: the signature the explanation service explains.
        output_key: the explained output key, when one was named.
        training: optional dict from the callback (epoch, monitor, value, ...).
        tolerances: `{"rtol": ..., "atol": ...}` the export was verified
            with; `validate` checks with the same (None: not verified).
    """
    record = {
        "package": "xai-callback",
        "package_version": __version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras_version(),
        "keras_flavour": "tf_keras" if use_legacy_keras() else "keras3",
        "keras_backend": keras_backend(),
        "signatures": sorted(signature_names),
        "explained_signature": explained_signature,
        "output_key": output_key,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if training:
        record["training"] = {k: _json_number(v) for k, v in training.items()}
    if tolerances:
        record[VERIFIED_WITH] = dict(tolerances)
    return record


def _json_number(value):
    """NaN/inf are not valid JSON; store them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item"):
        return _json_number(value.item())
    return value


def write_provenance(export_dir, record):
    storage.write_json(extra_path(export_dir, PROVENANCE_FILE), record)


def verified_tolerances(record):
    """`{"rtol", "atol"}` an export recorded it was verified with, or None."""
    tolerances = (record or {}).get(VERIFIED_WITH)
    if not isinstance(tolerances, dict):
        return None
    values = {k: tolerances.get(k) for k in ("rtol", "atol")}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
               for v in values.values()):
        return None
    return values


def read_provenance(export_dir):
    """The provenance dict, or None for exports this package did not write."""
    path = extra_path(export_dir, PROVENANCE_FILE)
    return storage.read_json(path) if storage.exists(path) else None
