"""The automatic split of a Keras model at its differentiable frontier.

A model that takes raw strings and ids and encodes them with preprocessing
layers (lookups, hashing, discretization, one-hot, embeddings) has no gradient
from its outputs back to its raw inputs. Integrated gradients must start at
the first float tensors after those steps. `plan_split` finds them and cuts
the model's own graph there:

- `xai_preprocess`: raw inputs -> the encoded float tensors (plus the raw
  float inputs that only pass differentiable layers, and any non-float tensor
  the rest of the model still reads, such as an `Embedding(mask_zero=True)`
  mask);
- `xai_model`: those tensors -> the model's outputs.

Keys are named after the raw features they encode (`Type`, `age`,
`sex_X_age`), and `default_features()` describes each one in Vertex terms
(INDICATOR with its vocabulary, embeddings with their padding/OOV row as
baseline), so attributions come back per raw feature. Non-differentiability
is decided by tensor dtype, plus the preprocessing layers known to have no
gradient (`keras_preprocessing.NON_DIFFERENTIABLE`).
"""

import dataclasses
import re

import keras
import tensorflow as tf

from xai_callback.split import graph as keras_graph, layers as keras_preprocessing
from xai_callback.errors import SignatureError
from xai_callback.signatures.functions import SignatureFunction, signature_key
from xai_callback.signatures.keras_models import (
    as_keras_model,
    float32_output,
    input_keys_of,
    keras_output_names,
    keras_tensor_spec,
)

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
    """

    key: str
    tensor: object
    role: str
    raw_keys: list
    encoding: object = None
    group: str = None

    @property
    def attributed(self):
        return self.role in (RAW, ENCODED)

    def spec(self):
        return keras_tensor_spec(self.tensor, self.key)


class SplitPlan:
    """Where a Keras model is cut, and the signature functions of both sides.

    Built by `plan_split`; holds no copies of the model, so it always reflects
    the current weights (baselines read embedding rows when asked).
    """

    def __init__(self, graph, raw_keys, boundary, model_steps, preprocess_steps):
        self.graph = graph
        self.raw_keys = raw_keys  # {id(raw KerasTensor): key}
        self.boundary = boundary
        self.model_steps = model_steps
        self.preprocess_steps = preprocess_steps

    @property
    def raw_inputs(self):
        return {self.raw_keys[id(t)]: t for t in self.graph.inputs}

    def preprocess_function(self):
        """`xai_preprocess`: raw inputs (serving_default's keys) -> boundary tensors."""
        graph, steps, boundary = self.graph, self.preprocess_steps, self.boundary
        raw = self.raw_inputs

        def preprocess(**inputs):
            values = {id(t): inputs[key] for key, t in raw.items()}
            graph.run(steps, values)
            return {b.key: _as_declared(values[id(b.tensor)], b.tensor) for b in boundary}

        specs = {key: keras_tensor_spec(t, key) for key, t in raw.items()}
        return self._owned(SignatureFunction(preprocess, specs, name="xai_preprocess (automatic split)"))

    def model_function(self):
        """`xai_model`: boundary tensors -> the model's outputs (float32)."""
        graph, steps, boundary = self.graph, self.model_steps, self.boundary

        def model(**inputs):
            values = {id(b.tensor): inputs[b.key] for b in boundary}
            graph.run(steps, values)
            return {name: float32_output(values[id(t)]) for name, t in graph.outputs.items()}

        specs = {b.key: b.spec() for b in boundary}
        return self._owned(SignatureFunction(model, specs, name="xai_model (automatic split)"))

    def _owned(self, function):
        function.owners.append(self.graph.model)
        return function

    def default_features(self):
        """One metadata `Feature` per attributed tensor, named by raw feature."""
        from xai_callback.spec.feature import Feature

        features = []
        for b in self.boundary:
            if not b.attributed:
                continue
            encoding = b.encoding or keras_preprocessing.Encoding(keras_preprocessing.IDENTITY)
            baseline = encoding.baseline()
            kwargs = {"name": b.key, "input_key": b.key, "encoding": encoding.encoding,
                      "group_name": b.group}
            if encoding.slot_names is not None:
                kwargs["index_feature_mapping"] = encoding.slot_names
            if encoding.embedding is not None:
                kwargs.update(encoded_tensor_name=b.key, encoded_baselines=[baseline])
            else:
                kwargs["baselines"] = [baseline]
            features.append(Feature(**kwargs))
        return features

    def baseline_rows(self):
        """`{key: function returning the embedding row}` of the attributed
        tensors whose default baseline is a trained padding/OOV row: an
        in-graph explanation reads them when it runs, as the metadata written
        at each export does when it is written (the rows move in training)."""
        return {b.key: b.encoding.baseline_row for b in self.boundary
                if b.attributed and b.encoding is not None and b.encoding.has_baseline_row}

    def features_description(self):
        """The content of `assets.extra/xai_features.json` (what Vertex cannot say)."""
        described = {}
        for b in self.boundary:
            if not b.attributed:
                continue
            kind = "cross" if len(b.raw_keys) > 1 else (b.encoding.kind if b.encoding else "numeric")
            entry = {"kind": kind, "raw_inputs": list(b.raw_keys)}
            if b.encoding is not None and b.encoding.ids is not None:
                entry["ids_key"] = self.key_of(b.encoding.ids)
                if b.encoding.vocabulary is not None:
                    entry["vocabulary"] = list(b.encoding.vocabulary)
                    entry["padding_id"] = 0
            described[b.key] = entry
        return {"format": 1, "features": described}

    def key_of(self, tensor):
        tensor = self.graph.resolve(tensor)
        return next(b.key for b in self.boundary if b.tensor is tensor)

    def describe(self):
        """One line per boundary tensor, for messages and `ExportResult.describe`."""
        return "\n".join(
            f"  {b.key}: {b.role} {tf.as_dtype(b.tensor.dtype).name}{list(b.tensor.shape)}"
            f" from {', '.join(b.raw_keys) or '-'}"
            for b in self.boundary)


def plan_split(model):
    """The `SplitPlan` of a Keras 3 model with non-differentiable preprocessing.

    Returns None when nothing needs cutting (every raw input float and
    differentiable all the way) or the model has no readable graph
    (subclassed models, tf-keras models).
    """
    return _plan_of_graph(keras_graph.graph_of(model))


def _plan_of_graph(graph):
    """`plan_split` on the model's `keras_graph.Graph` (None: no graph)."""
    if graph is None:
        return None
    raw_keys = dict(zip((id(t) for t in graph.inputs), input_keys_of(graph.inputs)))
    found, model_step_ids = _walk_back(graph, raw_keys)
    if all(role == RAW for _, role in found.values()):
        return None
    boundary = _name_boundary(graph, raw_keys, found)
    model_steps = [s for s in graph.steps if id(s) in model_step_ids]
    preprocess_steps = graph.ancestors([b.tensor for b in boundary])
    return SplitPlan(graph, raw_keys, boundary, model_steps, preprocess_steps)


def known_raw_values(graph, rows):
    """Raw values the model's preprocessing layers accept, `{input key: list}`.

    For the string and integer inputs a verification sample cannot make up
    (vocabulary entries of the lookup reading them, words of a
    TextVectorization, ids within an Embedding); floats are left out. Empty
    for models without a readable graph (`graph` None).
    """
    if graph is None:
        return {}
    values = {}
    for key, tensor in zip(input_keys_of(graph.inputs), graph.inputs):
        if _is_float(tensor):
            continue
        accepted = keras_preprocessing.raw_values(graph, tensor)
        if accepted is not None:
            examples = accepted[1]
            values[key] = [examples[i % len(examples)] for i in range(rows)]
    return values


def raw_input_features(graph):
    """Default `Feature`s for a model explained on its raw inputs (no split).

    String and integer inputs get a baseline their preprocessing accepts
    (the OOV token, empty text, the most frequent value), so sampled Shapley
    never feeds a lookup a value it refuses; floats keep a zero baseline.
    None for models without a readable graph (`graph` None).
    """
    from xai_callback.spec.feature import Feature

    if graph is None:
        return None
    features = []
    for key, tensor in zip(input_keys_of(graph.inputs), graph.inputs):
        if _is_float(tensor):
            baseline = 0.0
        else:
            accepted = keras_preprocessing.raw_values(graph, tensor)
            baseline = accepted[0] if accepted is not None else (
                "" if tensor.dtype == "string" else 0)
        features.append(Feature(name=key, baselines=[baseline]))
    return features


def _walk_back(graph, raw_keys):
    """From the outputs back to the frontier.

    Returns `({id(tensor): (tensor, role)}, ids of the steps xai_model runs)`.
    A float tensor is computed inside xai_model when its step reads at least
    one float tensor and is not a known non-differentiable layer; a non-float
    tensor when its step reads only floats (an argmax of scores). Everything
    else stops the walk: a float one there is an encoded feature, a non-float
    one is carried through unchanged.
    """
    found, model_steps, seen = {}, set(), set()
    stack = list(graph.outputs.values())
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        is_float = _is_float(tensor)
        step = graph.producer(tensor)
        if step is None:
            found[id(tensor)] = (tensor, RAW if is_float else CARRIED)
            continue
        float_inputs = [t for t in step.inputs if _is_float(t)]
        cut = isinstance(step.operation, keras_preprocessing.NON_DIFFERENTIABLE)
        if step.inputs and not cut and (float_inputs if is_float else len(float_inputs) == len(step.inputs)):
            model_steps.add(id(step))
            stack.extend(step.inputs)
        elif not step.inputs:
            model_steps.add(id(step))  # constants are made inside xai_model
        else:
            found[id(tensor)] = (tensor, ENCODED if is_float else CARRIED)
    return found, model_steps


def _name_boundary(graph, raw_keys, found):
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
        if isinstance(layer, keras.layers.HashedCrossing):
            auto = re.fullmatch(r"hashed_crossing(_\d+)?", layer.name)
            if not auto and signature_key(layer.name) == layer.name:
                return layer.name
            break
    return CROSS.join(sources)


def _carry_token_ids(graph, boundary, claim):
    """Token embeddings carry their ids, so explanations can show the tokens."""
    for b in list(boundary):
        ids = b.encoding.ids if b.encoding is not None else None
        if ids is None or any(o.tensor is graph.resolve(ids) for o in boundary):
            continue
        boundary.append(BoundaryTensor(claim(f"{b.key}_ids"), graph.resolve(ids), CARRIED,
                                       list(b.raw_keys)))


def _group_by_raw_feature(boundary):
    """A raw feature with several attributed tensors is attributed as one group."""
    single = [b for b in boundary if b.attributed and len(b.raw_keys) == 1]
    for b in single:
        if sum(o.raw_keys == b.raw_keys for o in single) > 1:
            b.group = b.raw_keys[0]


def _is_float(tensor):
    return tf.as_dtype(tensor.dtype).is_floating


def _as_declared(value, tensor):
    """`value` with the dtype and shape its KerasTensor declares, which xai_model takes.

    TF's shape inference may be less specific than Keras', and some layers
    return another dtype than they declare (StringLookup(output_mode=
    "one_hot") declares float32 and returns int64 on TF); the contract
    needs them equal.
    """
    dtype = tf.as_dtype(tensor.dtype)
    if value.dtype != dtype:
        value = tf.cast(value, dtype)
    return tf.ensure_shape(value, tensor.shape)


def compose_keras_preprocessing(preprocess, model):
    """One functional model: a Keras preprocessing model (or FeatureSpace) feeding `model`.

    The automatic split then cuts the combined graph, so a body trained on
    encoded features (FeatureSpace's `training_model`) is explained per raw
    feature.

    Raises:
        SignatureError: the preprocessing outputs do not fit the model inputs.
    """
    preprocess = as_keras_model(preprocess)
    inputs, encoded = preprocess.input, preprocess.output
    try:
        outputs = model(encoded)
        if not isinstance(outputs, dict):
            # Keep the model's own output names (not the nested model's name).
            outputs = dict(zip(keras_output_names(model), keras.tree.flatten(outputs)))
        return keras.Model(inputs, outputs)
    except Exception as e:  # noqa: BLE001 - any Keras error is a mismatch of the two
        raise SignatureError(
            f"preprocess_fn {getattr(preprocess, 'name', preprocess)!r} cannot feed the model "
            f"{getattr(model, 'name', model)!r}: {type(e).__name__}: {e}. Pass split=False to "
            "export them as two separate functions."
        ) from e


def is_keras_preprocessing(value):
    """A Keras model or FeatureSpace given as `preprocess_fn`."""
    return isinstance(value, (keras.Model, keras.utils.FeatureSpace))


class ModelPreprocessing:
    """What the exporter needs to know of a Keras model's preprocessing layers.

    Example:

    ```python
    found = ModelPreprocessing.of(model, preprocess_fn=None, model_fn=None, split=True)
    found.plan          # a SplitPlan, or None when nothing needs cutting
    found.source        # the model serving_default calls
    ```

    Attributes:
        plan: the `SplitPlan` when the model is cut automatically, else None.
        source: the Keras model whose graph was read (the model, or the model
            composed with a Keras `preprocess_fn`), None without a graph.
    """

    def __init__(self, plan, source, graph=None):
        self.plan = plan
        self.source = source
        # Read once: the defaults are asked for at every export.
        self._graph = plan.graph if plan is not None else graph

    @classmethod
    def of(cls, model, preprocess_fn, model_fn, split):
        """Reads `model`; an explicit `model_fn` or non-Keras `preprocess_fn` wins."""
        if model_fn is not None or not isinstance(model, keras.Model):
            return cls(None, None)
        if keras.backend.backend() != "tensorflow":
            # String preprocessing layers run on TensorFlow only; on JAX/PyTorch
            # the model is exported whole (xai_callback/backends/).
            split = False
        if preprocess_fn is None:
            # Read even with split=False: the raw inputs then get baselines
            # and sample values their lookups accept.
            graph = keras_graph.graph_of(model)
            return cls(_plan_of_graph(graph) if split else None, model, graph)
        if split and is_keras_preprocessing(preprocess_fn):
            source = compose_keras_preprocessing(preprocess_fn, model)
            plan = plan_split(source)
            if plan is not None:
                return cls(plan, source)
        return cls(None, None)  # the two functions as given

    def default_features(self):
        """Metadata defaults: per raw feature (split), raw baselines (unsplit), or None."""
        if self.plan is not None:
            return self.plan.default_features()
        if self.source is not None:
            return raw_input_features(self._graph)
        return None

    def known_raw_values(self, rows):
        return known_raw_values(self._graph, rows)
