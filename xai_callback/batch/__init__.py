"""Explanations at dataset scale: batch explanations on Apache Beam, global importance, drift.

`batch_explain` runs a Beam pipeline (`RunInference` with `ExplainModelHandler`)
over files of instances and writes Vertex AI's batch prediction layout plus the
global feature importance; `compare_importance` compares two importance files
(attribution drift). Beam is the optional extra `[beam]`: the names that need
it are imported when first used, so `importance` and `drift` work without it.

Example:

```python
from xai_callback.batch import batch_explain, compare_importance

result = batch_explain("exports/churn/3", "data/*.jsonl", "out/today")
report = compare_importance(baseline_importance, result.importance, threshold=0.1)
```
"""

import importlib

from xai_callback.batch.drift import compare_importance
from xai_callback.batch.importance import ImportanceAccumulator, importance_of, parse_importance

# name -> module; importing these modules imports apache_beam.
_BEAM_NAMES = {
    "batch_explain": "pipeline",
    "BatchResult": "pipeline",
    "ExplainModelHandler": "handler",
    "GlobalImportanceFn": "transforms",
}

__all__ = ["BatchExplainer", "BatchResult", "ExplainModelHandler", "GlobalImportanceFn",
           "ImportanceAccumulator", "batch_explain", "compare_importance", "importance_of",
           "parse_importance"]


def __getattr__(name):
    if name == "BatchExplainer":  # imports TensorFlow, not Beam
        from xai_callback.batch.explaining import BatchExplainer

        return BatchExplainer
    if name not in _BEAM_NAMES:
        raise AttributeError(f"module 'xai_callback.batch' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"xai_callback.batch.{_BEAM_NAMES[name]}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "apache_beam":
            raise ImportError(f"xai_callback.batch.{name} needs Apache Beam: "
                              "pip install 'xai-callback[beam]'.") from e
        raise
    return getattr(module, name)
