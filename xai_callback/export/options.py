"""The engine's arguments that need no model, checked where they are given.

The callback checks them at construction (before it has a model), the
exporter in `__init__`: a wrongly typed value fails before training either
way, named with the value received.
"""

import reprlib
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xai_callback.arguments import check_bool, check_number, check_str
from xai_callback.export import checks
from xai_callback.names import RESERVED_SIGNATURES
from xai_callback.publish.destination import check_version_options
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL

BOOLEAN_OPTIONS = ("legacy_metadata", "verify", "overwrite", "versioned", "split", "store_sample",
                   "explain_signature")


def check_export_options(**options):
    """Checks the engine's arguments that need no model; returns them normalised.

    The callback calls it at construction (before it has a model), the
    exporter in `__init__`: a wrongly typed value fails before training either
    way, named with the value received. Functions are checked when traced.

    Raises:
        TypeError, ValueError, SpecError: an argument of the wrong type or out
            of range (the message names it and the value).
    """
    from xai_callback.spec import ExplanationSpec
    from xai_callback.spec.methods import check_in_graph

    checked = dict(options)
    # Types first: a config's "false" must not count as true (overwrite!).
    for name in BOOLEAN_OPTIONS:
        if name in options:
            checked[name] = check_bool(name, options[name])
    for name, default in (("rtol", DEFAULT_RTOL), ("atol", DEFAULT_ATOL)):
        checked[name] = check_number(name, options.get(name, default), minimum=0)
    checked["output_key"] = check_str("output_key", options.get("output_key"), optional=True)
    check_version_options(checked.get("versioned", False), options.get("keep"))
    extra_signatures = options.get("extra_signatures")
    if extra_signatures is not None and not isinstance(extra_signatures, Mapping):
        raise TypeError(
            "extra_signatures must be a dict {name: function}; received "
            f"{extra_signatures!r} of type {type(extra_signatures).__name__}."
        )
    for name in extra_signatures or {}:
        if name in RESERVED_SIGNATURES:
            raise ValueError(
                f"extra_signatures uses the reserved name {name!r}; pass it as "
                "serving_fn / model_fn / preprocess_fn instead, and use another "
                "name for additional signatures."
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"extra_signatures has an invalid name {name!r}.")
    track = options.get("track")
    if track is not None and not isinstance(track, (list, tuple)):
        raise TypeError(
            "track must be a list of trackable objects (lookup tables, layers) or None; "
            f"received track={track!r} of type {type(track).__name__}.")
    check_sample_type(options.get("sample"))
    checks.check_sample_rows(options.get("sample"))
    checked["explanation_spec"] = ExplanationSpec.coerce(
        options.get("explanation_spec"), "the export options", "explanation_spec")
    if checked.get("explain_signature"):
        check_in_graph(checked["explanation_spec"].method)  # e.g. XRAI: before any training
    return checked


def check_sample_type(sample):
    """`sample=` is what `model.predict` takes; anything else is named now."""
    if sample is None or isinstance(sample, (Mapping, list, tuple, np.ndarray, tf.Tensor, str, bytes,
                                             int, float, np.generic)):
        return
    hint = (" Take one batch of it: sample=next(iter(dataset)) (its x part when it yields (x, y))."
            if isinstance(sample, tf.data.Dataset) else "")
    raise TypeError(
        "sample must be a batch of serving_default's inputs: a dict {input_name: batch}, a "
        "list or tuple of batches in input order, or one array for a single input; "
        f"received sample={reprlib.repr(sample)} of type {type(sample).__name__}.{hint}")
