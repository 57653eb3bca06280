"""Local explanations from an export: integrated gradients, sampled Shapley, SmoothGrad.

Computes what Vertex AI's `:explain` returned, from the exported signatures
alone, in the same response format. Modelled on PAIR `saliency`: one small
module per method on a shared base (`base.py`); importing a method module
registers it.

Example:

```python
from xai_callback.explain import explain

response = explain("export/1", [{"x": [1.0, 2.0, 3.0]}], method="integrated-gradients")
print(response.to_json(indent=2))
```
"""

# Importing a method module registers it (AttributionAlgorithm.__init_subclass__).
from xai_callback.explain import integrated_gradients, sampled_shapley, smoothgrad  # noqa: F401
from xai_callback.explain.base import AttributionAlgorithm, method_classes
# Registers the rules of `validate` that run explanations.
from xai_callback.explain import contract_rules  # noqa: F401
from xai_callback.explain.errors import InstanceError, MethodNotSupportedError
from xai_callback.explain.explainer import Explainer
from xai_callback.explain.from_export import ExportExplainer, explain, load_explainer
from xai_callback.explain.result import Attribution, ExplainResponse, Explanation

__all__ = [
    "Attribution",
    "AttributionAlgorithm",
    "ExplainResponse",
    "Explainer",
    "Explanation",
    "ExportExplainer",
    "InstanceError",
    "MethodNotSupportedError",
    "explain",
    "load_explainer",
    "method_classes",
]
