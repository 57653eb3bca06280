"""Attributions per raw feature (`granularity="raw"`) or per encoded element (`"encoded"`).

Every method attributes to the elements of the attributed `xai_model` inputs;
this module, shared by all of them, says how those are reported
(`docs/methods.md`, "Granularity"). At `"raw"` (the default):

| encoding | reported |
|---|---|
| IDENTITY | unchanged, one example's shape |
| INDICATOR, COMBINED_EMBEDDING | summed: one number |
| BAG_OF_FEATURES(_SPARSE) | summed when `xai_features.json` says one raw feature is behind the tensor (a bag of words); else each index stays a feature, Vertex's meaning (`["age", "height", "weight"]`) |
| CONCAT_EMBEDDING | summed over the last axis: one number per token; padding exactly 0 |

Features sharing a `groupName` are summed into one number keyed by the group.
Sums keep completeness. Sampled Shapley's players follow the same layout: one
per reported number, so a whole category, token row or group switches at once.
At `"encoded"` nothing is reduced and every element is a player (the output of
Vertex AI's own service).

Token strings come from the `tokens` entries of `xai_features.json`: the ids
of each position are a carried `xai_model` input (`ids_key`), the string is
`vocabulary[id]`, and positions holding `padding_id` are kept at the instance's
value on every path ("frozen"), so their attribution is exactly 0.
"""

import dataclasses
import json
import warnings

import numpy as np
import tensorflow as tf

from xai_callback.errors import SpecError

GRANULARITIES = ("raw", "encoded")
FEATURES_FORMAT = 1
# How one attributed tensor is reduced: keep it, sum it all, sum its last axis.
KEEP, SUM_ALL, SUM_LAST = "keep", "sum", "sum_last"
SUMMED_ENCODINGS = ("INDICATOR", "COMBINED_EMBEDDING")
BAG_ENCODINGS = ("BAG_OF_FEATURES", "BAG_OF_FEATURES_SPARSE")


@dataclasses.dataclass(frozen=True)
class Reported:
    """One key of `featureAttributions`: a feature, or a group of them.

    Attributes:
        name: the feature's name, or the group name.
        members: the `spec.Feature`s summed into it (one unless a group).
        reduction: KEEP, SUM_ALL or SUM_LAST of each member (a group: SUM_ALL,
            then the members are added).
        tokens: the `xai_features.json` entry of a token feature, or None.
    """

    name: str
    members: tuple
    reduction: str
    tokens: dict = None


