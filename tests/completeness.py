"""Completeness checked from a SavedModel's own signatures, not from the tool's numbers.

For every explained output `sum(attributions) == f(x) - f(baseline)`: `f(x)`
is `serving_default` on the instances; `f(baseline)` is the explained
signature (`xai_model`) on `xai_preprocess(x)` with every attributed input
replaced by its baseline read from the stored metadata (token padding kept at
the instance's value, as `xai_features.json` says), averaged over baselines.
Nothing here calls `xai_callback`'s explainer or reads `approximationError`.
"""

import json
import os

import numpy as np
import tensorflow as tf

EXTRA = "assets.extra"


def read_extra(export_dir, name):
    path = os.path.join(export_dir, EXTRA, name)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def explained_output(export_dir, loaded):
    """`(metadata, output key)` from the stored metadata."""
    metadata = read_extra(export_dir, "vertex_explanation_metadata.json")
    (output,) = metadata["outputs"].values()
    return metadata, output["outputTensorName"]


def model_inputs(loaded, instances):
    """The explained signature's inputs for `serving_default` instances."""
    signatures = loaded.signatures
    instances = {k: tf.convert_to_tensor(v) for k, v in instances.items()}
    if "xai_preprocess" in signatures:
        return {k: v for k, v in signatures["xai_preprocess"](**instances).items()}
    keys = signatures["xai_model"].structured_input_signature[1]
    return {k: instances[k] for k in keys}


def baseline_outputs(export_dir, loaded, instances, output_key, baselines=None):
    """`[instances, *output]` f(baseline) per instance, averaged over the baselines.

    Args:
        baselines: `{attributed key: [baseline, ...]}` overriding the stored ones.
    """
    metadata = read_extra(export_dir, "vertex_explanation_metadata.json")
    features = (read_extra(export_dir, "xai_features.json") or {}).get("features", {})
    inputs = model_inputs(loaded, instances)
    attributed = {}
    for body in metadata["inputs"].values():
        if "encodedTensorName" in body:
            key, values = body["encodedTensorName"], body.get("encodedBaselines")
        else:
            key, values = body["inputTensorName"], body.get("inputBaselines")
        attributed[key] = list((baselines or {}).get(key, values or [0]))
    count = max(len(v) for v in attributed.values())
    fn = loaded.signatures["xai_model"]
    outputs = []
    for i in range(count):
        at_baseline = dict(inputs)
        for key, values in attributed.items():
            value = inputs[key]
            base = np.asarray(values[min(i, len(values) - 1)], value.dtype.as_numpy_dtype)
            start = tf.broadcast_to(tf.constant(base, value.dtype), tf.shape(value))
            entry = features.get(key, {})
            if "padding_id" in entry:  # padding keeps the instance's value on every path
                ids = inputs[entry["ids_key"]]
                padding = tf.equal(ids, tf.cast(entry["padding_id"], ids.dtype))
                while padding.shape.rank < value.shape.rank:
                    padding = padding[..., None]
                start = tf.where(tf.broadcast_to(padding, tf.shape(value)), value, start)
            at_baseline[key] = start
        outputs.append(np.asarray(fn(**at_baseline)[output_key], np.float64))
    return np.mean(outputs, axis=0)


def completeness_gaps(response, export_dir, loaded, instances, baselines=None):
    """`[(sum of attributions, f(x) - f(baseline), scale)]` per explained output,
    f computed from the signatures (see the module docstring)."""
    _, output_key = explained_output(export_dir, loaded)
    tensors = {k: tf.convert_to_tensor(v) for k, v in instances.items()}
    f_x = np.asarray(loaded.signatures["serving_default"](**tensors)[output_key], np.float64)
    f_b = baseline_outputs(export_dir, loaded, instances, output_key, baselines)
    found = []
    for i, explanation in enumerate(response.explanations):
        for unit in explanation.attributions:
            index = (i, *unit.output_index)
            total = sum(float(np.sum(v)) for v in unit.feature_attributions.values())
            found.append((total, f_x[index] - f_b[index], max(abs(f_x[index]), abs(f_b[index]))))
    return found


def assert_adds_up(response, export_dir, loaded, instances, rtol, rounding=1e-4, baselines=None):
    """Every explained output's attributions sum to f(x) - f(baseline) within
    `rtol` of the change plus `rounding` of the outputs' size."""
    for total, change, scale in completeness_gaps(response, export_dir, loaded, instances, baselines):
        assert abs(total - change) <= rtol * abs(change) + rounding * scale + 1e-7, (
            f"attributions sum to {total:.6g}, but f(x) - f(baseline) = {change:.6g} "
            f"(rtol {rtol}, rounding {rounding} of {scale:.3g})")
