"""`xai_explain` outputs -> the JSON of `xai_callback.explain` (no Beam here).

The signature's outputs are documented in `xai_callback.explain.signature`:
`attribution_<feature>` `[batch, K, ...]`, `tokens_<feature>`,
`baseline_output`, `instance_output`, `approximation_error`, `output_index`,
`output_display_name` (with `indexDisplayNameMapping`) and
`prediction_<serving output>`, where `<feature>` is the metadata's feature (or
group) name with characters other than letters, digits and `_` replaced by
`_`. `SignatureDecoder.of` returns None when the export's metadata cannot be
read back that way unambiguously (two names with the same key, a
`displayNameMappingKey`, no metadata): then the Python explainer is used.
"""

import math
import re

import numpy as np

from xai_callback.explain import Attribution, Explanation

ATTRIBUTION, TOKENS, PREDICTION = "attribution_", "tokens_", "prediction_"


class SignatureDecoder:
    """Turns one `xai_explain` call's outputs into per-instance JSON.

    Example:

    ```python
    decoder = SignatureDecoder.of(explainer.metadata)
    outputs = loaded.signatures["xai_explain"](**tensors)
    for prediction, explanation in decoder.rows(outputs): ...
    ```

    Args:
        feature_names: `{attribution key suffix: reported feature name}`.
        output_name: the metadata's output name (`outputName`).
    """

    def __init__(self, feature_names, output_name):
        self.feature_names = dict(feature_names)
        self.output_name = output_name

    @classmethod
    def of(cls, metadata):
        """The decoder of an export's metadata, or None when it cannot decode it exactly."""
        if not metadata or len(metadata.get("outputs") or {}) != 1:
            return None
        (output_name, output), = metadata["outputs"].items()
        if output.get("displayNameMappingKey"):
            return None  # display names from a model output: the signature does not return them
        names = []
        for name, feature in (metadata.get("inputs") or {}).items():
            reported = feature.get("groupName") or name
            if reported not in names:
                names.append(reported)
        keys = {}
        for name in names:
            key = re.sub(r"[^A-Za-z0-9_]", "_", name)
            if key in keys:
                return None  # the signature appends "_" in an order only the explainer knows
            keys[key] = name
        return cls(keys, output_name)

    def rows(self, outputs):
        """`[(prediction JSON, explanation JSON)]`, one per instance of the call.

        Args:
            outputs: `{output key: numpy array or tensor}` of `xai_explain`.

        Raises:
            ValueError: an attribution output names no feature of the metadata
                (the export's files and signature disagree).
        """
        arrays = {key: np.asarray(value) for key, value in outputs.items()}
        unknown = sorted(k for k in arrays if k.startswith(ATTRIBUTION)
                         and k[len(ATTRIBUTION):] not in self.feature_names)
        if unknown:
            raise ValueError(f"xai_explain outputs {unknown} name no feature of the export's "
                             f"metadata {sorted(self.feature_names.values())}.")
        attributions = {self.feature_names[k[len(ATTRIBUTION):]]: v for k, v in arrays.items()
                        if k.startswith(ATTRIBUTION)}
        tokens = {self.feature_names.get(k[len(TOKENS):], k[len(TOKENS):]): v
                  for k, v in arrays.items() if k.startswith(TOKENS)}
        predictions = {k[len(PREDICTION):]: v for k, v in arrays.items() if k.startswith(PREDICTION)}
        names = arrays.get("output_display_name")
        out = []
        for i in range(len(arrays["instance_output"])):
            units = []
            for u in range(arrays["instance_output"].shape[1]):
                index = [int(j) for j in arrays["output_index"][i, u]]
                units.append(Attribution(
                    baseline_output_value=float(arrays["baseline_output"][i, u]),
                    instance_output_value=float(arrays["instance_output"][i, u]),
                    feature_attributions={name: value[i, u] for name, value in attributions.items()},
                    output_index=index,
                    output_display_name=_text(names[i, u]) if names is not None and index else "",
                    output_name=self.output_name,
                    approximation_error=float(arrays["approximation_error"][i, u]),
                ))
            explanation = Explanation(
                attributions=units,
                tokens={name: [_text(t) for t in value[i]] for name, value in tokens.items()})
            out.append((prediction_json(predictions, i), explanation.to_dict()))
        return out


def prediction_json(outputs, i):
    """Instance `i` of `{key: batch}` in TF Serving's row format: a bare value for one output."""
    if len(outputs) == 1:
        (only,) = outputs.values()
        return json_value(only[i])
    return {key: json_value(value[i]) for key, value in sorted(outputs.items())}


def json_value(value):
    """numpy values -> JSON values (NaN/inf -> None, bytes -> str), as `explain` writes them."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu" or (value.dtype.kind == "f" and np.isfinite(value).all()):
            return value.tolist()  # nothing to replace: skip the per-element walk
        return [json_value(v) for v in value] if value.ndim else json_value(value.item())
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, bytes):
        return _text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _text(value):
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