def check_granularity(granularity):
    """`granularity`, or ValueError naming it and the valid ones."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {list(GRANULARITIES)}; received {granularity!r}.")
    return granularity


class FeatureLayout:
    """What is reported, and which elements play together, at one granularity.

    Example:

    ```python
    layout = FeatureLayout(settings.features, "raw", xai_features)
    players, count = layout.player_maps({"Type": (3,), "text": (8, 4)})
    reported = layout.reduce(attributions, unit_instance, frozen)   # {"Type": [units], ...}
    ```

    Args:
        features: the `spec.Feature`s of the metadata, in its order.
        granularity: "raw" (default) or "encoded".
        xai_features: the content of `assets.extra/xai_features.json`, or None.
    """

    def __init__(self, features, granularity="raw", xai_features=None):
        self.granularity = check_granularity(granularity)
        self.features = tuple(features)
        self.entries = _feature_entries(xai_features)
        self.reported = self._reported()
        self._key = None

    @property
    def raw(self):
        return self.granularity == "raw"

    @property
    def has_tokens(self):
        return self.raw and any(r.tokens is not None for r in self.reported)

    def cache_key(self):
        """What traced graph code using this layout depends on."""
        if self._key is None:
            self._key = json.dumps([self.granularity, [
                [r.name, r.reduction, [m.tensor_key for m in r.members], r.tokens]
                for r in self.reported]], sort_keys=True)
        return self._key

    def _reported(self):
        if not self.raw:
            return [Reported(f.name, (f,), KEEP) for f in self.features]
        buckets = {}  # ("group" | "feature", name) -> members, in metadata order
        for feature in self.features:
            bucket = ("group", feature.group_name) if feature.group_name else ("feature", feature.name)
            buckets.setdefault(bucket, []).append(feature)
        reported = []
        for (kind, name), members in buckets.items():
            if kind == "feature":
                entry = self.entries.get(name) or {}
                tokens = entry if entry.get("kind") == "tokens" else None
                reported.append(Reported(name, tuple(members), self._reduction(members[0]), tokens))
                continue
            others = [f.name for f in self.features if f.name == name and f not in members]
            if others:
                raise SpecError(
                    f"groupName '{name}' of metadata inputs {[m.name for m in members]} is also "
                    "the name of another input, and attributions are keyed by both: rename one.")
            reported.append(Reported(name, tuple(members), SUM_ALL))
        return reported

    def _reduction(self, feature):
        if feature.encoding in SUMMED_ENCODINGS:
            return SUM_ALL
        if feature.encoding == "CONCAT_EMBEDDING":
            return SUM_LAST
        if feature.encoding in BAG_ENCODINGS:
            # One raw feature behind the bag (the exporter says so): one number.
            kind = (self.entries.get(feature.name) or {}).get("kind")
            return SUM_ALL if kind not in (None, "numeric") else KEEP
        return KEEP

    # -- sampled Shapley's players --------------------------------------------

    def player_maps(self, example_shapes):
        """`({tensor key: int64 array of one example's shape}, number of players)`.

        Element `e` of tensor `k` belongs to player `maps[k][e]`. Players are
        numbered in the order of the reported names, whatever the metadata's
        order, so the same seed draws the same orders for the same features.
        """
        maps, count = {}, 0
        for reported in sorted(self.reported, key=lambda r: r.name):
            if len(reported.members) > 1:  # a group: one player
                for member in reported.members:
                    maps[member.tensor_key] = np.full(example_shapes[member.tensor_key], count, np.int64)
                count += 1
                continue
            (member,) = reported.members
            shape = tuple(example_shapes[member.tensor_key])
            size = int(np.prod(shape))
            if reported.reduction == SUM_ALL:
                maps[member.tensor_key], count = np.full(shape, count, np.int64), count + 1
            elif reported.reduction == SUM_LAST and shape:
                rows = size // shape[-1] if shape[-1] else 0
                ids = np.repeat(np.arange(count, count + rows, dtype=np.int64), shape[-1])
                maps[member.tensor_key], count = ids.reshape(shape), count + rows
            else:
                maps[member.tensor_key] = np.arange(count, count + size, dtype=np.int64).reshape(shape)
                count += size
        return maps, count

    # -- tokens ---------------------------------------------------------------

    # The three below are graph code (TensorFlow ops), run eagerly by the Python
    # explainer and inside the `xai_explain` signature alike.

    def frozen(self, model_inputs):
        """`{tensor key: bool [instances, *example]}`: padding positions of token features.

        Empty at "encoded" granularity (today's per-element output).
        """
        if not self.raw:
            return {}
        frozen = {}
        for reported in self.reported:
            if reported.tokens is None or "padding_id" not in reported.tokens:
                continue
            (member,) = reported.members
            ids = self._ids(reported, model_inputs)
            encoded = model_inputs[member.tensor_key]
            padding = tf.equal(ids, tf.cast(int(reported.tokens["padding_id"]), ids.dtype))
            padding = tf.reshape(padding, tf.concat(
                [tf.shape(padding), tf.ones([encoded.shape.rank - ids.shape.rank], tf.int32)], 0))
            frozen[member.tensor_key] = tf.broadcast_to(padding, tf.shape(encoded))
        return frozen

    def tokens(self, model_inputs):
        """`{feature name: string tensor [instances, positions]}` of the token features.

        An id the vocabulary does not list is shown as its number.
        """
        out = {}
        if not self.raw:
            return out
        for reported in self.reported:
            if reported.tokens is None:
                continue
            ids = tf.cast(self._ids(reported, model_inputs), tf.int64)
            vocabulary = list(reported.tokens.get("vocabulary") or [])
            known = (ids >= 0) & (ids < len(vocabulary))
            strings = tf.gather(tf.constant(vocabulary + [""], tf.string),
                                tf.where(known, ids, len(vocabulary)))
            out[reported.name] = tf.where(known, strings, tf.strings.as_string(ids))
        return out

    def _ids(self, reported, model_inputs):
        """The token ids of a token feature, `[instances, positions]`, checked."""
        (member,) = reported.members
        key = reported.tokens.get("ids_key")
        if key not in model_inputs:
            raise SpecError(
                f"xai_features.json: token feature '{reported.name}' names ids_key {key!r}, "
                f"which is not an xai_model input (inputs: {sorted(model_inputs)}).")
        ids = tf.convert_to_tensor(model_inputs[key])
        encoded = tf.convert_to_tensor(model_inputs[member.tensor_key]).shape
        if (not ids.dtype.is_integer or ids.shape.rank is None or ids.shape.rank < 2
                or encoded.rank is None or ids.shape.rank >= encoded.rank
                or not ids.shape.is_compatible_with(encoded[: ids.shape.rank])):
            raise SpecError(
                f"xai_features.json: token feature '{reported.name}': ids_key {key!r} holds "
                f"{ids.dtype.name}{ids.shape.as_list()}, which does not index the positions of "
                f"'{member.tensor_key}' {encoded.as_list()} (expected integer ids "
                f"of shape {encoded[:-1].as_list()}).")
        return ids

    # -- reporting ------------------------------------------------------------

    @property
    def reduces(self):
        """Whether `reduce` does more than rename (a sum, a group)."""
        return any(r.reduction != KEEP or len(r.members) > 1 for r in self.reported)

    def reduce(self, attributions, unit_instance, frozen=None):
        """`{reported name: [units, *reported shape]}` from per-tensor attributions (graph code)."""
        if not self.reduces and not frozen:
            return {r.name: attributions[r.members[0].tensor_key] for r in self.reported}
        out = {}
        for reported in self.reported:
            parts = []
            for member in reported.members:
                value = tf.convert_to_tensor(attributions[member.tensor_key])
                if frozen and member.tensor_key in frozen:
                    # Exactly zero, whatever rounding the model rows saw.
                    value = tf.where(tf.gather(frozen[member.tensor_key], unit_instance),
                                     tf.zeros_like(value), value)
                parts.append(_reduce(value, reported.reduction))
            out[reported.name] = parts[0] if len(parts) == 1 else tf.add_n(parts)
        return out

    def display_inputs(self, model_inputs, raw_inputs, tokens):
        """`{reported name: [instances, ...]}` values to show beside the attributions.

        Token strings for token features; the raw inputs behind a feature
        (`raw_inputs` of `xai_features.json`) when they were given; else the
        explained model input.
        """
        out = {}
        for reported in self.reported:
            if reported.name in tokens:
                out[reported.name] = tokens[reported.name]
                continue
            raw = self._raw_values(reported, raw_inputs)
            if raw is not None:
                out[reported.name] = raw
            elif len(reported.members) == 1:
                out[reported.name] = np.asarray(model_inputs[reported.members[0].tensor_key])
        return out

    def _raw_values(self, reported, raw_inputs):
        if not self.raw or not raw_inputs:
            return None
        keys = []
        for member in reported.members:
            for key in (self.entries.get(member.name) or {}).get("raw_inputs", []):
                if key not in keys:
                    keys.append(key)
        if not keys or any(k not in raw_inputs for k in keys):
            return None
        columns = [np.asarray(raw_inputs[k]) for k in keys]
        count = len(columns[0])
        columns = [c.reshape(count, -1) for c in columns]
        if len(columns) == 1 and columns[0].shape[1] == 1:
            return columns[0][:, 0]
        return np.concatenate([c.astype(object) for c in columns], axis=1)


def _reduce(value, reduction):
    """One tensor's `[units, *example]` attributions reduced."""
    if reduction == KEEP:
        return value
    if reduction == SUM_LAST and value.shape.rank > 2:
        return tf.reduce_sum(value, axis=-1)
    return tf.reduce_sum(tf.reshape(value, [tf.shape(value)[0], -1]), axis=1)


def _feature_entries(xai_features):
    """`{feature name: entry}` of an `xai_features.json` content (None: no file)."""
    if not xai_features:
        return {}
    if xai_features.get("format") != FEATURES_FORMAT:
        warnings.warn(
            f"xai_features.json has format {xai_features.get('format')!r}; this version reads "
            f"format {FEATURES_FORMAT}: token strings and raw values are left out.", stacklevel=4)
        return {}
    return dict(xai_features.get("features") or {})
