"""The export engine: an explanation-ready SavedModel from a Keras model, without `fit`.

- `engine.py`: `ExplainableExporter` (prepare, write, verify), `export_explainable_model`.
- `receivers.py`: Estimator-era receivers as preprocess functions.
- `distribute.py`: exports under distribution strategies (chief and workers).
"""

from xai_callback.export.engine import ExplainableExporter, ExportResult, export_explainable_model

__all__ = ["ExplainableExporter", "ExportResult", "export_explainable_model"]
