"""Bounded work per explanation request: the settings a request may ask for, and a budget.

A request's explanation settings (`parameters` and
`explanationSpecOverride.parameters`) are held to Vertex AI's ranges by
default (stepCount 1-100, pathCount 1-50, noisySampleCount 1-50, topK >= 1),
and the work of the whole request (instances x explained outputs x steps,
where SmoothGrad's steps are stepCount x noisySampleCount and Shapley's are
pathCount) to a budget. Each refusal is a 400 naming the setting, its value,
the limit and the serve option that raises it. The export's own stored
parameters are the operator's and are not limited.
"""

import dataclasses
from collections.abc import Mapping

from xai_callback.serve.errors import ServeError
from xai_callback.spec.limits import VERTEX_LIMITS
from xai_callback.spec.methods import DEFAULT_PATH_COUNT, DEFAULT_STEP_COUNT
from xai_callback.spec.smoothgrad import DEFAULT_NOISY_SAMPLE_COUNT

# Vertex AI's ranges (ExplanationParameters), as the spec holds them.
VERTEX_MAX_STEP_COUNT = VERTEX_LIMITS.max_step_count
VERTEX_MAX_PATH_COUNT = VERTEX_LIMITS.max_path_count
VERTEX_MAX_NOISY_SAMPLE_COUNT = VERTEX_LIMITS.max_noisy_sample_count
# instances x outputs x steps of one request: 256 instances at Vertex's largest stepCount.
DEFAULT_MAX_EXPLANATION_STEPS = 256 * VERTEX_MAX_STEP_COUNT

# setting (as a request option) -> (its Vertex name, the limit's field and option)
_COUNTS = {
    "step_count": ("stepCount", "max_step_count", "--max-step-count"),
    "path_count": ("pathCount", "max_path_count", "--max-path-count"),
    "noisy_sample_count": ("noisySampleCount", "max_noisy_sample_count", "--max-noisy-sample-count"),
}


@dataclasses.dataclass(frozen=True)
class ExplanationLimits:
    """What one explanation request may ask for.

    Example:

    ```python
    limits = ExplanationLimits(max_step_count=200)
    limits.check({"step_count": 300}, {"integratedGradientsAttribution": {}}, instances=1)  # ServeError 400
    ```

    Args:
        max_step_count: largest `stepCount` (integrated gradients, XRAI, SmoothGrad).
        max_path_count: largest `pathCount` (sampled Shapley).
        max_noisy_sample_count: largest `noisySampleCount` (SmoothGrad).
        max_explanation_steps: largest instances x outputs x steps of one request.
    """

    max_step_count: int = VERTEX_MAX_STEP_COUNT
    max_path_count: int = VERTEX_MAX_PATH_COUNT
    max_noisy_sample_count: int = VERTEX_MAX_NOISY_SAMPLE_COUNT
    max_explanation_steps: int = DEFAULT_MAX_EXPLANATION_STEPS

    def check(self, options, override, parameters, instances):
        """Refuses a request that asks for more than the limits.

        Args:
            options: the request's `parameters` as snake_case explain options.
            override: the request's `explanationSpecOverride.parameters` (or None).
            parameters: the explanation parameters in force (stored, with the
                override merged), for the budget.
            instances: how many instances the request explains.

        Raises:
            ServeError: 400 naming the setting, the limit and its option.
        """
        asked = dict(_override_counts(override or {}))
        asked.update({k: (v, _COUNTS[k][0]) for k, v in options.items() if k in _COUNTS})
        for setting, (value, name) in asked.items():
            _, field, option = _COUNTS[setting]
            limit = getattr(self, field)
            number = _count(value, name, f"1..{limit}")
            if number > limit:
                raise ServeError(400, f"{name}={number} is above this server's limit of {limit}; ask for "
                                      f"at most {limit} (the server's {option} raises the limit).")
        top_k = options.get("top_k", (override or {}).get("topK"))
        if top_k is not None:
            _count(top_k, "topK", ">= 1 (name outputs with outputIndices to explain several)")
        steps = _steps(options, parameters, {k: v for k, (v, _) in asked.items()})
        outputs = len(options.get("output_indices") or ()) or int(top_k or parameters.get("topK") or 1)
        work = instances * max(outputs, 1) * steps
        if work > self.max_explanation_steps:
            raise ServeError(400, f"The request asks for {instances} instances x {outputs} outputs x "
                                  f"{steps} steps = {work} model evaluations, above this server's budget "
                                  f"of {self.max_explanation_steps} per request (--max-explanation-steps); "
                                  "send fewer instances per request, or fewer steps.")


def _count(value, name, valid):
    """`value` as an int, or a 400 naming `name` (JSON booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise ServeError(400, f"{name} must be an integer {valid}; received {value!r}.")
    return int(value)


def _override_counts(override):
    """`{setting: (value, Vertex name)}` of the counts an override's method sets."""
    found = {}
    for key, config in override.items():
        if not key.endswith("Attribution") or not isinstance(config, Mapping):
            continue
        if "stepCount" in config:
            found["step_count"] = (config["stepCount"], f"{key}.stepCount")
        if "pathCount" in config:
            found["path_count"] = (config["pathCount"], f"{key}.pathCount")
        smooth = config.get("smoothGradConfig")
        if isinstance(smooth, Mapping) and "noisySampleCount" in smooth:
            found["noisy_sample_count"] = (smooth["noisySampleCount"], f"{key}.smoothGradConfig.noisySampleCount")
    return found


def _steps(options, parameters, asked):
    """Model evaluations per explained output of one instance, in the settings in force."""
    method = str(options.get("method") or "").lower()
    key = next((k for k in parameters if k.endswith("Attribution")), "integratedGradientsAttribution")
    config = parameters.get(key) if isinstance(parameters.get(key), Mapping) else {}
    if "shapley" in method or (not method and key == "sampledShapleyAttribution"):
        return int(asked.get("path_count", config.get("pathCount", DEFAULT_PATH_COUNT)))
    steps = int(asked.get("step_count", config.get("stepCount", DEFAULT_STEP_COUNT)))
    smooth = config.get("smoothGradConfig")
    if "smooth" in method or (not method and isinstance(smooth, Mapping)):
        samples = asked.get("noisy_sample_count", (smooth or {}).get("noisySampleCount", DEFAULT_NOISY_SAMPLE_COUNT))
        steps *= int(samples)
    return steps
