"""Export options as plain data, for `get_config` and training config files.

Configs are JSON/YAML, so functions appear in them as import strings
(`"package.module:function"`), input signatures as lists of
`{"shape", "dtype", "name"}`, the explanation spec as its config dict and the
sample as nested lists. `serialize_options` writes that form; the callback
accepts it back as constructor arguments, and `resolve_functions` turns the
import strings into objects when training starts.
"""

import collections.abc

import numpy as np
import tensorflow as tf

from xai_callback.imports import resolve_import_string, to_import_string
from xai_callback.signatures.functions import SignatureFunction

FUNCTION_OPTIONS = ("serving_fn", "preprocess_fn", "model_fn")


def resolve_functions(options):
    """Options with every import string replaced by the object it names.

    Example:

    ```python
    resolve_functions({"preprocess_fn": "my_pkg.features:parse_csv"})
    # {"preprocess_fn": <function parse_csv>}
    ```

    Args:
        options: `ExplainableExporter` keyword arguments, possibly from a config.

    Raises:
        ValueError: an import string is malformed or cannot be imported; the
            message names the argument and the string.
    """
    out = _map_functions(options, _resolve_one)
    if out.get("track"):
        out["track"] = [
            resolve_import_string(obj, f"track[{i}]") if isinstance(obj, str) else obj
            for i, obj in enumerate(out["track"])
        ]
    return out


def serialize_options(options):
    """Options as plain JSON/YAML data; inverse of passing them back in.

    Example:

    ```python
    serialize_options({"preprocess_fn": parse_csv, "sample": {"csv": ["1,2"]}})
    # {"preprocess_fn": "my_pkg.features:parse_csv", "sample": {"csv": ["1,2"]}}
    ```

    Args:
        options: `ExplainableExporter` keyword arguments.

    Raises:
        ValueError: a function or tracked object cannot be named by an import
            string (a lambda, a closure, an object built at run time).
    """
    out = _map_functions(options, _serialize_one)
    if out.get("explanation_spec") is not None:
        from xai_callback.spec import ExplanationSpec

        out["explanation_spec"] = ExplanationSpec.coerce(out["explanation_spec"]).get_config()
    sample = out.get("sample")
    if isinstance(sample, collections.abc.Mapping):
        out["sample"] = {key: _plain(value, f"sample[{key!r}]") for key, value in sample.items()}
    elif isinstance(sample, (list, tuple)):  # one batch per input, in input order
        out["sample"] = [_plain(value, f"sample[{i}]") for i, value in enumerate(sample)]
    elif sample is not None:  # one array for a single input
        out["sample"] = _plain(sample, "sample")
    if out.get("track"):
        out["track"] = [_import_string(obj, f"track[{i}]") for i, obj in enumerate(out["track"])]
    return out


def _map_functions(options, convert):
    """Applies `convert(value, argument)` to every function-valued option."""
    out = plain_containers(dict(options))
    for key in FUNCTION_OPTIONS:
        if out.get(key) is not None:
            out[key] = convert(out[key], key)
    if isinstance(out.get("extra_signatures"), dict):  # else the exporter reports the type
        out["extra_signatures"] = {
            name: convert(fn, f"extra_signatures[{name!r}]")
            for name, fn in out["extra_signatures"].items()
        }
    return out


def plain_containers(value):
    """`value` with other mappings and sequences (Hydra's OmegaConf `DictConfig`,
    `ListConfig`) turned into dicts and lists, recursively; leaves as they are.

    Hydra's `instantiate` passes nested config sections as OmegaConf objects
    unless the config says `_convert_: all`; the exporter expects plain data.
    """
    if isinstance(value, (str, bytes, np.ndarray, tf.Tensor, tf.TensorSpec)):
        return value
    if isinstance(value, collections.abc.Mapping):
        return {key: plain_containers(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(plain_containers(item) for item in value)
    if isinstance(value, collections.abc.Sequence):
        return [plain_containers(item) for item in value]
    return value


def _is_pair(value):
    """The `(fn, input_signature)` form (a list once it went through a config)."""
    return isinstance(value, (tuple, list)) and len(value) == 2


def _resolve_one(value, argument):
    if _is_pair(value):
        fn, signature = value
        return (_resolve_one(fn, argument), deserialize_input_signature(signature))
    if isinstance(value, str):
        # Any string here must be an import string; a malformed one says so.
        return resolve_import_string(value, argument)
    return value


def _serialize_one(value, argument):
    if isinstance(value, SignatureFunction):
        if value.output_names:
            raise ValueError(
                f"{argument}={value!r} has output_names, which a config cannot carry; "
                "return a dict from the function instead."
            )
        value = (value.fn, value.input_signature())
    if _is_pair(value):
        fn, signature = value
        return [_serialize_one(fn, argument), serialize_input_signature(signature)]
    return _import_string(value, argument)


def _import_string(value, argument):
    if isinstance(value, str):
        return value
    # A module-level tf.function is named by its own attribute; a function it
    # wraps by the wrapped function's (which resolves to the same object).
    name = to_import_string(value) or to_import_string(getattr(value, "python_function", None))
    if name is None:
        raise ValueError(
            f"{argument}={value!r} cannot be written to a config: give it as an "
            "import string 'package.module:name' naming a module-level object."
        )
    return name


def _plain(value, argument):
    """A sample batch as nested lists (strings as text)."""
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if array.dtype.kind in "SO":
        try:
            return np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b, otypes=[object])(
                array
            ).tolist()
        except UnicodeDecodeError:
            raise ValueError(
                f"{argument} holds bytes that are not UTF-8 text, which a config cannot "
                "carry; pass sample= in code instead."
            ) from None
    return array.tolist()


def _is_spec(value):
    """A `tf.TensorSpec`, or its config form `{"shape", "dtype", ...}`."""
    return isinstance(value, tf.TensorSpec) or (isinstance(value, dict) and "dtype" in value and "shape" in value)


def _map_signature(signature, one):
    """Applies `one` to each spec of a list, `{key: spec}` or single spec."""
    if _is_spec_dict(signature):
        return {key: one(spec) for key, spec in signature.items()}
    if isinstance(signature, (list, tuple)):
        return [_map_signature(s, one) if _is_spec_dict(s) else one(s) for s in signature]
    return [one(signature)]


def _is_spec_dict(value):
    """`{key: spec}` (not a spec's own config dict)."""
    return (isinstance(value, dict) and not _is_spec(value)
            and all(isinstance(v, (dict, tf.TensorSpec)) for v in value.values()))


def serialize_input_signature(signature):
    """TensorSpecs (list, dict or single) as `{"shape", "dtype", "name"}` dicts."""
    return _map_signature(signature, _plain_spec)


def deserialize_input_signature(signature):
    """Inverse of `serialize_input_signature`; TensorSpecs pass through.

    Raises:
        ValueError: an entry is neither a TensorSpec nor its config form.
    """
    return _map_signature(signature, _to_spec)


def _to_spec(value):
    if isinstance(value, tf.TensorSpec):
        return value
    if not _is_spec(value):
        raise ValueError(
            f"Input signature entry {value!r} is not a TensorSpec; expected "
            "{'shape': [null, 4], 'dtype': 'float32', 'name': 'x'}."
        )
    return tf.TensorSpec(value["shape"], value["dtype"], name=value.get("name"))


def _plain_spec(value):
    spec = _to_spec(value)  # Also normalises (and checks) an already plain entry.
    return {"shape": spec.shape.as_list(), "dtype": spec.dtype.name, "name": spec.name}
