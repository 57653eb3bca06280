"""Local explanations from an export: integrated gradients, SmoothGrad, blur IG,
sampled Shapley, XRAI.

Computes what Vertex AI's `:explain` returned, from the exported signatures
alone, in the same response format. Modelled on PAIR `saliency`: one small
module per method (`explain/methods/`) on a shared base, each bound to its
settings in `xai_callback.spec.methods`.

Example:

```python
from xai_callback.explain import explain

response = explain("export/1", [{"x": [1.0, 2.0, 3.0]}], method="integrated-gradients")
print(response.to_json(indent=2))
```
"""

import sys
import types

# Registers the rules of `validate` that run explanations.
from xai_callback.explain import contract_rules  # noqa: F401
from xai_callback.explain.errors import ExplanationFailedError, InstanceError, MethodNotSupportedError
from xai_callback.explain.explainer import Explainer
from xai_callback.explain.from_export import ExportExplainer, explain, load_explainer
from xai_callback.explain.methods import AttributionAlgorithm, algorithms
from xai_callback.explain.result import Attribution, ExplainResponse, Explanation

__all__ = [
    "Attribution",
    "AttributionAlgorithm",
    "ExplainResponse",
    "ExplanationFailedError",
    "Explainer",
    "Explanation",
    "ExportExplainer",
    "InstanceError",
    "MethodNotSupportedError",
    "algorithms",
    "explain",
    "load_explainer",
]


class _CallableModule(types.ModuleType):
    """`xai_callback.explain(...)` is the function `explain`, whichever of the
    package and this subpackage bound the name `xai_callback.explain` last."""

    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
