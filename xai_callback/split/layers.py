"""What Keras preprocessing layers mean for explanations.

Reads the layers of a model's graph (`keras_graph.Graph`) to name the slots of
an encoded tensor (vocabulary, bins, hash buckets), choose its Vertex
encoding and a baseline meaning "absent", and to make up raw values that the
layers accept (verification samples, baselines of raw string/int inputs).
"""

import dataclasses

import keras
import numpy as np

from xai_callback.signatures.keras_models import kind_of

# Layers whose output carries no gradient back to their input, whatever its
# dtype (a Discretization of floats is flat almost everywhere; an Embedding
# reads ids, also when they come as floats).
NON_DIFFERENTIABLE = ("StringLookup", "IntegerLookup", "TextVectorization", "Hashing",
                      "HashedCrossing", "Discretization", "CategoryEncoding", "Embedding")
_LOOKUPS = ("StringLookup", "IntegerLookup")
_VOCABULARY_LAYERS = _LOOKUPS + ("TextVectorization",)
_BAG_MODES = ("count", "tf_idf")


def is_kind(layer, *kinds):
    """`layer` is one of the Keras classes `kinds` (by name: Keras 3 or tf-keras)."""
    return layer is not None and kind_of(layer) in kinds


def is_non_differentiable(layer):
    return is_kind(layer, *NON_DIFFERENTIABLE)


# Vertex encodings, and the contract's feature kinds (`xai_features.json`).
IDENTITY, INDICATOR, BAG = "IDENTITY", "INDICATOR", "BAG_OF_FEATURES"
COMBINED, CONCAT = "COMBINED_EMBEDDING", "CONCAT_EMBEDDING"
KIND_OF_ENCODING = {IDENTITY: "numeric", INDICATOR: "indicator", BAG: "bag",
                    COMBINED: "embedding", CONCAT: "tokens"}
# Name suffix of a second encoded tensor of the same raw feature.
SUFFIX_OF_ENCODING = {IDENTITY: "encoded", INDICATOR: "indicator", BAG: "bag",
                      COMBINED: "embedding", CONCAT: "tokens"}


@dataclasses.dataclass
class Encoding:
    """How one encoded tensor (an `xai_model` input) represents its raw feature.

    Attributes:
        encoding: the Vertex encoding (IDENTITY, INDICATOR, ...).
        slot_names: one name per slot of the last axis (INDICATOR / BAG).
        embedding: the Embedding layer for embeddings, else None.
        ids: the KerasTensor of token ids (CONCAT_EMBEDDING), else None.
        vocabulary: token strings by id (CONCAT_EMBEDDING), else None.
        baseline_id: the embedding row that means "absent" (padding / OOV),
            None for a zero vector.
    """

    encoding: str
    slot_names: list = None
    embedding: object = None
    ids: object = None
    vocabulary: list = None
    baseline_id: int = None

    @property
    def kind(self):
        return KIND_OF_ENCODING[self.encoding]

    @property
    def suffix(self):
        return SUFFIX_OF_ENCODING[self.encoding]

    @property
    def has_baseline_row(self):
        return self.embedding is not None and self.baseline_id is not None

    def baseline_row(self):
        """The padding/OOV row of the embedding, read from its variable now
        (in a `tf.function`: when the graph runs, so a saved signature reads
        the saved weights)."""
        return self.embedding.embeddings[self.baseline_id]

    def baseline(self):
        """The "absent" value of one example: zeros, or the padding/OOV row."""
        if not self.has_baseline_row:
            return 0.0
        row = np.asarray(keras.ops.convert_to_numpy(self.baseline_row()))
        return row.astype(np.float64).tolist()


def describe_encoded(graph, step, tensor):
    """The `Encoding` of `tensor`, an encoded tensor computed by `step`."""
    layer = step.operation
    if is_kind(layer, "Embedding"):
        return _embedding(graph, layer, step.inputs[0], tensor)
    if is_kind(layer, "CategoryEncoding"):
        names = _slot_names(graph, step.inputs[0], layer.num_tokens)
        encoding = BAG if layer.output_mode in _BAG_MODES else INDICATOR
        return Encoding(encoding, slot_names=_fit_names(names, tensor))
    if is_non_differentiable(layer):
        mode = _output_mode(layer)
        names = _own_slot_names(layer)
        return Encoding(BAG if mode in _BAG_MODES else INDICATOR,
                        slot_names=_fit_names(names, tensor))
    return Encoding(IDENTITY)


