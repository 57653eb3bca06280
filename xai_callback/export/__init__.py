"""The export engine: an explanation-ready SavedModel from a Keras model, without `fit`.

- `engine.py`: `ExplainableExporter` (prepare, write, verify), `export_explainable_model`.
- `options.py`: the arguments that need no model, checked where they are given.
- `checks.py`, `trained_model.py`: the checks on the sample and the live functions before
  training; the exported functions compared with the model being trained.
- `saved_model.py`: `tf.saved_model.save` of the signatures; the reloaded ones checked.
- `result.py`: `ExportResult`, what an export wrote.
- `receivers.py`: Estimator-era receivers as preprocess functions.
- `distribute.py`: exports under distribution strategies (chief and workers).
"""

from xai_callback.export.engine import ExplainableExporter, export_explainable_model
from xai_callback.export.result import ExportResult

__all__ = ["ExplainableExporter", "ExportResult", "export_explainable_model"]
