"""`Limits`: how far a method's counts may go, Vertex AI's caps or local ones.

What an export declares must stay within Vertex AI's caps (`VERTEX_LIMITS`:
stepCount 1-100, pathCount 1-50, noisySampleCount 1-50), or the service
refuses the model at upload. A local explanation (`xai_callback.explain`,
`xai-callback explain --steps 300`) may legitimately go further
(`LOCAL_LIMITS`: no upper cap), and a server can choose its own caps to bound
the cost of one request.

Example:

```python
from xai_callback.spec.limits import Limits

limits = Limits(max_step_count=200, max_path_count=50, max_noisy_sample_count=20)
settings_from_vertex(metadata, parameters, {"step_count": 150}, limits=limits)
```
"""

import dataclasses

from xai_callback.errors import SpecError
from xai_callback.spec.fields import check_int, describe


@dataclasses.dataclass(frozen=True)
class Limits:
    """Upper bounds of the counts of an attribution method (None: no bound).

    Args:
        max_step_count: largest `stepCount` of integrated gradients and XRAI.
        max_path_count: largest `pathCount` of sampled Shapley.
        max_noisy_sample_count: largest `noisySampleCount` of SmoothGrad.
        name: what the bounds are called in messages (default "local limits").
    """

    max_step_count: int = None
    max_path_count: int = None
    max_noisy_sample_count: int = None
    name: str = "local limits"

    def __post_init__(self):
        for field in ("max_step_count", "max_path_count", "max_noisy_sample_count"):
            check_int("Limits", field, getattr(self, field), 1, optional=True)
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(describe("Limits", "name", self.name, "expected a non-empty string"))

    def count(self, where, field, value, bound, default=None):
        """`value` (None: `default`) as an int from 1 to `bound` of these limits."""
        value = default if value is None else value
        high = getattr(self, bound)
        try:
            return check_int(where, field, value, 1, high)
        except SpecError as e:
            if self is not VERTEX_LIMITS or not value > high:
                raise
            # Say why the cap is there, and how a local explanation passes it.
            raise SpecError(f"{str(e).rstrip('.')} (Vertex AI's limit; local explanations "
                            "accept more: `xai-callback explain` and `xai_callback.explain` "
                            "apply local limits).") from None


VERTEX_LIMITS = Limits(max_step_count=100, max_path_count=50, max_noisy_sample_count=50,
                       name="Vertex AI's limits")
LOCAL_LIMITS = Limits()


def coerce_limits(limits):
    """`limits`, or `VERTEX_LIMITS` for None; refuses anything else naming it."""
    if limits is None:
        return VERTEX_LIMITS
    if not isinstance(limits, Limits):
        raise TypeError(describe("Limits", "limits", limits,
                                 "expected a Limits (e.g. VERTEX_LIMITS, LOCAL_LIMITS) or None"))
    return limits
