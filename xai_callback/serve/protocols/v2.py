"""The Open Inference Protocol (KServe V2, Triton, Seldon MLServer), REST, under `/v2`.

- `GET /v2`: server metadata `{"name", "version", "extensions"}`;
- `GET /v2/models/{name}[/versions/{v}]`: model metadata `{"name", "versions",
  "platform", "inputs", "outputs"}` (tensors of `serving_default` by name,
  datatype and shape, -1 for a free dimension);
- `GET /v2/models/{name}[/versions/{v}]/ready`: `{"name", "ready": true}`, 400 until ready;
- `POST /v2/models/{name}[/versions/{v}]/infer`: `{"id"?, "parameters"?, "inputs":
  [{"name", "shape", "datatype", "data"}], "outputs"?: [{"name"}]}` ->
  `{"model_name", "model_version", "id", "outputs": [{"name", "shape",
  "datatype", "data"}]}`, `data` flattened in row-major order (a nested list
  of the same shape is read too). `parameters.signature_name` picks another
  signature. Requests go through the same batching, body limit and deadline
  as TF Serving's predict.

`/v2/health/live` and `/v2/health/ready` are the health routes' (open, no token).
Errors are `{"error": "..."}`.
"""

from collections.abc import Mapping

import numpy as np

from xai_callback._version import __version__
from xai_callback.serve import codec
from xai_callback.serve.errors import ServeError
from xai_callback.serve.protocols.tf_serving import error_body
from xai_callback.serve.routing import PatternRoute, ProtocolApp, json_endpoint

NAME = "v2"
PREFIX = "/v2"
MODEL_PATH = r"^/models/(?P<name>[^/]+)(?:/versions/(?P<version>[0-9]+))?"
INFER_KEYS = ("id", "parameters", "inputs", "outputs")
TENSOR_KEYS = ("name", "shape", "datatype", "data", "parameters")
DATATYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
             "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
             "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
             "BYTES": np.object_}


def protocol(service):
    def endpoint(api, handler):
        return json_endpoint(service, NAME, api, handler)

    routes = [
        PatternRoute(r"^/?$", endpoint("server_metadata", server_metadata), ["GET"]),
        PatternRoute(MODEL_PATH + r"/infer$", endpoint("infer", infer), ["POST"]),
        PatternRoute(MODEL_PATH + r"/ready$", endpoint("ready", model_ready), ["GET"]),
        PatternRoute(MODEL_PATH + r"/?$", endpoint("metadata", model_metadata), ["GET"]),
    ]
    return ProtocolApp(NAME, routes, error_body, token=service.options.bearer_token,
                       not_found=lambda method, path: (
                           f"No such route: {method} {path}. The V2 routes are /v2, /v2/health/live, "
                           "/v2/health/ready, /v2/models/NAME[/versions/N][/ready] and POST "
                           "/v2/models/NAME[/versions/N]/infer."))


async def server_metadata(service, request):
    return {"name": "xai-callback", "version": __version__, "extensions": []}


async def model_metadata(service, request, name, version=None):
    model = service.repository.get(name, version)
    signature = model.signatures[codec.signature_of(model, {})]
    inputs = model.inputs(codec.signature_of(model, {})).specs
    outputs = signature.structured_outputs
    return {"name": name, "versions": [str(model.version)], "platform": "tensorflow_savedmodel",
            "inputs": [_tensor_metadata(key, spec) for key, spec in sorted(inputs.items())],
            "outputs": [_tensor_metadata(key, spec) for key, spec in sorted(outputs.items())]}


async def model_ready(service, request, name, version=None):
    service.repository.check_name(name)
    problem = service.not_ready()
    if problem:
        raise ServeError(400, f"Model {name!r} is not ready: {problem}.")
    service.repository.get(name, version)
    return {"name": name, "ready": True}


async def infer(service, request, name, version=None):
    body = codec.request_object(await service.read_body(request), INFER_KEYS)
    model = service.repository.get(name, version)
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise ServeError(400, f"'parameters' must be a JSON object; received {codec.kind(parameters)}.")
    signature_name = codec.signature_of(model, parameters)
    specs = model.inputs(signature_name).specs
    arrays = decode_inputs(body.get("inputs"), specs, signature_name, codec.booleans_in(request))
    wanted = _requested_outputs(body.get("outputs"))
    outputs = await service.predict(model, signature_name, arrays)
    unknown = sorted(set(wanted or ()) - set(outputs))
    if unknown:
        raise ServeError(400, f"Output {unknown[0]!r} asked for in 'outputs' is not an output of "
                              f"'{signature_name}'; it has {sorted(outputs)}.")
    answer = {"model_name": name, "model_version": str(model.version),
              "outputs": [encode_tensor(key, outputs[key]) for key in sorted(wanted or outputs)]}
    if "id" in body:
        answer["id"] = body["id"]
    return answer


