"""Turning user functions and Keras models into exportable signatures.

A signature here is a `tf.function` with a fixed input signature whose
TensorSpecs are named (the names become the SavedModel's input keys) and whose
output is a flat `{str: Tensor}` dict (TF cannot serve nested outputs).
"""

import re

import tensorflow as tf

from xai_callback.errors import ExportVerificationError, SignatureError
from xai_callback.signatures.specs import check_specs_match, signature_io


class SignatureFunction:
    """A function with a named input signature and a flat dict output.

    Wraps what users pass as `serving_fn`, `preprocess_fn`, `model_fn` or in
    `extra_signatures`: a `tf.function` with an `input_signature`, a concrete
    function, or a plain callable plus an input signature.

    Example:

    ```python
    def parse_csv(line):
        cols = tf.strings.split(line, ",").to_tensor()
        return {"features": tf.strings.to_number(cols)}

    preprocess = SignatureFunction(
        parse_csv, [tf.TensorSpec([None], tf.string, name="csv_line")])
    ```

    Args:
        fn: the callable, `tf.function` or concrete function.
        input_signature: a list of named `tf.TensorSpec` (the function is called
            positionally), a dict `{key: tf.TensorSpec}` (called with keyword
            arguments), or a single `tf.TensorSpec`. Defaults to None: taken from
            `fn` itself when it is a `tf.function` with an `input_signature` or a
            concrete function.
        output_names: names for outputs returned as a tensor or list of
            tensors. Defaults to None: `output_0`, `output_1`, ...
        name: what the signature is for, used in error messages.
    """

    def __init__(self, fn, input_signature=None, output_names=None, name="function"):
        if not callable(fn):
            raise TypeError(
                f"`{name}` must be callable (a tf.function, a concrete function or "
                f"a Python function); received {fn!r} of type {type(fn).__name__}."
            )
        self.name = name
        self.fn = fn
        self.output_names = list(output_names) if output_names else None
        # Trackables the function uses that the export must save (a Keras
        # model's variables and lookup tables); see `resources_of`.
        # A Python function's own layers and tables (a lookup adapted outside
        # the model) are found by the names it reads.
        self.owners = referenced_trackables(fn)
        self._call_style, self.input_specs = _input_specs(fn, input_signature, name)
        for key in self.input_specs:
            check_signature_key(key, name)
        named = [tf.TensorSpec(s.shape, s.dtype, name=k) for k, s in self.input_specs.items()]
        self.tf_function = tf.function(self._call, input_signature=named, autograph=False)
        self._concrete = None

    @property
    def keys(self):
        return list(self.input_specs)

    def _call(self, *args):
        values = dict(zip(self.input_specs, args))
        if self._call_style == "kwargs":
            result = self.fn(**values)
        elif self._call_style == "dict":
            result = self.fn(values)
        else:
            result = self.fn(*args)
        return flatten_outputs(result, self.output_names, self.name)

    def concrete_function(self):
        """Traces once; raises `SignatureError` naming the function on failure."""
        if self._concrete is None:
            try:
                self._concrete = self.tf_function.get_concrete_function()
            except SignatureError:
                raise
            except Exception as e:  # noqa: BLE001 - any trace error is the user's function
                specs = {k: f"{s.dtype.name}{s.shape}" for k, s in self.input_specs.items()}
                raise SignatureError(
                    f"`{self.name}` cannot be traced with input signature {specs}: "
                    f"{type(e).__name__}: {e}"
                ) from e
        return self._concrete

    def input_signature(self):
        """The input signature in the form that reproduces this call style."""
        if self._call_style == "kwargs":
            return dict(self.input_specs)
        if self._call_style == "dict":
            return [dict(self.input_specs)]
        return [tf.TensorSpec(s.shape, s.dtype, name=k) for k, s in self.input_specs.items()]

    def output_specs(self):
        return signature_io(self.concrete_function())[1]

    def call_dict(self, inputs):
        """Calls with a dict keyed like the input signature."""
        return self.tf_function(*[inputs[k] for k in self.input_specs])


