"""Keras models as signature functions: input keys, specs and output names.

The default `xai_model` is the Keras model called on its inputs; a Keras
model (or FeatureSpace) given as `preprocess_fn`/`model_fn` is turned into a
`SignatureFunction` the same way.
"""

import re

import keras
import tensorflow as tf

from xai_callback.errors import SignatureError
from xai_callback.signatures.functions import SignatureFunction, signature_key


def model_signature_function(model, name="xai_model"):
    """The default `xai_model`: the Keras model called on its inputs.

    Input keys are the Keras `Input` names (made valid signature keys);
    output keys are the model's output names (or its dict keys when it
    returns a dict). Half-precision outputs (mixed precision) are exported as
    float32.
    """
    inputs = getattr(model, "inputs", None) if getattr(model, "built", False) else None
    if not inputs:
        raise SignatureError(
            f"The model {getattr(model, 'name', model)!r} has no defined inputs "
            f"(built={getattr(model, 'built', None)}). Build it with keras.Input "
            "(functional or Sequential API), or pass `model_fn` with an input "
            "signature."
        )
    keys = input_keys_of(inputs)
    specs = {key: keras_tensor_spec(t, key) for key, t in zip(keys, inputs)}
    key_of = {_tensor_name(t): key for t, key in zip(inputs, keys)}
    try:
        structure = model.input
    except (AttributeError, ValueError):
        # A Keras 3 Sequential built without keras.Input has `inputs` but was
        # never called, so it has no `input` structure: a flat one is right.
        structure = inputs[0] if len(inputs) == 1 else list(inputs)

    def call_model(**values):
        # Rebuild the structure the model was defined with (tensor, list or
        # dict of Inputs), matching tensors by Input name.
        packed = tf.nest.map_structure(lambda t: values[key_of[_tensor_name(t)]], structure)
        outputs = model(packed, training=False)
        if isinstance(outputs, dict):
            return {k: float32_output(v) for k, v in outputs.items()}
        return tf.nest.map_structure(float32_output, outputs)

    function = SignatureFunction(call_model, specs, output_names=_output_names(model), name=name)
    function.owners.append(model)
    return function


def _tensor_name(tensor):
    return tensor.name.split(":")[0]


def _output_names(model):
    if isinstance(model, keras.Model):
        return keras_output_names(model)
    return list(model.output_names)  # tf-keras


def float32_output(value):
    """Half-precision outputs (mixed precision) are exported as float32."""
    if value.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(value, tf.float32)
    return value


# Keras names the inputs of a model built on intermediate tensors
# `<tensor name>CLONE`, and unnamed tensors `keras_tensor_<n>`.
_CLONE_SUFFIX = "CLONE"
_AUTO_NAME = re.compile(r"^keras_tensor(_\d+)?$")


def keras_tensor_spec(tensor, key):
    """The `tf.TensorSpec` named `key` of a Keras (symbolic) tensor."""
    return tf.TensorSpec(tuple(tensor.shape), tf.as_dtype(tensor.dtype), name=key)


def input_keys_of(inputs):
    """Signature keys for Keras input tensors, readable and unique.

    A Keras `Input` name that is not a valid key ("monthly charges") is made
    valid; an input Keras named itself (a model built on intermediate tensors,
    e.g. FeatureSpace's `training_model`, gets `keras_tensor_17CLONE`) is
    called `encoded_features`.

    Raises:
        SignatureError: two inputs would get the same key.
    """
    names = [_tensor_name(t) for t in inputs]
    readable = []
    for name in names:
        if name.endswith(_CLONE_SUFFIX):
            name = name[: -len(_CLONE_SUFFIX)]
        if _AUTO_NAME.match(name):
            name = "encoded_features"
        readable.append(name)
    if len(inputs) > 1:
        readable = [f"{r}_{i}" if readable.count(r) > 1 else r for i, r in enumerate(readable)]
    keys = [signature_key(r) for r in readable]
    for key in keys:
        if keys.count(key) > 1:
            clashing = sorted(n for n, k in zip(names, keys) if k == key)
            raise SignatureError(
                f"The model's Inputs {clashing} all become the signature key {key!r}; "
                "rename them."
            )
    return keys


def keras_signature_function(value, name):
    """A Keras model (or FeatureSpace) given as a function, as a `SignatureFunction`.

    Its input signature is derived as for the main model.
    """
    return model_signature_function(as_keras_model(value), name=name)


def as_keras_model(value):
    """`value`, or a FeatureSpace as the functional model from its raw inputs to its encoded features."""
    try:
        from keras.utils import FeatureSpace
    except ImportError:  # pragma: no cover - Keras 3 always has it
        return value
    if isinstance(value, FeatureSpace):
        import keras

        return keras.Model(value.get_inputs(), value.get_encoded_features(), name=value.name)
    return value


def is_keras_model(value):
    """A built Keras model (Keras 3 or tf-keras) or FeatureSpace."""
    if type(value).__name__ == "FeatureSpace":
        return True
    return hasattr(value, "inputs") and hasattr(value, "get_config") and hasattr(value, "layers")


def keras_output_names(model):
    """The names the outputs of `model` are exported under.

    A dict-output model gives its keys; otherwise Keras' `output_names` (the
    producing layers' names), except that an output computed by a nested
    model (a wrapped `keras.applications` model, a body called on a
    preprocessing model's output) takes that model's own output name
    (`predictions`, not `mobilenetv2_1.00_224`). A never-called Sequential
    has none, so its last layer names the single output.
    """
    structure = getattr(model, "_outputs_struct", None)
    if isinstance(structure, dict):
        return list(structure.keys())
    functional = model
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            return [model.layers[-1].name]
    names = []
    for name, tensor in zip(functional.output_names, keras.tree.flatten(functional.outputs)):
        history = getattr(tensor, "_keras_history", None)
        inner = inlinable_model(history.operation) if history is not None else None
        if inner is not None:
            inner_names = keras_output_names(inner)
            if history.tensor_index < len(inner_names):
                name = inner_names[history.tensor_index]
        names.append(name)
    return [f"{n}_{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]



def is_functional(op):
    return isinstance(op, keras.Model) and hasattr(op, "_nodes_by_depth") and bool(
        getattr(op, "inputs", None))



def inlinable_model(op):
    """The functional model to inline for a nested model call, else None."""
    if isinstance(op, keras.Sequential):
        op = getattr(op, "_functional", None)
    return op if is_functional(op) else None


def as_signature_function(value, name):
    """Coerces a user value to a `SignatureFunction` (or None).

    Accepts a `SignatureFunction`, a `(fn, input_signature)` tuple, a
    `tf.function` with an input signature, a concrete function, or a Keras
    model (its input signature derived as for the main model).
    """
    if value is None or isinstance(value, SignatureFunction):
        return value
    if is_keras_model(value):
        return keras_signature_function(value, name)
    if isinstance(value, tuple):
        if len(value) != 2:
            raise TypeError(
                f"`{name}` as a tuple must be (fn, input_signature); received a "
                f"tuple of {len(value)} items: {value!r}."
            )
        return SignatureFunction(value[0], value[1], name=name)
    return SignatureFunction(value, name=name)
