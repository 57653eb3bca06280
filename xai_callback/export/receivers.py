"""The two classic serving receivers, as preprocess functions.

Estimator-era exports used `build_raw_serving_input_receiver_fn` (tensors in,
named like the model inputs) and `build_parsing_serving_input_receiver_fn`
(serialized `tf.Example` in, parsed with a feature spec). Both APIs are gone
from TensorFlow 2.16 on; these builders give the same serving interfaces as
`SignatureFunction`s to pass as `preprocess_fn` (written as `xai_preprocess`,
so the explanation service and `explain` accept the same input format).
"""

import tensorflow as tf

from xai_callback.signatures.functions import SignatureFunction
from xai_callback.signatures.keras_models import model_signature_function


def raw_receiver(features, default_batch_size=None):
    """Raw tensors in, named like the model inputs, passed through unchanged.

    Example:

    ```python
    export_explainable_model(model, "export", preprocess_fn=raw_receiver(model))
    ```

    Args:
        features: a built Keras model (its Input names, dtypes and shapes are
            used) or a dict `{name: tf.TensorSpec}`.
        default_batch_size: fixes the batch dimension. Defaults to None
            (any batch size).

    Returns:
        A `SignatureFunction` whose outputs equal its inputs.
    """
    if isinstance(features, dict):
        specs = dict(features)
    else:
        specs = dict(model_signature_function(features).input_specs)
    specs = {
        k: tf.TensorSpec([default_batch_size] + s.shape.as_list()[1:], s.dtype, name=k)
        for k, s in specs.items()
    }

    def receive(**tensors):
        return {k: tf.identity(v) for k, v in tensors.items()}

    return SignatureFunction(receive, specs, name="raw_receiver")


def parsing_receiver(feature_spec, input_name="examples", default_batch_size=None):
    """Serialized `tf.Example` protos in, parsed with `feature_spec`.

    Example:

    ```python
    receiver = parsing_receiver({
        "features": tf.io.FixedLenFeature([4], tf.float32)})
    export_explainable_model(model, "export", preprocess_fn=receiver)
    ```

    Args:
        feature_spec: `{name: tf.io.FixedLenFeature}` keyed like the model
            inputs. Only fixed-length features produce the dense tensors a
            differentiable `xai_model` takes.
        input_name: the serving input key. Defaults to `"examples"`.
        default_batch_size: fixes the batch dimension. Defaults to None.

    Returns:
        A `SignatureFunction` from a string batch to the parsed dict.
    """
    if not isinstance(feature_spec, dict) or not feature_spec:
        raise ValueError(
            "feature_spec must be a non-empty dict {name: tf.io.FixedLenFeature}; "
            f"received {feature_spec!r}."
        )
    for name, feature in feature_spec.items():
        if not isinstance(feature, tf.io.FixedLenFeature):
            raise TypeError(
                f"feature_spec[{name!r}] must be a tf.io.FixedLenFeature (the model "
                f"needs dense inputs); received {feature!r}."
            )

    def parse(serialized):
        return tf.io.parse_example(serialized, feature_spec)

    return SignatureFunction(
        parse,
        [tf.TensorSpec([default_batch_size], tf.string, name=input_name)],
        name="parsing_receiver",
    )


def serialize_examples(features):
    """`{name: array [batch, ...]}` -> list of serialized `tf.Example` (for tests
    and requests to a parsing receiver)."""
    import numpy as np

    arrays = {k: np.asarray(v) for k, v in features.items()}
    rows = len(next(iter(arrays.values())))
    out = []
    for i in range(rows):
        feats = {}
        for k, a in arrays.items():
            flat = a[i].reshape(-1)
            if a.dtype.kind == "f":
                feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=flat))
            elif a.dtype.kind in "iub":
                feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=flat))
            else:
                feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=list(flat)))
        out.append(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    return out