def referenced_trackables(fn):
    """TensorFlow Trackables (layers, lookup tables, models) that a Python
    function reads from its closure or module globals, nested functions
    and lambdas included, or the object a bound method belongs to.

    Their lookup tables must be saved with the signature, or TensorFlow
    refuses an "untracked resource" after training.
    """
    fn = getattr(fn, "python_function", fn)  # a tf.function's Python function
    found = []

    def add(value):
        if _holds_resources(value) and not any(value is f for f in found):
            found.append(value)

    add(getattr(fn, "__self__", None))
    function = getattr(fn, "__func__", fn)
    code = getattr(function, "__code__", None)
    if code is None:
        return found
    for cell in getattr(function, "__closure__", None) or ():
        try:
            add(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    module = getattr(function, "__globals__", {})
    for name in _names_read(code):
        if name in module:
            add(module[name])
    return found


def resources_of(owners):
    """Every TrackableResource (lookup tables, ...) reachable from `owners`."""
    seen, found = set(), []
    for owner in owners:
        if not isinstance(owner, tf.__internal__.tracking.Trackable):
            continue  # a JAX/PyTorch model holds no TensorFlow resources
        for obj in tf.train.TrackableView(owner).descendants():
            if isinstance(obj, tf.saved_model.experimental.TrackableResource) and id(obj) not in seen:
                seen.add(id(obj))
                found.append(obj)
    return found


def _holds_resources(value):
    """A Keras layer or model (Keras 3 or tf-keras), a `tf.Module` or a lookup
    table: what owns tables. Not datasets or functions, whose checkpoint view
    may trace."""
    if isinstance(value, (tf.Module, tf.saved_model.experimental.TrackableResource)):
        return True
    return isinstance(value, tf.__internal__.tracking.Trackable) and any(
        cls.__module__.split(".")[0] in ("keras", "tf_keras") for cls in type(value).__mro__)


def _names_read(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names_read(const)
    return names


def _input_specs(fn, input_signature, name):
    """(call style, `{key: TensorSpec}`) from an explicit or embedded signature."""
    if input_signature is None:
        if hasattr(fn, "structured_input_signature"):  # concrete function
            args, kwargs = fn.structured_input_signature
            if kwargs and not args:
                return "kwargs", dict(kwargs)
            input_signature = list(args)
        elif getattr(fn, "input_signature", None) is not None:  # tf.function
            input_signature = list(fn.input_signature)
        else:
            raise SignatureError(
                f"`{name}` has no input signature: received {fn!r}. Decorate it with "
                "@tf.function(input_signature=[tf.TensorSpec(shape, dtype, name=...)]) "
                "or pass it as (fn, input_signature), e.g. "
                f"{name}=(fn, [tf.TensorSpec([None, 4], tf.float32, name='x')])."
            )
    if isinstance(input_signature, tf.TensorSpec):
        input_signature = [input_signature]
    if isinstance(input_signature, dict):
        specs, style = dict(input_signature), "kwargs"
        for key, spec in specs.items():
            _check_spec(spec, name, key)
        return style, specs
    if not isinstance(input_signature, (list, tuple)):
        raise TypeError(
            f"The input signature of `{name}` must be a list of tf.TensorSpec, a dict "
            f"{{key: tf.TensorSpec}} or a tf.TensorSpec; received {input_signature!r}."
        )
    if len(input_signature) == 1 and isinstance(input_signature[0], dict):
        specs = dict(input_signature[0])
        for key, spec in specs.items():
            _check_spec(spec, name, key)
        return "dict", specs
    specs = {}
    for i, spec in enumerate(input_signature):
        _check_spec(spec, name, i)
        key = spec.name or _argument_name(fn, i)
        if key in specs:
            raise SignatureError(
                f"The input signature of `{name}` names two inputs '{key}'; "
                "input names become signature keys and must be unique."
            )
        specs[key] = spec
    return "positional", specs


def signature_key(name):
    """`name` made a valid signature input key (as TensorFlow would need it)."""
    key = re.sub(r"[^A-Za-z0-9_]", "_", name)
    # Graph op names cannot start with "_" or a digit.
    return key if key[:1].isalpha() else f"input_{key}"


def check_signature_key(key, name):
    """Refuses input keys TensorFlow would reject or silently rename."""
    if not isinstance(key, str) or not key or signature_key(key) != key:
        raise SignatureError(
            f"`{name}` has input name {key!r}, which is not a valid signature key "
            "(letters, digits and underscores, starting with a letter); "
            f"TensorFlow would reject or rename it. Use e.g. {signature_key(str(key) or 'x')!r}."
        )


def _check_spec(spec, name, position):
    if not isinstance(spec, tf.TensorSpec):
        raise TypeError(
            f"Input {position!r} of the input signature of `{name}` must be a "
            f"tf.TensorSpec; received {spec!r} of type {type(spec).__name__}."
        )


def _argument_name(fn, index):
    """Name of positional argument `index` of a Python function, as TF does."""
    import inspect

    try:
        params = [
            p.name
            for p in inspect.signature(getattr(fn, "python_function", fn)).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return params[index] if index < len(params) else f"input_{index}"


def flatten_outputs(result, output_names, name):
    """A function result as the flat `{str: Tensor}` dict signatures need."""
    if isinstance(result, dict):
        out = {}
        for key, value in result.items():
            if not isinstance(key, str):
                raise SignatureError(
                    f"`{name}` returned a dict with a non-string key {key!r}; "
                    "signature outputs are keyed by strings."
                )
            if isinstance(value, (dict, list, tuple)):
                raise SignatureError(
                    f"`{name}` returned a nested structure under key '{key}' "
                    f"({type(value).__name__}); signature outputs must be a flat "
                    "dict of tensors."
                )
            out[key] = tf.convert_to_tensor(value)
        return out
    values = list(result) if isinstance(result, (list, tuple)) else [result]
    names = output_names or [f"output_{i}" for i in range(len(values))]
    if len(names) != len(values):
        raise SignatureError(
            f"`{name}` returned {len(values)} outputs but {len(names)} output names "
            f"are known ({names})."
        )
    return {n: tf.convert_to_tensor(v) for n, v in zip(names, values)}


def compose(preprocess, model_fn, name="serving_default"):
    """`model_fn(**preprocess(x))` with `preprocess`'s input signature."""

    def composed(**raw):
        return model_fn.call_dict(preprocess.call_dict(raw))

    function = SignatureFunction(composed, dict(preprocess.input_specs), name=name)
    function.owners.extend(preprocess.owners + model_fn.owners)
    return function


def check_preprocess_output(preprocess, model_fn):
    """Traces both and checks preprocess outputs equal model inputs."""
    produced = preprocess.output_specs()
    expected = {k: s for k, s in model_fn.input_specs.items()}
    for key in sorted(set(produced) & set(expected)):
        got, want = produced[key].dtype, expected[key].dtype
        if (got.is_integer or got.is_bool) and want.is_floating:
            raise SignatureError(
                f"`{preprocess.name}` output {key!r} is {got.name} but `{model_fn.name}` input "
                f"{key!r} is {want.name}: add the cast at the end of the preprocessing, e.g. "
                f"`{key}: tf.cast(value, tf.{want.name})` (or keras.ops.cast in a Keras "
                "model); integer ids carry no gradient, so a float encoding (one-hot, "
                "embedding) is what gets explained."
            )
    try:
        check_specs_match(produced, expected, preprocess.name, model_fn.name)
    except ExportVerificationError as e:
        raise SignatureError(str(e)) from None
