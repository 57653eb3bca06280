"""TF Serving's JSON conventions for predict bodies: row and columnar, b64, `_bytes` outputs.

Instances are decoded by `xai_callback.explain.instances` (the same code the
local explainer uses), plain numbers by a vectorised fast path that gives the
same arrays (`numeric`). Responses follow TF Serving's REST API: the row format
answers `{"predictions": [...]}` (bare values for a single output, one object
per instance for several), the columnar format `{"outputs": ...}` (a bare
tensor for a single output, an object for several); outputs whose name ends
in `_bytes` are `{"b64": ...}`; non-finite floats are `NaN` / `Infinity`.
"""

import base64
from collections.abc import Mapping

import numpy as np

from xai_callback.explain.errors import InstanceError
from xai_callback.explain.instances import instances_to_tensors
from xai_callback.serve.errors import ServeError
from xai_callback.serve.numeric import NumericInputs

SIGNATURE_KEY = "signature_name"
ROW_KEY, COLUMNAR_KEY = "instances", "inputs"
# Set in the request's scope by `bodies.read_json` when the body has a JSON true/false.
BOOLEANS_KEY = "xai_callback.booleans"


def request_object(body, allowed, where="the request body"):
    """`body` as a dict whose keys are all in `allowed` (`where` names it in errors)."""
    if not isinstance(body, Mapping):
        raise ServeError(400, f"{where[0].upper()}{where[1:]} must be a JSON object; received "
                              f"{kind(body)}.")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ServeError(400, f"Unknown key {unknown[0]!r} in {where}; it takes {sorted(allowed)}.")
    return body


def instances_of(body):
    """`(data, row_format)` from a body with exactly one of `instances` / `inputs`."""
    has_rows, has_columns = ROW_KEY in body, COLUMNAR_KEY in body
    if has_rows == has_columns:
        raise ServeError(400, "The request body must have exactly one of 'instances' (row format) "
                              f"and 'inputs' (columnar format); it has {sorted(body)}.")
    if has_rows:
        if not isinstance(body[ROW_KEY], list):
            raise ServeError(400, f"'instances' must be a list; received {kind(body[ROW_KEY])}.")
        return body[ROW_KEY], True
    return body[COLUMNAR_KEY], False


def signature_of(model, body):
    """The name given by `signature_name` (default `serving_default`), checked."""
    name = body.get(SIGNATURE_KEY) or "serving_default"
    if not isinstance(name, str) or name not in model.signatures:
        raise ServeError(400, f"Serving signature {name!r} is not in the model; it has "
                              f"{sorted(model.signatures)}.")
    return name


class SignatureInputs:
    """A signature's inputs, prepared once for decoding requests.

    Example:

    ```python
    inputs = SignatureInputs("serving_default", {"x": tf.TensorSpec([None, 3], tf.float32)})
    decode([[1, 2, 3]], True, inputs)["x"]   # np.ndarray float32 (1, 3)
    ```

    Args:
        name: the signature's name (in error messages).
        specs: `{key: tf.TensorSpec}` of its inputs.
    """

    def __init__(self, name, specs):
        self.name = name
        self.specs = specs
        self.numeric = NumericInputs(specs)


def decode(data, row_format, inputs, booleans=False):
    """`{key: np.ndarray}` for `inputs` (`SignatureInputs`) from row instances
    or columnar inputs.

    Plain numbers take the numeric fast path; everything else, and every
    error, the general decoder (`instances_to_tensors`). `booleans`: the body
    holds a JSON true/false (`booleans_in`), which feeds only bool inputs.

    Raises:
        ServeError: 400 naming the instance and key that do not fit.
    """
    specs, signature_name = inputs.specs, inputs.name
    try:
        if not row_format:
            data = _columns(data, specs, signature_name)
        if booleans:
            _refuse_booleans(data, specs, signature_name)
        arrays = inputs.numeric.arrays(data)
        if arrays is not None:
            return arrays
        tensors = instances_to_tensors(data, specs, signature_name)
    except InstanceError as e:
        if row_format:
            e = _with_instance(e, data, specs, signature_name)
        raise ServeError(400, str(e)) from e
    except RecursionError:
        raise ServeError(400, _nesting_error(data, specs, signature_name)) from None
    return {key: tensor.numpy() for key, tensor in tensors.items()}


def booleans_in(request):
    """Whether the request's JSON body holds a true/false token (see `bodies.read_json`)."""
    return request.scope.get(BOOLEANS_KEY, False)


