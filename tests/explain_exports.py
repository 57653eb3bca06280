"""Small hand-built exports for the explanation tests (real SavedModels, no engine).

Each builder saves a `tf.Module` with `tf.function` signatures and writes the
Vertex JSON files into `assets.extra/`, as the export engine does.
"""

import numpy as np
import tensorflow as tf

from xai_callback.publish import storage
from xai_callback.names import (
    SERVING_DEFAULT,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    XAI_MODEL,
    XAI_PREPROCESS,
    extra_path,
)

def run_cli(*argv):
    """`xai-callback explain ARGV...` in this process; returns its exit status."""
    import argparse

    from xai_callback.commands import explain_cmd

    parser = argparse.ArgumentParser()
    explain_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["explain", *map(str, argv)])
    return args.func(args)


LINEAR_W = np.array([2.0, -1.0, 0.5], np.float32)
LINEAR_B = 0.25
CLASSES = ["setosa", "versicolor", "virginica"]


def save_export(path, module, serving, model=None, preprocess=None, metadata=None,
                parameters=None):
    """Saves `module` with the given signatures and writes the spec files."""
    signatures = {SERVING_DEFAULT: serving}
    if model is not None:
        signatures[XAI_MODEL] = model
    if preprocess is not None:
        signatures[XAI_PREPROCESS] = preprocess
    tf.saved_model.save(module, str(path), signatures=signatures)
    storage.makedirs(extra_path(path, ""))
    if metadata is not None:
        storage.write_json(extra_path(path, VERTEX_METADATA_FILE), metadata)
    if parameters is not None:
        storage.write_json(extra_path(path, VERTEX_PARAMETERS_FILE), parameters)
    return str(path)


def linear_fn(x):
    return {"y": tf.linalg.matvec(x, tf.constant(LINEAR_W)) + LINEAR_B}


def linear_export(path, metadata=None, parameters=None):
    """y = x . w + b on x float32[None, 3]; serving_default == xai_model."""
    module = tf.Module()
    fn = tf.function(linear_fn, input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    return save_export(path, module, fn, fn, metadata=metadata, parameters=parameters)


def mlp_weights(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(8,)).astype(np.float32),
            rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32))


def mlp_fn(weights):
    """Smooth 4 -> 8 -> 3 classifier with two outputs: logits and probabilities."""
    w1, b1, w2, b2 = (tf.constant(w) for w in weights)

    def fn(features):
        logits = tf.matmul(tf.tanh(tf.matmul(features, w1) + b1), w2) + b2
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    return fn


def parse_csv(csv_line):
    columns = tf.strings.split(csv_line, ",").to_tensor(shape=[None, 4])
    return {"features": tf.strings.to_number(columns, tf.float32)}


def csv_export(path, metadata=None, parameters=None):
    """serving_default(csv_line: string) == xai_model(**xai_preprocess(csv_line))."""
    module = tf.Module()
    model = mlp_fn(mlp_weights())
    preprocess = tf.function(parse_csv, input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
    xai_model = tf.function(model, input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    serving = tf.function(lambda csv_line: model(**parse_csv(csv_line)),
                          input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
    return save_export(path, module, serving, xai_model, preprocess, metadata, parameters)


def conv_weights(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 3, 3, 4)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)


def image_model_fn(weights):
    kernel, dense = (tf.constant(w) for w in weights)

    def fn(image):
        features = tf.nn.softplus(tf.nn.conv2d(image, kernel, 1, "SAME"))
        return {"scores": tf.matmul(tf.reduce_mean(features, axis=[1, 2]), dense)}

    return fn


def decode_png(image_bytes):
    images = tf.map_fn(lambda b: tf.io.decode_png(b, channels=3), image_bytes,
                       fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    return {"image": tf.ensure_shape(tf.cast(images, tf.float32) / 255.0, [None, 8, 8, 3])}


def image_export(path, metadata=None, parameters=None):
    """PNG bytes -> xai_preprocess -> image float32[None, 8, 8, 3] -> xai_model."""
    module = tf.Module()
    model = image_model_fn(conv_weights())
    raw = tf.TensorSpec([None], tf.string, name="image_bytes")
    preprocess = tf.function(decode_png, input_signature=[raw])
    xai_model = tf.function(model, input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="image")])
    serving = tf.function(lambda image_bytes: model(**decode_png(image_bytes)), input_signature=[raw])
    return save_export(path, module, serving, xai_model, preprocess, metadata, parameters)


def png_bytes(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return tf.io.encode_png(pixels).numpy()


def ids_export(path):
    """An xai_model over int32 ids: nothing to take gradients of."""
    module = tf.Module()
    table = tf.constant([0.0, 1.0, -2.0, 3.0, 0.5])
    fn = tf.function(lambda ids: {"score": tf.reduce_sum(tf.gather(table, ids), axis=1)},
                     input_signature=[tf.TensorSpec([None, 2], tf.int32, name="ids")])
    return save_export(path, module, fn, fn)
