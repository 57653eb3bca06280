"""Global feature importance: mean absolute attribution per raw feature (no Beam here).

What the Vertex console showed as a model's feature importance, from any
number of explanations: for each reported feature (raw feature, group, token
feature), the mean over explained outputs of the sum of |attribution| over the
feature's elements (one number per scalar feature, the whole map for an image
feature), and its share of the total; for token features also the mean
|attribution| of each token of the vocabulary over its occurrences. The same
accumulator serves Beam's `GlobalImportanceFn` (merged across workers) and the
TensorBoard `AttributionLogger`.

The JSON written (`importance.json`, read by `compare-importance`):

```json
{"format": 1, "instances": 1000, "attributions": 1000,
 "features": {"Age": {"meanAbsAttribution": 0.31, "share": 0.52}, ...},
 "tokens": {"text": {"great": {"meanAbsAttribution": 0.9, "count": 412}, ...}},
 "source": {...}}
```

Features and tokens are ordered by importance, largest first.
"""

import io
import json

import numpy as np

FORMAT = 1


class ImportanceAccumulator:
    """Sums of |attribution| per feature, token and (optionally) element map.

    Example:

    ```python
    total = ImportanceAccumulator()
    for explanation in response.to_dict()["explanations"]:
        total.add(explanation)
    total.summary()["features"]
    ```

    Args:
        keep_maps: also keep the element-wise mean |attribution| of
            non-scalar features (an image's attribution map). Defaults to False.
    """

    def __init__(self, keep_maps=False):
        self.keep_maps = keep_maps
        self.instances = 0
        self.units = 0
        self.features = {}  # name -> sum over units of sum |a|
        self.tokens = {}    # name -> {token: [sum |a|, occurrences]}
        self.maps = {}      # name -> element-wise sum of |a| over units

    def add(self, explanation):
        """Adds one instance's explanation (the JSON dict of `Explanation.to_dict()`)."""
        self.instances += 1
        tokens = explanation.get("tokens") or {}
        for unit in explanation.get("attributions", ()):
            self.units += 1
            for name, value in unit["featureAttributions"].items():
                magnitude = np.abs(np.asarray(value, np.float64))  # None (NaN in JSON) -> nan
                self.features[name] = self.features.get(name, 0.0) + float(np.nansum(magnitude))
                if self.keep_maps and magnitude.ndim:
                    previous = self.maps.get(name)
                    self.maps[name] = magnitude if previous is None else previous + magnitude
                if name in tokens:
                    self._add_tokens(name, tokens[name], magnitude)
        return self

    def _add_tokens(self, name, tokens, magnitude):
        counts = self.tokens.setdefault(name, {})
        for token, value in zip(tokens, np.ravel(magnitude)):
            if token == "" or not np.isfinite(value):
                continue  # padding positions
            entry = counts.setdefault(token, [0.0, 0])
            entry[0] += float(value)
            entry[1] += 1

    def merge(self, other):
        """Adds `other`'s sums into this accumulator. Returns self."""
        self.instances += other.instances
        self.units += other.units
        for name, value in other.features.items():
            self.features[name] = self.features.get(name, 0.0) + value
        for name, counts in other.tokens.items():
            mine = self.tokens.setdefault(name, {})
            for token, (total, count) in counts.items():
                entry = mine.setdefault(token, [0.0, 0])
                entry[0] += total
                entry[1] += count
        for name, value in other.maps.items():
            self.maps[name] = value if name not in self.maps else self.maps[name] + value
        return self

    def mean_maps(self):
        """`{feature: element-wise mean |attribution|}` (with `keep_maps=True`)."""
        return {name: value / max(self.units, 1) for name, value in self.maps.items()}

    def summary(self, **source):
        """The importance JSON dict (see the module docstring); `source` is recorded as given."""
        means = {name: total / max(self.units, 1) for name, total in self.features.items()}
        total = sum(means.values())
        features = {name: {"meanAbsAttribution": mean, "share": mean / total if total > 0 else 0.0}
                    for name, mean in sorted(means.items(), key=lambda item: (-item[1], item[0]))}
        tokens = {}
        for name, counts in sorted(self.tokens.items()):
            ranked = sorted(counts.items(), key=lambda item: (-item[1][0] / item[1][1], item[0]))
            tokens[name] = {token: {"meanAbsAttribution": value / count, "count": count}
                            for token, (value, count) in ranked}
        out = {"format": FORMAT, "instances": self.instances, "attributions": self.units,
               "features": features}
        if tokens:
            out["tokens"] = tokens
        if source:
            out["source"] = source
        return out


def importance_of(explanations, keep_maps=False):
    """`ImportanceAccumulator` over explanation JSON dicts (e.g. `response.to_dict()["explanations"]`)."""
    total = ImportanceAccumulator(keep_maps=keep_maps)
    for explanation in explanations:
        total.add(explanation)
    return total


def parse_importance(text, where="the importance file"):
    """An importance JSON text -> its dict, checked.

    Raises:
        ValueError: not JSON, or not an importance file (naming `where`).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where} is not JSON ({e.msg} at line {e.lineno}).") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, dict) or not all(
            isinstance(v, dict) and "meanAbsAttribution" in v for v in features.values()):
        raise ValueError(f"{where} is not a feature importance file: it needs "
                         '{"features": {name: {"meanAbsAttribution": ...}}} as batch-explain writes it.')
    return data


def plot_importance(summary, top=20):
    """A horizontal bar chart of the `top` features' mean |attribution|, as PNG bytes.

    Raises:
        ImportError: matplotlib (the `plot` extra) is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as e:
        raise ImportError("The importance chart needs matplotlib: pip install 'xai-callback[plot]'.") from e
    items = list(summary["features"].items())[:top]
    names = [name for name, _ in items][::-1]
    values = [entry["meanAbsAttribution"] for _, entry in items][::-1]
    figure = Figure(figsize=(7, 0.4 * len(items) + 1.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.barh(names, values, color="#1b9e77")
    axes.set_xlabel("mean |attribution|")
    axes.set_title(f"Feature importance ({summary.get('instances', 0)} instances)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
