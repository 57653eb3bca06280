"""Keras models as signature functions: input keys, specs and output names.

The default `xai_model` is the Keras model called on its inputs; a Keras
model (or FeatureSpace) given as `preprocess_fn`/`model_fn` is turned into a
`SignatureFunction` the same way.
"""

import re
import sys

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
        raise SignatureError(_no_inputs_message(model))
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


def _no_inputs_message(model):
    """Why `model` has no inputs, and the line of code that gives it some.

    A Sequential model without `keras.Input` (TensorFlow's "Basic regression"
    tutorial) is built by its first training batch, after `on_train_begin`:
    too late to check the export before training.
    """
    name = getattr(model, "name", model)
    shape = _first_layer_input_shape(model)
    if shape is not None:
        dims = ", ".join(str(d) for d in shape[1:]) + ("," if len(shape) == 2 else "")
        fix = (f"Start it with keras.Input(shape=({dims})), e.g. keras.Sequential("
               f"[keras.Input(shape=({dims})), ...]), or call model.build({tuple(shape)}) "
               "before fit")
    else:
        fix = ("Start it with keras.Input(shape=...) (functional or Sequential API), or "
               "call model.build(input_shape) before fit")
    return (
        f"The model {name!r} has no defined inputs (built={getattr(model, 'built', None)}): "
        "a Sequential model without keras.Input is only built by its first training "
        f"batch, too late to check the export before training. {fix}; or pass "
        "`model_fn` with an input signature."
    )


def _first_layer_input_shape(model):
    """The batch input shape of `model`'s first layer when it is known (an
    adapted Normalization is built on the data it saw), else None."""
    layers = getattr(model, "layers", None) or []
    return _built_input_shape(layers[0]) if layers else None


def _built_input_shape(layer):
    """`(None, *dims)`: the input shape `layer` was built with, else None."""
    # Keras 3 records the shapes a layer was built with, tf-keras the input shape.
    shapes = list((getattr(layer, "_build_shapes_dict", None) or {}).values())
    shape = shapes[0] if len(shapes) == 1 else getattr(layer, "_build_input_shape", None)
    try:
        shape = tuple(tf.TensorShape(shape).as_list())
    except (TypeError, ValueError):
        return None
    return (None, *shape[1:]) if len(shape) >= 2 else None


def _tensor_name(tensor):
    return tensor.name.split(":")[0]


def keras_of(obj):
    """The Keras package `obj` comes from: `keras` (Keras 3) or `tf_keras`."""
    if type(obj).__module__.split(".")[0] == "tf_keras":
        return sys.modules["tf_keras"]
    return keras


def is_model(obj):
    """A Keras 3 or tf-keras model (tf-keras is not imported to find out)."""
    if isinstance(obj, keras.Model):
        return True
    tf_keras = sys.modules.get("tf_keras")
    return tf_keras is not None and isinstance(obj, tf_keras.Model)


def output_structure(model):
    """`{output name: output tensor}` of a functional model, in its output order."""
    structure = _nested(model, "outputs")
    if isinstance(structure, dict):
        return dict(structure)
    return dict(zip(keras_output_names(model), keras.tree.flatten(model.outputs)))


def input_structure(model):
    """The inputs as the model was defined with them (tensor, list or dict)."""
    return _nested(model, "inputs")


def _nested(model, kind):
    # Keras 3 keeps the structure in `_inputs_struct`, tf-keras in `_nested_inputs`.
    for name in (f"_{kind}_struct", f"_nested_{kind}"):
        structure = getattr(model, name, None)
        if structure is not None:
            return structure
    return getattr(model, kind)


