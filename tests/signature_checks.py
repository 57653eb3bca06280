"""Completeness checked from a SavedModel's own signatures, not from the explainer.

`output_change` computes f(instance) - f(baseline) with the export's
`xai_preprocess` and `xai_model` and the baselines its metadata names, so an
explanation is checked against what the SavedModel computes. Imports only
TensorFlow and NumPy: tf-keras and backend subprocesses use it too.
"""

import json
import os

import numpy as np
import tensorflow as tf

METADATA = os.path.join("assets.extra", "vertex_explanation_metadata.json")


def _batch_of_one(value, spec):
    if spec.dtype == tf.string:
        return tf.constant(np.asarray(value, object)[None], tf.string)
    return tf.constant(np.asarray(value, spec.dtype.as_numpy_dtype)[None], spec.dtype)


def _baseline_like(baseline, value):
    """`baseline` broadcast to one example of `value` (a batch of one)."""
    dtype = object if value.dtype == tf.string else value.dtype.as_numpy_dtype
    example = np.broadcast_to(np.asarray(baseline, dtype), value.shape[1:])
    return tf.constant(example[None], value.dtype)


def output_change(path, instance, output_name, output_index, loaded=None):
    """f(instance) - f(baseline) of `xai_model`, from the export at `path`.

    Args:
        instance: `{serving_default input key: one example}`.
        output_name, output_index: the explained output and its flat index
            (what an attribution reports).
    """
    loaded = loaded or tf.saved_model.load(path)
    signatures = loaded.signatures
    with open(os.path.join(path, METADATA)) as f:
        metadata = json.load(f)
    raw_specs = signatures["serving_default"].structured_input_signature[1]
    raw = {key: _batch_of_one(instance[key], spec) for key, spec in raw_specs.items()}
    model = signatures["xai_model"]
    model_keys = model.structured_input_signature[1]
    encoded = signatures["xai_preprocess"](**raw) if "xai_preprocess" in signatures else raw
    at_instance = {key: encoded[key] for key in model_keys}
    at_baseline = dict(at_instance)
    for body in metadata["inputs"].values():
        key = body.get("encodedTensorName") or body["inputTensorName"]
        baselines = body.get("encodedBaselines") or body.get("inputBaselines") or [0]
        at_baseline[key] = _baseline_like(baselines[0], at_instance[key])

    def value(inputs):
        return float(np.ravel(model(**inputs)[output_name].numpy())[output_index])

    return value(at_instance) - value(at_baseline)


def completeness(path, instances, response):
    """`[(sum of attributions, f(x) - f(baseline) from the SavedModel, the
    explainer's own instance - baseline output)]`, one per attribution."""
    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["xai_model"].structured_outputs
    found = []
    for instance, explanation in zip(instances, response.explanations):
        for a in explanation.attributions:
            shape = outputs[a.output_name].shape[1:]
            index = int(np.ravel_multi_index(a.output_index, shape)) if len(shape) else 0
            change = output_change(path, instance, a.output_name, index, loaded=loaded)
            total = sum(float(np.sum(v)) for v in a.feature_attributions.values())
            found.append((total, change, a.instance_output_value - a.baseline_output_value))
    return found


def assert_complete_from_signatures(path, instances, response, rtol=0.05, atol=1e-3):
    """Each explanation's attributions add up to the change the SavedModel
    computes, and the explainer's outputs are the SavedModel's."""
    for total, change, reported in completeness(path, instances, response):
        assert abs(total - change) <= rtol * abs(change) + atol, (total, change)
        assert abs(reported - change) <= 1e-4 * max(1.0, abs(change)), (reported, change)
