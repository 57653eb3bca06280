"""JAX backend: jax2tf in this process, a TensorFlow subprocess as fallback.

jax2tf (route 1) lowers the model to StableHLO inside one `XlaCallModule`
TensorFlow op, with its `jax.vjp` as the TensorFlow gradient: no extra
process, and models whose layers call `jax.numpy` directly convert too. The
code is lowered for `PLATFORMS` so the export also serves on GPU. When jax2tf
cannot convert or differentiate the model, the TensorFlow subprocess
(route 2) rebuilds it from its Keras config. `XAI_CALLBACK_JAX_ROUTE=jax2tf|tf_subprocess` forces
one route.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from xai_callback.backends.base import MirroredConverter, ModelConverter, conversion_error
from xai_callback.errors import ExportVerificationError, ModelConversionError
from xai_callback.signatures.functions import SignatureFunction

ROUTE_ENV = "XAI_CALLBACK_JAX_ROUTE"
ROUTES = ("auto", "jax2tf", "tf_subprocess")
# Lowered for both, so one export serves on CPU and on NVIDIA GPUs.
PLATFORMS = ("cpu", "cuda")


def live_gradients(call, values, keys):
    """`jax.grad` of the sum of the floating outputs of `call(**values)`."""
    import jax
    import jax.numpy as jnp

    def total(watched):
        outputs = call(**{**values, **watched})
        leaves = [x for x in jax.tree_util.tree_leaves(outputs) if jnp.issubdtype(x.dtype, jnp.floating)]
        return sum(jnp.sum(x) for x in leaves)

    grads = jax.grad(total)({k: jnp.asarray(values[k]) for k in keys})
    return {k: np.asarray(g) for k, g in grads.items()}


class Jax2TfConverter(MirroredConverter):
    """Route 1: the model's stateless call through `jax2tf.convert`, weights as tf.Variables.

    Example:

    ```python
    fn = Jax2TfConverter(model, live_gradients).signature_function("xai_model")
    ```

    Args: as `MirroredConverter`.
    """

    backend = "jax"
    route = "jax2tf in this process"

    def _convert(self, name):
        from jax.experimental import jax2tf

        import keras

        model_vars = list(self.model.trainable_variables) + list(self.model.non_trainable_variables)
        self._pairs = [
            (v, tf.Variable(np.asarray(v.value), trainable=v.trainable, name=v.path)) for v in model_vars
        ]
        tf_vars = [t for _, t in self._pairs]
        keys, call = list(self.keras_fn.input_specs), self.keras_fn.fn

        def stateless(variables, *args):
            with keras.StatelessScope(state_mapping=list(zip(model_vars, variables))):
                return call(**dict(zip(keys, args)))

        names = _dimension_names()
        shapes = [[_poly_shape(v.shape) for v in model_vars]] + [
            _poly_shape(spec.shape, names) for spec in self.keras_fn.input_specs.values()
        ]
        with _quiet():
            converted = jax2tf.convert(
                stateless, polymorphic_shapes=shapes, native_serialization_platforms=PLATFORMS
            )

        def call_tf(**values):
            return converted(list(tf_vars), *[values[k] for k in keys])

        mirror = SignatureFunction(
            call_tf, dict(self.keras_fn.input_specs), output_names=self.keras_fn.output_names, name=name
        )
        try:
            with _quiet():
                mirror.concrete_function()
        except Exception as e:  # noqa: BLE001 - reported with the layer it came from
            raise conversion_error(self.backend, self.route, self.model, e.__cause__ or e,
                                   try_layer=_convert_layer) from e
        return mirror

    def _check_live(self, mirror, gradients):
        # The gradient check converts the vjp: a model jax2tf cannot
        # differentiate is refused here, not when the SavedModel is saved.
        try:
            with _quiet():
                super()._check_live(mirror, gradients)
        except (ExportVerificationError, ModelConversionError):
            raise
        except Exception as e:  # noqa: BLE001 - reported with the layer it came from
            raise conversion_error(self.backend, self.route, self.model, e, try_layer=_convert_layer) from e

    def _assign(self):
        for model_var, tf_var in self._pairs:
            tf_var.assign(np.asarray(model_var.value))  # a jax.Array: no copy-keyword notice


class FallbackConverter(ModelConverter):
    """Tries converters in order; the first that converts does the syncs.

    Example:

    ```python
    FallbackConverter([Jax2TfConverter(model, g), SubprocessConverter(model, g, backend="jax")])
    ```

    Args:
        converters: converters of the same model, best first.
    """

    def __init__(self, converters):
        super().__init__(converters[0].model, rtol=converters[0].rtol, atol=converters[0].atol)
        self.converters = converters
        self.chosen = None

    @property
    def backend(self):
        return self.converters[0].backend

    @property
    def route(self):
        return (self.chosen or self.converters[0]).route

    def signature_function(self, name="xai_model"):
        failures = []
        for converter in self.converters:
            try:
                fn = converter.signature_function(name)
            except ModelConversionError as e:
                failures.append(e)
                continue
            if failures:
                warnings.warn(
                    f"{failures[0]} The export goes through {converter.route} instead.",
                    stacklevel=2,
                )
            self.chosen = converter
            return fn
        layer = next((e.layer for e in failures if e.layer), None)
        raise ModelConversionError(" Also: ".join(str(e) for e in failures), layer=layer)

    def sync(self):
        if self.chosen is not None:
            self.chosen.sync()


def converter(model, **tolerances):
    """The JAX converter `XAI_CALLBACK_JAX_ROUTE` asks for (default: jax2tf, then subprocess)."""
    from xai_callback.backends.tf_subprocess import SubprocessConverter

    route = os.environ.get(ROUTE_ENV, "auto") or "auto"
    if route not in ROUTES:
        raise ModelConversionError(
            f"{ROUTE_ENV}={route!r} is not a route; use one of {list(ROUTES)}."
        )
    in_process = Jax2TfConverter(model, live_gradients, **tolerances)
    subprocess = SubprocessConverter(model, live_gradients, backend="jax", **tolerances)
    if route == "jax2tf":
        return in_process
    if route == "tf_subprocess":
        return subprocess
    return FallbackConverter([in_process, subprocess])


# -- helpers ------------------------------------------------------------------


def _dimension_names():
    """Distinct names for unknown non-batch dimensions: a, b, ..., z, a1, ..."""
    index = 0
    while True:
        yield "abcdefghijklmnopqrstuvwxyz"[index % 26] + (str(index // 26) if index >= 26 else "")
        index += 1


def _poly_shape(shape, names=None):
    """jax2tf's polymorphic shape string: batch dimension "batch", other unknowns named."""
    dims = []
    for i, d in enumerate(tuple(shape)):
        if d is not None:
            dims.append(str(d))
        else:
            dims.append("batch" if i == 0 else next(names))
    return f"({', '.join(dims)})"


def _convert_layer(layer, specs):
    """Converts one layer alone (weights as constants), to find the one jax2tf rejects."""
    from jax.experimental import jax2tf

    import keras

    names = _dimension_names()
    shapes = keras.tree.map_structure(lambda s: _poly_shape(s.shape, names), specs)
    with _quiet():
        converted = jax2tf.convert(
            lambda x: layer(x, training=False),
            polymorphic_shapes=[shapes],
            native_serialization_platforms=PLATFORMS,
        )
        tf.function(converted, autograph=False).get_concrete_function(specs)


class _quiet(warnings.catch_warnings):
    """Hides JAX's deprecation notices (jax2tf arguments, lowering) during conversion."""

    def __enter__(self):
        result = super().__enter__()
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"jax(\.|$)")
        return result


__all__ = ["FallbackConverter", "Jax2TfConverter", "converter", "live_gradients"]