def _output_names(model):
    if isinstance(model, keras.Model):
        return keras_output_names(model)
    structure = getattr(model, "_nested_outputs", None)
    if isinstance(structure, dict):
        return list(structure)  # tf-keras orders dict outputs by key, as it returns them
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
    valid; an unnamed `keras.Input` (every `keras.applications` model) is
    keyed by its Input layer's name (`input_layer`, `input_layer_1`, ...); an
    input Keras made itself for a model built on intermediate tensors (e.g.
    FeatureSpace's `training_model` gets `keras_tensor_17CLONE`) is called
    `encoded_features`.

    Raises:
        SignatureError: two inputs would get the same key.
    """
    names = [_tensor_name(t) for t in inputs]
    readable = []
    for name, tensor in zip(names, inputs):
        if name.endswith(_CLONE_SUFFIX):
            name = "encoded_features"
        elif _AUTO_NAME.match(name):
            name = _input_layer_name(tensor) or "encoded_features"
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


def _input_layer_name(tensor):
    """The name of the Input layer that made `tensor`, when Keras named it."""
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) or getattr(history, "layer", None)
    name = getattr(layer, "name", None)
    if type(layer).__name__ != "InputLayer" or not name or _AUTO_NAME.match(name):
        return None
    return name


def keras_signature_function(value, name):
    """A Keras model (or FeatureSpace) given as a function, as a `SignatureFunction`.

    Its input signature is derived as for the main model.
    """
    return model_signature_function(as_keras_model(value), name=name)


def as_keras_model(value):
    """`value` as a functional Keras model: a FeatureSpace (Keras 3 or
    tf-keras) as the model from its raw inputs to its encoded features, a
    preprocessing layer (`TextVectorization`, a lookup, ...) as the model
    calling it on one raw input (see `RAW_INPUT_OF_LAYER`)."""
    if is_feature_space(value):
        # tf-keras' FeatureSpace never sets the name its Layer base class reads.
        name = getattr(value, "name", None) or "feature_space"
        return keras_of(value).Model(value.get_inputs(), value.get_encoded_features(), name=name)
    if is_preprocessing_layer(value):
        return wrap_preprocessing_layer(value)
    return value


# What a preprocessing layer given alone reads: `(dtype, key)` of its raw input.
RAW_INPUT_OF_LAYER = {
    "TextVectorization": ("string", "text"),
    "StringLookup": ("string", None),
    "IntegerLookup": ("int64", None),
    "Normalization": ("float32", None),
    "Discretization": ("float32", None),
}
_KERAS_PACKAGES = ("keras", "tf_keras")


def kind_of(layer):
    """The Keras class `layer` is (or subclasses), by name: "StringLookup", ...

    By name, so that Keras 3 and tf-keras layers (two class hierarchies)
    read alike without importing tf-keras; None for a layer of neither.
    """
    for cls in type(layer).__mro__:
        if cls.__module__.split(".")[0] in _KERAS_PACKAGES:
            return cls.__name__
    return None


def is_keras_layer(value):
    return kind_of(value) is not None and hasattr(value, "get_config") and not is_model(value)


def is_preprocessing_layer(value):
    return is_keras_layer(value) and kind_of(value) in RAW_INPUT_OF_LAYER


def wrap_preprocessing_layer(layer):
    """`keras.Model(raw, layer(raw))` for a preprocessing layer given alone.

    Its raw input: one string per example for `TextVectorization` (keyed
    `text`, the shape the keras.io text tutorials feed it); for lookups,
    Normalization and Discretization the shape the layer was built (adapted)
    on, else one value per example, keyed by the layer's name.
    """
    dtype, key = RAW_INPUT_OF_LAYER[kind_of(layer)]
    shape = (1,)
    if key is None:
        key = signature_key(layer.name)
        built = _built_input_shape(layer)
        shape = built[1:] if built is not None and len(built) >= 2 else shape
    package = keras_of(layer)
    raw = package.Input(shape=tuple(shape), dtype=dtype, name=key)
    return package.Model(raw, layer(raw), name=f"{layer.name}_model")


def is_feature_space(value):
    return type(value).__name__ == "FeatureSpace" and hasattr(value, "get_encoded_features")


def is_keras_model(value):
    """A built Keras model (Keras 3 or tf-keras), FeatureSpace or preprocessing layer."""
    if is_feature_space(value) or is_preprocessing_layer(value):
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
    if structure is None:
        structure = getattr(model, "_nested_outputs", None)  # tf-keras
    if isinstance(structure, dict):
        return list(structure.keys())
    if not isinstance(model, keras.Model):
        return list(model.output_names)  # tf-keras names outputs by their layers
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
    """A Keras 3 or tf-keras model defined by a graph of layer calls."""
    return (is_model(op) and hasattr(op, "_nodes_by_depth") and bool(getattr(op, "inputs", None))
            and getattr(op, "_is_graph_network", True))


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
    if is_keras_layer(value):
        raise SignatureError(
            f"`{name}` is the Keras layer {getattr(value, 'name', value)!r} "
            f"({type(value).__name__}), which has no input signature of its own: wrap it in a "
            "model, e.g. `raw = keras.Input(shape=(1,), dtype=\"string\", name=\"text\"); "
            f"{name}=keras.Model(raw, layer(raw))` (these layers are wrapped for you: "
            f"{', '.join(sorted(RAW_INPUT_OF_LAYER))})."
        )
    if isinstance(value, tuple):
        if len(value) != 2:
            raise TypeError(
                f"`{name}` as a tuple must be (fn, input_signature); received a "
                f"tuple of {len(value)} items: {value!r}."
            )
        return SignatureFunction(value[0], value[1], name=name)
    return SignatureFunction(value, name=name)