def decode_inputs(tensors, specs, signature_name, booleans=False):
    """`{key: np.ndarray}` of the V2 request tensors, checked against the signature's `specs`.

    Raises:
        ServeError: 400 naming the tensor (and key) that does not fit.
    """
    if not isinstance(tensors, list) or not tensors:
        raise ServeError(400, "'inputs' must be a non-empty list of tensors {\"name\", \"shape\", "
                              f"\"datatype\", \"data\"}}; received {codec.kind(tensors)}.")
    arrays = {}
    for index, tensor in enumerate(tensors):
        where = f"inputs[{index}]"
        codec.request_object(tensor, TENSOR_KEYS, f"'{where}'")
        key = tensor.get("name")
        if key not in specs:
            raise ServeError(400, f"{where} names input {key!r}, which '{signature_name}' does not "
                                  f"take; it takes {sorted(specs)}.")
        if key in arrays:
            raise ServeError(400, f"{where}: input {key!r} is given twice.")
        missing = [k for k in ("shape", "datatype", "data") if k not in tensor]
        if missing:
            raise ServeError(400, f"{where} (input {key!r}) has no {missing[0]!r}.")
        arrays[key] = _tensor_array(tensor, specs[key], f"{where} (input {key!r})", booleans)
    missing = sorted(set(specs) - set(arrays))
    if missing:
        raise ServeError(400, f"Input {missing[0]!r} of '{signature_name}' is missing from 'inputs'.")
    return arrays


def _tensor_array(tensor, spec, where, booleans):
    shape, datatype, data = tensor["shape"], tensor["datatype"], tensor["data"]
    if not isinstance(shape, list) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0
                                          for d in shape):
        raise ServeError(400, f"{where}: 'shape' must be a list of integers >= 0; received {shape!r}.")
    expected = _datatype(spec.dtype)
    if datatype != expected:
        raise ServeError(400, f"{where}: datatype {datatype!r} does not fit the input, which takes "
                              f"{expected} ({spec.dtype.name}).")
    if not isinstance(data, list):
        raise ServeError(400, f"{where}: 'data' must be a list; received {codec.kind(data)}.")
    if booleans and datatype != "BOOL" and codec.holds_boolean(data):
        raise ServeError(400, f"{where}: 'data' holds a JSON boolean, which is not a {datatype} number.")
    try:
        if datatype == "BYTES":
            array = np.array([_bytes(v) for v in np.ravel(np.array(data, dtype=object))], dtype=object)
        else:
            array = np.asarray(data)
            if array.dtype.kind not in "biuf" or (datatype != "BOOL" and array.dtype.kind == "b"):
                raise ValueError("not numbers")
            if datatype != "BOOL" and array.dtype.kind == "f" and np.dtype(DATATYPES[datatype]).kind in "iu" \
                    and not np.all(np.mod(array, 1) == 0):
                raise ValueError("not integers")
            array = array.astype(DATATYPES[datatype])
    except (ValueError, TypeError, RecursionError):
        raise ServeError(400, f"{where}: 'data' is not a list of {datatype} values.") from None
    count = int(np.prod(shape))
    if array.size != count:
        raise ServeError(400, f"{where}: 'data' holds {array.size} values, but shape {shape} takes {count}.")
    array = array.reshape(shape)
    dims = None if spec.shape.rank is None else spec.shape.as_list()
    if dims is not None and (len(dims) != len(shape) or any(
            d is not None and d != n for d, n in zip(dims, shape))):
        wanted = [-1 if d is None else d for d in dims]
        raise ServeError(400, f"{where}: shape {shape} does not fit the input's shape {wanted}.")
    return array


def _bytes(value):
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, Mapping) and set(value) == {"b64"}:
        return codec.b64_bytes(value)
    raise ValueError("not text")


def _requested_outputs(outputs):
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, Mapping) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise ServeError(400, "'outputs' must be a list of {\"name\": OUTPUT}; received "
                              f"{codec.kind(outputs)}.")
    return [o["name"] for o in outputs]


def encode_tensor(key, array):
    """One output tensor of the answer, `data` flattened row-major."""
    datatype = _datatype(array.dtype)
    flat = np.ravel(array)
    if datatype == "BYTES":
        data = [b.decode("utf-8", errors="replace") if isinstance(b, bytes) else str(b) for b in flat]
    else:
        data = flat.tolist()
    return {"name": key, "datatype": datatype, "shape": list(array.shape), "data": data}


def _datatype(dtype):
    """The V2 datatype of a TensorFlow or numpy dtype."""
    name = getattr(dtype, "name", str(dtype))
    if name in ("string", "object") or np.dtype(getattr(dtype, "as_numpy_dtype", dtype)).kind in "OSU":
        return "BYTES"
    numpy_dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    for datatype, candidate in DATATYPES.items():
        if candidate is not np.object_ and np.dtype(candidate) == numpy_dtype:
            return datatype
    raise ServeError(500, f"The model's dtype {name} has no Open Inference Protocol datatype.")


def _tensor_metadata(key, spec):
    dims = [] if spec.shape.rank is None else [-1 if d is None else d for d in spec.shape.as_list()]
    return {"name": key, "datatype": _datatype(spec.dtype), "shape": dims}
