"""What every converter shares: the interface, the TensorFlow copy kept in step
with the live model, and naming the layer a conversion failed on.

Imports neither JAX nor PyTorch, so the TensorFlow worker process can use it.
"""

import numpy as np
import tensorflow as tf

from xai_callback.errors import ExportVerificationError, ModelConversionError
from xai_callback.signatures.samples import generate_sample
from xai_callback.signatures.functions import flatten_outputs
from xai_callback.signatures.keras_models import model_signature_function
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL, check_close as _check_close


class ModelConverter:
    """Turns a Keras model into the TensorFlow function written as `xai_model`.

    Example:

    ```python
    converter = xai_callback.backends.for_model(model)
    fn = converter.signature_function("xai_model")  # traced, checked
    converter.sync()                                 # before each write
    ```

    Args:
        model: a built Keras model.
        rtol, atol: tolerances of the live-model checks. Default to the
            exporter's (1e-4, 1e-5).
    """

    backend = None
    route = None  # how the TensorFlow function is obtained, for messages and docs
    # What to do when the copy computes something else (the end of that message).
    mismatch_advice = ""

    def __init__(self, model, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
        self.model = model
        self.rtol, self.atol = rtol, atol

    def signature_function(self, name="xai_model"):
        """The model as a traced `SignatureFunction`; refuses models it cannot convert.

        Raises:
            ModelConversionError: naming the layer when it can be found.
        """
        raise NotImplementedError

    def sync(self):
        """Brings the TensorFlow function up to the model's current weights."""


class MirroredConverter(ModelConverter):
    """A TensorFlow copy of a JAX or PyTorch model, checked against the live model.

    Subclasses build the copy (`_convert`) and copy weights into it
    (`_assign`); this class checks the copy on a generated batch: outputs
    and input gradients at conversion (before training), outputs again after
    every weight copy.

    Example:

    ```python
    class MyConverter(MirroredConverter):
        def _convert(self, name): ...   # a traced SignatureFunction
        def _assign(self): ...          # current weights into it
    ```

    Args:
        model: a built Keras model.
        live_gradients: `live_gradients(call, values, keys) -> {key: array}`,
            the gradient of the sum of the floating outputs of
            `call(**values)` w.r.t. `values[key]`, taken by the backend's own
            autodiff (`jax.grad`, torch autograd).
        rtol, atol: tolerances of the checks.
    """

    def __init__(self, model, live_gradients, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
        super().__init__(model, rtol=rtol, atol=atol)
        self.live_gradients = live_gradients
        self.mirror = None

    def signature_function(self, name="xai_model"):
        # Keys, specs, output names and the packing of inputs are the
        # TensorFlow backend's own; only the called function differs.
        self.keras_fn = model_signature_function(self.model, name=name)
        mirror = self._convert(name)
        try:
            self._probe = generate_sample(self.keras_fn.input_specs, owner=name)
        except ValueError:
            self._probe = None  # string inputs: no JAX/torch model takes them
        try:
            self._check_live(mirror, gradients=True)
        except ExportVerificationError as e:
            raise ModelConversionError(
                f"The TensorFlow copy of the {self.backend} model ({self.route}) does not "
                f"compute what the model computes: {e}{self.mismatch_advice}"
            ) from e
        self.mirror = mirror
        return mirror

    def sync(self):
        if self.mirror is None:
            return  # the exporter was given its own model_fn
        self._assign()
        self._check_live(self.mirror, gradients=False)

    def _convert(self, name):
        """The TensorFlow copy as a traced `SignatureFunction` (subclass)."""
        raise NotImplementedError

    def _assign(self):
        """Copies the model's current weights into the copy (subclass)."""
        raise NotImplementedError

    def _check_live(self, mirror, gradients):
        """Raises `ExportVerificationError` where the copy and the live model differ."""
        if self._probe is None:
            return
        values = {k: v.numpy() for k, v in self._probe.items()}
        against = f"the live {self.backend} model"
        got = {k: v.numpy() for k, v in mirror.call_dict(self._probe).items()}
        for key, want in self._live_outputs(values).items():
            _check_close(got[key], want, mirror.name, key, against, self.rtol, self.atol)
        keys = [k for k, spec in self.keras_fn.input_specs.items() if spec.dtype.is_floating]
        if not gradients or not keys:
            return
        copied = mirror_gradients(mirror, self._probe, keys)  # must work: IG needs it
        try:
            live = self.live_gradients(self.keras_fn.fn, values, keys)
        except Exception:  # noqa: BLE001 - e.g. lax.while_loop: no reverse mode in JAX
            return  # nothing to compare with; TensorFlow's gradient is the one served
        for key, grad in copied.items():
            _check_close(grad, live[key], f"gradient of {mirror.name}", key,
                         f"the gradient of {against}", self.rtol, self.atol)

    def _live_outputs(self, values):
        import keras

        from xai_callback.backends import numpy_copy_notice_hidden

        with numpy_copy_notice_hidden():
            result = keras.tree.map_structure(keras.ops.convert_to_numpy, self.keras_fn.fn(**values))
        flat = flatten_outputs(result, self.keras_fn.output_names, self.keras_fn.name)
        return {k: v.numpy() for k, v in flat.items()}


def mirror_gradients(fn, inputs, keys):
    """Gradient of the sum of `fn`'s floating outputs w.r.t. `inputs[key]`, in TensorFlow."""
    inputs = dict(inputs)
    with tf.GradientTape() as tape:
        for key in keys:
            tape.watch(inputs[key])
        outputs = fn.call_dict(inputs)
        total = tf.add_n([tf.reduce_sum(v) for v in outputs.values() if v.dtype.is_floating])
    grads = tape.gradient(total, [inputs[k] for k in keys])
    return {k: np.zeros(inputs[k].shape) if g is None else g.numpy() for k, g in zip(keys, grads)}


# -- which layer failed ---------------------------------------------------------


def layers_of(model):
    """Every layer inside `model`, depth first, the model itself excluded."""
    found, seen = [], set()

    def visit(layer):
        for child in getattr(layer, "layers", None) or []:
            if id(child) not in seen:
                seen.add(id(child))
                found.append(child)
                visit(child)

    visit(model)
    return found


def describe_layer(layer):
    return f"layer {layer.name!r} ({type(layer).__name__})"


def failing_layer(model, error, try_layer=None):
    """The layer `error` came from, or None.

    First the innermost of the model's layers whose method is on the
    traceback of `error` (or of its causes); when the traceback holds none
    (JAX lowers after tracing, Keras hides its own frames), the first layer
    on which `try_layer(layer, input_specs)` raises.
    """
    layers = {id(layer) for layer in layers_of(model)}
    innermost, _ = innermost_layer(error, lambda obj: id(obj) in layers)
    if innermost is not None or try_layer is None:
        return innermost
    return _first_failing(model, try_layer)


def innermost_layer(error, accept):
    """`(layer, exception)`: the innermost `self` on the tracebacks of `error`
    and its causes for which `accept(self)` holds, and the exception whose
    traceback holds it; `(None, None)` when there is none."""
    found = (None, None)
    for exc in _chain(error):
        tb = exc.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            if owner is not None and accept(owner):
                found = (owner, exc)
            tb = tb.tb_next
    return found


def _first_failing(model, try_layer):
    """The first top-level layer `try_layer` fails on, refined into nested models."""
    for layer in getattr(model, "layers", None) or []:
        specs = layer_input_specs(layer)
        if specs is None:
            continue
        try:
            try_layer(layer, specs)
        except Exception:  # noqa: BLE001 - any failure marks the layer
            return _first_failing(layer, try_layer) or layer
    return None


def layer_input_specs(layer):
    """TensorSpecs of a functional layer's input (same structure), or None."""
    import keras

    if isinstance(layer, keras.layers.InputLayer):
        return None
    try:
        structure = layer.input
    except (AttributeError, ValueError):  # not called in a graph, or called twice
        return None
    return keras.tree.map_structure(
        lambda t: tf.TensorSpec(tuple(t.shape), tf.as_dtype(t.dtype)), structure
    )


def _chain(error):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def conversion_error(backend, route, model, error, try_layer=None, advice=""):
    """A `ModelConversionError` naming the failing layer (when found) and the cause."""
    layer = failing_layer(model, error, try_layer)
    where = describe_layer(layer) if layer is not None else f"model {model.name!r}"
    return ModelConversionError(
        f"The {backend} model cannot be turned into a TensorFlow function ({route}): "
        f"{where} fails with {type(error).__name__}: {error_gist(error)}{advice}",
        layer=None if layer is None else layer.name,
    )


def error_gist(error):
    """The first paragraph of an error, at most 600 characters."""
    text = str(error).strip()
    # Keras appends call arguments; JAX long explanations: keep the gist.
    return text.split("\n\n")[0][:600]
