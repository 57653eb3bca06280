"""Explanation results with the field names of Vertex AI's `:explain` response.

`ExplainResponse.to_dict()` gives `{"explanations": [...], "predictions": [...]}`
where each explanation holds `attributions`, one per explained output, exactly
as clients of the service read them.
"""

import dataclasses
import json
import math

import numpy as np


@dataclasses.dataclass
class Attribution:
    """Attributions of one instance for one output.

    Attributes:
        baseline_output_value: model output at the baselines (averaged over them).
        instance_output_value: model output at the instance.
        feature_attributions: `{feature name: np.ndarray}`. At
            `granularity="raw"`: one number per categorical, embedded or
            grouped feature, one per token for token features, one example's
            shape for numeric ones; at "encoded": one example of the
            feature's tensor.
        output_index: index of the explained element in the output tensor
            (empty for a scalar output; then omitted from the JSON, as the
            service does).
        output_display_name: class name from the metadata, or "".
        output_name: the metadata's output name.
        approximation_error: integrated gradients, blur IG and XRAI: the
            completeness gap of the integrated gradients
            (`xai_callback.explain.engine.relative_gap`); SmoothGrad: that gap
            against the mean output of the noisy copies; sampled Shapley: the
            sampling error (`docs/methods.md`, "What the numbers mean").
            Above 0.05 `explain` warns with what would lower it.
    """

    baseline_output_value: float
    instance_output_value: float
    feature_attributions: dict
    output_index: list
    output_display_name: str
    output_name: str
    approximation_error: float

    def to_dict(self):
        out = {
            "baselineOutputValue": _json_number(self.baseline_output_value),
            "instanceOutputValue": _json_number(self.instance_output_value),
            "featureAttributions": {
                name: to_json_value(value) for name, value in self.feature_attributions.items()
            },
            "outputDisplayName": self.output_display_name,
            "outputName": self.output_name,
            "approximationError": _json_number(self.approximation_error),
        }
        if self.output_index:
            out["outputIndex"] = [int(i) for i in self.output_index]
        return out


@dataclasses.dataclass
class Explanation:
    """The explanation of one instance.

    Attributes:
        attributions: list of `Attribution`, one per explained output.
        inputs: `{feature name: np.ndarray}`, the values explained: the raw
            inputs behind each feature when known (e.g. "Cat"), token strings,
            else the decoded `xai_model` input; kept for plotting, not part
            of the JSON.
        tokens: `{feature name: [str]}` for token features at
            `granularity="raw"`: the token at each position, aligned with that
            feature's attributions (padding positions hold the padding token,
            usually "", and attribution exactly 0).
    """

    attributions: list
    inputs: dict = dataclasses.field(default_factory=dict, repr=False)
    tokens: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        out = {"attributions": [a.to_dict() for a in self.attributions]}
        if self.tokens:
            # Our one extension of the service's Explanation (clients ignore
            # unknown fields): the strings behind per-token attributions.
            out["tokens"] = {name: list(tokens) for name, tokens in self.tokens.items()}
        return out


@dataclasses.dataclass
class ExplainResponse:
    """Explanations and predictions of a batch of instances.

    Example:

    ```python
    response = xai_callback.explain.explain("export/1", [[1.0, 2.0]])
    response.explanations[0].attributions[0].feature_attributions["x"]
    print(response.to_json(indent=2))
    ```

    Attributes:
        explanations: one `Explanation` per instance.
        predictions: `serving_default` outputs in TF Serving's row format.
        method: name of the attribution method used.
        metadata: the explanation metadata used (Vertex JSON); not in the JSON.
        granularity: "raw" (one attribution per raw feature / token / group)
            or "encoded" (per element of each explained tensor); not in the JSON.
    """

    explanations: list
    predictions: list
    method: str = ""
    metadata: dict = dataclasses.field(default_factory=dict, repr=False)
    granularity: str = "raw"

    def to_dict(self):
        return {
            "explanations": [e.to_dict() for e in self.explanations],
            "predictions": self.predictions,
        }

    def to_json(self, indent=None):
        return json.dumps(self.to_dict(), indent=indent)


def to_json_value(value):
    """numpy values -> JSON-able Python values (NaN/inf -> None, bytes -> str)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO":
            return [to_json_value(v) for v in value.tolist()] if value.ndim else to_json_value(value.item())
        if value.dtype.kind != "f" or np.isfinite(value).all():
            return value.tolist()  # nothing to replace: skip the per-element walk
        return to_json_value(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (np.generic,)):
        return to_json_value(value.item())
    if isinstance(value, float):
        return _json_number(value)
    return value


def _json_number(value):
    value = float(value)
    return value if math.isfinite(value) else None