def _embedding(graph, layer, ids, tensor):
    source = _source_layer(graph, ids)
    vocabulary = _vocabulary(source) if is_kind(source, *_VOCABULARY_LAYERS) else None
    # The row that means "absent": padding (mask index 0) or the OOV index 0 of
    # a lookup; without either, index 0 is a real category, so zeros.
    has_absent_row = layer.mask_zero or is_kind(source, "TextVectorization") or (
        is_kind(source, *_LOOKUPS) and (source.mask_token is not None or source.num_oov_indices > 0))
    baseline_id = 0 if has_absent_row else None
    example = list(tensor.shape[1:])
    one_id = len(example) == 1 or (len(example) == 2 and example[0] == 1)
    if one_id:
        return Encoding(COMBINED, embedding=layer, baseline_id=baseline_id)
    return Encoding(CONCAT, embedding=layer, ids=ids, vocabulary=vocabulary,
                    baseline_id=baseline_id)


def _source_layer(graph, tensor):
    step = graph.producer(tensor)
    return None if step is None else step.operation


def _slot_names(graph, ids, num_tokens):
    """Names of the ids a CategoryEncoding counts, from the layer that made them."""
    source = _source_layer(graph, ids)
    names = _own_slot_names(source) if source is not None else None
    if names is None or len(names) != num_tokens:
        return [str(i) for i in range(num_tokens)]
    return names


def _own_slot_names(layer):
    """Names of the ids (or slots) `layer` outputs, or None if unknown."""
    if is_kind(layer, *_VOCABULARY_LAYERS):
        return _vocabulary(layer)
    if is_kind(layer, "Discretization"):
        edges = [float(b) for b in (layer.bin_boundaries or [])]
        if not edges:
            return None
        names = [f"< {edges[0]:g}"]
        names += [f"[{a:g}, {b:g})" for a, b in zip(edges, edges[1:])]
        return names + [f">= {edges[-1]:g}"]
    if is_kind(layer, "Hashing", "HashedCrossing"):
        return [f"bin_{i}" for i in range(layer.num_bins)]
    return None


def _vocabulary(layer):
    """The token of each id, as strings (IntegerLookup's OOV -1 shown as [UNK])."""
    lookup = getattr(layer, "_lookup_layer", layer)  # TextVectorization wraps one
    oov = getattr(lookup, "oov_token", None)
    names = []
    for token in layer.get_vocabulary():
        if isinstance(token, bytes):
            token = token.decode("utf-8", errors="replace")
        if is_kind(layer, "IntegerLookup") and token == oov:
            token = "[UNK]"
        names.append(str(token))
    return names


def _fit_names(names, tensor):
    """`names` if there is one per slot of the last axis, else generic ones."""
    size = tensor.shape[-1] if tensor.shape else None
    if size is None:
        return names
    if names is not None and len(names) == size:
        return names
    if names is not None and len(names) == size + 1:
        return names[1:]  # a mask token has no slot in one-hot outputs
    return [f"slot_{i}" for i in range(size)]


def _output_mode(layer):
    return getattr(layer, "output_mode", None) or getattr(layer, "_output_mode", None)


# -- raw values the layers accept ---------------------------------------------

def raw_values(graph, tensor):
    """Values that the layers consuming raw input `tensor` accept, or None.

    Returns:
        `(baseline, examples)`: a value meaning "absent" for raw baselines
        (OOV token, empty text, most frequent value), and a list of typical
        values for verification samples; None when no consumer tells.
    """
    for step in graph.consumers(tensor):
        values = _accepted_values(step.operation, tensor)
        if values is not None:
            return values
    return None


def _accepted_values(layer, tensor):
    is_text = tensor.dtype == "string"
    if is_kind(layer, "TextVectorization"):
        words = [w for w in _vocabulary(layer)[2:] if w] or ["text"]
        texts = [" ".join(words[i:i + 3]) for i in range(0, max(len(words), 1), 2)][:8]
        return "", texts or ["text"]
    if is_kind(layer, *_LOOKUPS):
        vocabulary = [v for v in layer.get_vocabulary() if v != layer.mask_token]
        real = vocabulary[layer.num_oov_indices:]
        if is_kind(layer, "IntegerLookup"):
            real = [int(v) for v in real]
        else:
            real = [v.decode() if isinstance(v, bytes) else str(v) for v in real]
        if layer.num_oov_indices > 0:
            baseline = layer.oov_token
        elif real:
            baseline = real[0]  # adapted vocabularies are sorted by frequency
        else:
            return None
        return baseline, (real[:8] or [baseline])
    if is_kind(layer, "Hashing"):
        return ("", ["a", "b", "c", "d"]) if is_text else (0, [0, 1, 2, 3])
    if is_text:
        return None
    if is_kind(layer, "Embedding"):
        return 0, list(range(min(layer.input_dim, 8)))
    if is_kind(layer, "CategoryEncoding"):
        return 0, list(range(min(layer.num_tokens, 8)))
    return None
