"""Signatures: the functions an export is made of, and the tensors in and out of them.

- `functions.py`: `SignatureFunction` (a function with a named input signature
  and a flat dict output), `compose`.
- `keras_models.py`: Keras models (and what users pass as `serving_fn`,
  `preprocess_fn`, `model_fn`) as signature functions; input keys and output names.
- `specs.py`: reading and describing a signature's TensorSpecs.
- `compare.py`: output comparisons within tolerances.
- `inputs.py`: data as `model.predict` takes it -> tensors by input key.
- `samples.py`: generated input batches; `tensor_io.py`: tensors <-> JSON.
"""

from xai_callback.signatures.functions import SignatureFunction, compose
from xai_callback.signatures.keras_models import as_signature_function, model_signature_function

__all__ = ["SignatureFunction", "as_signature_function", "compose", "model_signature_function"]
