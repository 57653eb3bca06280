"""TF Serving's REST API under `/v1/models`: predict, model status, metadata.

- `POST /v1/models/{name}[/versions/{v}]:predict`: any signature by
  `signature_name`, row `instances` or columnar `inputs` (also KServe V1's
  `:predict`, whose body is the same);
- `GET /v1/models/{name}[/versions/{v}]`: the model status (`--status-format
  tf-serving`, the default; KServe's answer with `kserve`, see `kserve_v1`);
- `GET /v1/models/{name}[/versions/{v}]/metadata`: the SignatureDefs.

Paths are matched with TF Serving's own case-insensitive patterns (versions in
ASCII digits only); errors are `{"error": "..."}`. KServe V1 shares the mount
and the error body (`kserve_v1`).
"""

from xai_callback.serve import codec
from xai_callback.serve.errors import ServeError
from xai_callback.serve.routing import PatternRoute, json_endpoint

PREFIX = "/v1/models"
NAME = "tf_serving"
MODEL_PATH = r"(?i)^/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
PREDICT_KEYS = (codec.SIGNATURE_KEY, codec.ROW_KEY, codec.COLUMNAR_KEY)
SIGNATURE_DEF_MAP = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


def routes(service):
    """The routes inside the `/v1/models` mount."""
    return [
        PatternRoute(MODEL_PATH + r":predict$", json_endpoint(service, NAME, "predict", predict), ["POST"]),
        PatternRoute(MODEL_PATH + r":(?P<verb>classify|regress)$",
                     json_endpoint(service, NAME, "classify", _example_api), ["POST"]),
        PatternRoute(MODEL_PATH + r"/metadata$", json_endpoint(service, NAME, "metadata", metadata), ["GET"]),
        PatternRoute(MODEL_PATH + r"$", json_endpoint(service, NAME, "status", status), ["GET"]),
    ]


def error_body(error):
    """TF Serving's (and KServe V1's) error body."""
    return {"error": error.message}


def not_found(method, path):
    return (f"No such route: {method} {path}. Use /v1/models/NAME[/versions/N]:predict or :explain, "
            "GET /v1/models/NAME[/versions/N][/metadata], Vertex AI's /v1/projects/P/locations/L/"
            "endpoints/E:predict or :explain, or /v2/models/NAME/infer.")


async def predict(service, request, name, version=None, label=None):
    refuse_label(label)
    body = codec.request_object(await service.read_body(request), PREDICT_KEYS)
    model = service.repository.get(name, version)
    signature_name = codec.signature_of(model, body)
    data, row_format = codec.instances_of(body)
    arrays = codec.decode(data, row_format, model.inputs(signature_name), codec.booleans_in(request))
    outputs = await service.predict(model, signature_name, arrays)
    return codec.encode(outputs, row_format)


async def _example_api(service, request, name, verb, version=None, label=None):
    raise ServeError(400, f"':{verb}' (the tf.Example API) is not served; use ':predict'.")


async def status(service, request, name, version=None, label=None):
    refuse_label(label)
    service.repository.check_name(name)
    return {"model_version_status": service.repository.status(version)}


async def metadata(service, request, name, version=None, label=None):
    refuse_label(label)
    model = service.repository.get(name, version)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {"@type": SIGNATURE_DEF_MAP,
                                       "signature_def": model.signature_defs}},
    }


def refuse_label(label):
    if label:
        raise ServeError(404, f"Version labels are not served (got label {label!r}); use "
                              "/versions/N or no version for the newest.")
