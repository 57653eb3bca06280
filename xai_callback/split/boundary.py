"""The tensors passed from `xai_preprocess` to `xai_model`, and their keys.

Keys are named after the raw features they encode (`Type`, `age`,
`sex_X_age`); a raw feature with several encodings (wide & deep) gets them
grouped; token embeddings carry their ids.
"""

import dataclasses
import re

import tensorflow as tf

from xai_callback.split import layers as keras_preprocessing
from xai_callback.signatures.functions import signature_key

RAW, ENCODED, CARRIED = "raw", "encoded", "carried"
# Separator of the raw feature names a crossed feature is made of (FeatureSpace
# names its HashedCrossing layers the same way).
CROSS = "_X_"


@dataclasses.dataclass
class BoundaryTensor:
    """One tensor passed from `xai_preprocess` to `xai_model`.

    Attributes:
        key: its signature key.
        tensor: the KerasTensor in the model's graph.
        role: RAW (a float raw input kept in raw units), ENCODED (a float
            encoding, attributed) or CARRIED (non-float, passed through).
        raw_keys: keys of the raw inputs it depends on.
        encoding: `keras_preprocessing.Encoding` for ENCODED tensors.
        group: the raw feature it is attributed with, when that feature has
            several attributed tensors (metadata `groupName`).
        as_ids: float token ids (an Embedding reading a float32 `Input`)
            passed as int64 ids, only so explanations can show the tokens;
            `xai_model` does not read them.
    """

    key: str
    tensor: object
    role: str
    raw_keys: list
    encoding: object = None
    group: str = None
    as_ids: bool = False

    @property
    def dtype(self):
        """The dtype `xai_preprocess` outputs (the tensor's, or int64 for `as_ids`)."""
        return tf.int64 if self.as_ids else tf.as_dtype(self.tensor.dtype)

    @property
    def attributed(self):
        return self.role in (RAW, ENCODED)


def name_boundary(graph, raw_keys, found):
    """Boundary tensors in graph order, keyed after the raw features they encode."""
    order = {id(t): i for i, t in enumerate(graph.inputs)}
    for i, step in enumerate(graph.steps):
        for t in step.outputs:
            order.setdefault(id(t), len(graph.inputs) + i)
    entries = sorted(found.values(), key=lambda item: order[id(item[0])])
    used, boundary = set(), []

    def claim(key):
        candidate, n = key, 2
        while candidate in used:
            candidate, n = f"{key}_{n}", n + 1
        used.add(candidate)
        return candidate

    # Raw inputs keep their own keys; encodings take the raw name when free.
    for tensor, role in entries:
        if id(tensor) in raw_keys:
            key = raw_keys[id(tensor)]
            used.add(key)
            boundary.append(BoundaryTensor(key, tensor, role, [key]))
    encoded = []
    for tensor, role in entries:
        if id(tensor) in raw_keys or role != ENCODED:
            continue
        sources = [raw_keys[id(t)] for t in graph.raw_ancestors(tensor)]
        encoding = keras_preprocessing.describe_encoded(graph, graph.producer(tensor), tensor)
        encoded.append((tensor, sources, encoding))
    # Of several encodings of one raw feature (wide & deep), the one-hot keeps
    # the raw name and the embedding is `<raw>_embedding`.
    encoded.sort(key=lambda item: item[2].embedding is not None)
    for tensor, sources, encoding in encoded:
        base = _cross_name(graph, tensor, sources) if len(sources) > 1 else (
            sources[0] if sources else "encoded")
        key = claim(base if base not in used else f"{base}_{encoding.suffix}")
        boundary.append(BoundaryTensor(key, tensor, ENCODED, sources, encoding))
    for tensor, role in entries:
        if id(tensor) in raw_keys or role != CARRIED:
            continue
        sources = [raw_keys[id(t)] for t in graph.raw_ancestors(tensor)]
        kind = "mask" if tensor.dtype == "bool" else "ids" if "int" in str(tensor.dtype) else "values"
        key = claim(f"{CROSS.join(sources) or 'carried'}_{kind}")
        boundary.append(BoundaryTensor(key, tensor, role, sources))
    _carry_token_ids(graph, boundary, claim)
    _group_by_raw_feature(boundary)
    return boundary


def _cross_name(graph, tensor, sources):
    """A crossed feature's name: its HashedCrossing layer's, when the user named
    it (FeatureSpace names them `a_X_b`), else the raw names joined by `_X_`."""
    for step in graph.ancestors([tensor])[::-1]:
        layer = step.operation
        if keras_preprocessing.is_kind(layer, "HashedCrossing"):
            auto = re.fullmatch(r"hashed_crossing(_\d+)?", layer.name)
            if not auto and signature_key(layer.name) == layer.name:
                return layer.name
            break
    return CROSS.join(sources)


def _carry_token_ids(graph, boundary, claim):
    """Token embeddings carry their ids, so explanations can show the tokens
    (float ids as int64 ids of their own)."""
    for b in list(boundary):
        ids = graph.resolve(b.encoding.ids) if b.encoding is not None and b.encoding.ids is not None else None
        if ids is None:
            continue
        as_ids = not tf.as_dtype(ids.dtype).is_integer
        if not as_ids and any(o.tensor is ids for o in boundary):
            continue
        boundary.append(BoundaryTensor(claim(f"{b.key}_ids"), ids, CARRIED, list(b.raw_keys),
                                       as_ids=as_ids))


def _group_by_raw_feature(boundary):
    """A raw feature with several attributed tensors is attributed as one group."""
    single = [b for b in boundary if b.attributed and len(b.raw_keys) == 1]
    for b in single:
        if sum(o.raw_keys == b.raw_keys for o in single) > 1:
            b.group = b.raw_keys[0]
