"""TensorFlow backend (and tf-keras): the Keras model is already a TensorFlow function."""

from xai_callback.backends.base import ModelConverter
from xai_callback.signatures.keras_models import model_signature_function


class TensorFlowConverter(ModelConverter):
    """The model called inside the signature's `tf.function`; nothing to sync.

    Example:

    ```python
    xai_model = TensorFlowConverter(model).signature_function("xai_model")
    ```

    Args:
        model: a built Keras model on the TensorFlow backend, or a tf-keras model.
    """

    backend = "tensorflow"
    route = "native"

    def signature_function(self, name="xai_model"):
        return model_signature_function(self.model, name=name)


def converter(model, **tolerances):
    return TensorFlowConverter(model, **tolerances)
