"""Runs an export's `xai_explain` in a process with TensorFlow only (no xai_callback).

Usage: tf_only_explain.py EXPORT_DIR INPUTS_JSON
INPUTS_JSON: `{input key: nested list}` (TF Serving's columnar "inputs").
Prints `RESULT {"outputs": {key: nested list}, "modules": [...]}`, the outputs
encoded as TF Serving's JSON encoder does (numbers, strings as UTF-8).
"""

import json
import sys

import tensorflow as tf


def main(export_dir, inputs_json):
    signature = tf.saved_model.load(export_dir).signatures["xai_explain"]
    specs = signature.structured_input_signature[1]
    inputs = {k: tf.constant(v, specs[k].dtype) for k, v in json.loads(inputs_json).items()}
    outputs = signature(**inputs)

    def encode(value):
        if value.dtype == tf.string:
            return tf.nest.map_structure(lambda b: b.decode("utf-8"), value.numpy().tolist())
        return value.numpy().tolist()

    encoded = json.dumps({key: encode(value) for key, value in outputs.items()}, allow_nan=False)
    loaded = sorted(name for name in sys.modules if name.split(".")[0] == "xai_callback")
    print("RESULT " + json.dumps({"outputs": json.loads(encoded), "modules": loaded}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
