"""Keras preprocessing given as `preprocess_fn`, composed with the model.

A Keras preprocessing model, a FeatureSpace or a preprocessing layer alone
(`TextVectorization`, a lookup) given as `preprocess_fn` is called on the
model's inputs to give one functional model; the automatic split then cuts
that graph, so a body trained on encoded features (FeatureSpace's
`training_model`, keras.io's text model on token ids) is explained per raw
feature. Keras 3 and tf-keras alike.
"""

import keras

from xai_callback.errors import SignatureError
from xai_callback.signatures.keras_models import (
    as_keras_model,
    is_feature_space,
    is_model,
    is_preprocessing_layer,
    keras_of,
    keras_output_names,
)


def compose_keras_preprocessing(preprocess, model):
    """One functional model: a Keras preprocessing model (or FeatureSpace, or a
    preprocessing layer) feeding `model`.

    Raises:
        SignatureError: the preprocessing outputs do not fit the model inputs.
    """
    preprocess = as_keras_model(preprocess)
    inputs, encoded = preprocess.input, preprocess.output
    try:
        outputs = model(encoded)
        if not isinstance(outputs, dict):
            # Keep the model's own output names (not the nested model's name).
            outputs = dict(zip(keras_output_names(model), keras.tree.flatten(outputs)))
        return keras_of(model).Model(inputs, outputs)
    except Exception as e:  # noqa: BLE001 - any Keras error is a mismatch of the two
        raise SignatureError(
            f"preprocess_fn {getattr(preprocess, 'name', preprocess)!r} cannot feed the model "
            f"{getattr(model, 'name', model)!r}: {type(e).__name__}: {e}. Pass split=False to "
            "export them as two separate functions."
        ) from e


def is_keras_preprocessing(value):
    """A Keras model, FeatureSpace or preprocessing layer given as `preprocess_fn`."""
    return is_model(value) or is_feature_space(value) or is_preprocessing_layer(value)