def holds_boolean(value):
    """Whether a JSON value holds a boolean anywhere (iteratively: any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
    return False


def _per_instance(data, specs):
    """`(index, key, value)` of every instance's value of every input (rows or `{key: column}`)."""
    if isinstance(data, Mapping):
        for key, column in data.items():
            for index, value in enumerate(column if isinstance(column, list) else [column]):
                yield index, key, value
        return
    for index, row in enumerate(data if isinstance(data, list) else [data]):
        if isinstance(row, Mapping) and not (set(row) == {"b64"} and "b64" not in specs):
            for key, value in row.items():
                yield index, key, value
        elif len(specs) == 1:
            yield index, next(iter(specs)), row


def _refuse_booleans(data, specs, signature_name):
    for index, key, value in _per_instance(data, specs):
        spec = specs.get(key)
        if spec is not None and not spec.dtype.is_bool and holds_boolean(value):
            raise InstanceError(
                f"Instance {index}: input {key!r} of '{signature_name}' takes {spec.dtype.name} "
                "numbers, but holds a JSON boolean (true/false); send numbers (1, 0).",
                key=key, index=index)


def _nesting_error(data, specs, signature_name):
    """The message for instances nested deeper than Python can decode, naming the first one."""
    for index, key, value in _per_instance(data, specs):
        depth, stack = 0, [(value, 1)]
        while stack:
            item, level = stack.pop()
            if isinstance(item, (list, tuple)):
                depth = max(depth, level)
                stack.extend((v, level + 1) for v in item[:2])  # the depth shows on the first values
        spec = specs.get(key)
        rank = None if spec is None or spec.shape.rank is None else spec.shape.rank - 1
        if rank is None or depth > rank + 1:
            return (f"Instance {index}: input {key!r} of '{signature_name}' is nested {depth} lists "
                    f"deep; it takes {'a value' if rank is None else f'rank {rank}'} per instance.")
    return "The instances are nested too deeply to decode."


def b64_bytes(value):
    """The bytes of a `{"b64": "..."}` value (ValueError when it is not base64)."""
    return base64.b64decode(value["b64"], validate=True)


def _columns(data, specs, signature_name):
    """Columnar `inputs` as `{key: list}` (a bare value feeds a single input)."""
    if not isinstance(data, Mapping) or set(data) == {"b64"}:
        if len(specs) != 1:
            raise InstanceError(
                f"'inputs' is a bare value, but '{signature_name}' takes {len(specs)} inputs "
                f"{sorted(specs)}: give an object keyed by input name.")
        data = {next(iter(specs)): data}
    for key, value in data.items():
        if not isinstance(value, list):
            raise InstanceError(
                f"Input {key!r} in 'inputs' is {kind(value)}; each input of "
                f"'{signature_name}' takes a batch, a list with one entry per instance.",
                key=key)
    return data


def _with_instance(error, rows, specs, signature_name):
    """`error` naming the first instance that fails on its own.

    The decoder checks each input column as one array, so its shape, type
    and b64 errors name the key but not the instance; decoding the instances
    one by one (only on this error path) finds it.
    """
    if error.index is not None:
        return error
    for index, row in enumerate(rows):
        try:
            instances_to_tensors([row], specs, signature_name)
        except InstanceError as e:
            return InstanceError(f"Instance {index}: {e}", key=e.key, index=index)
    return error


def rows_of(arrays):
    """The batch size shared by all inputs, or None (scalars, or sizes differ)."""
    sizes = {a.shape[0] if a.ndim else None for a in arrays.values()}
    return sizes.pop() if len(sizes) == 1 else None


def encode(outputs, row_format):
    """The response body of numpy `outputs` in TF Serving's row or columnar format."""
    if not row_format:
        if len(outputs) == 1:
            ((key, value),) = outputs.items()
            return {"outputs": _json(value, key)}
        return {"outputs": {key: _json(value, key) for key, value in outputs.items()}}
    sizes = {key: (value.shape[0] if value.ndim else None) for key, value in outputs.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ServeError(400, f"The outputs have different batch sizes {sizes}, which the row "
                              "format cannot express; send 'inputs' (columnar format) instead.")
    columns = {key: _json(value, key) for key, value in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    keys = sorted(columns)
    count = next(iter(sizes.values()))
    return {"predictions": [{key: columns[key][i] for key in keys} for i in range(count)]}


def _json(array, key):
    """A numpy array as nested lists; bytes as text, or `{"b64"}` for `*_bytes` outputs."""
    if array.dtype.kind not in "OS":
        return array.tolist()
    if key.endswith("_bytes"):
        convert = lambda b: {"b64": base64.b64encode(b).decode("ascii")}  # noqa: E731
    else:
        convert = lambda b: b.decode("utf-8", errors="replace")  # noqa: E731
    return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()


def kind(value):
    """`a JSON list`, `a JSON object`, ... for messages."""
    return f"a JSON {type(value).__name__.replace('dict', 'object').replace('NoneType', 'null')}"
