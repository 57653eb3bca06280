"""TF Serving's REST API and KServe's V1 protocol, which share `/v1/models/...`.

- `GET /v1/models/{name}[/versions/{v}]`: TF Serving's model status.
- `GET /v1/models/{name}[/versions/{v}]/metadata`: the SignatureDefs.
- `POST /v1/models/{name}[/versions/{v}]:predict`: any signature by
  `signature_name`, row `instances` or columnar `inputs` (also KServe V1's
  `:predict`, whose body is the same).
- `POST /v1/models/{name}[/versions/{v}]:explain`: KServe V1's explain,
  answering `{"predictions": [...], "explanations": [...]}`.
- `GET /v1/models`: KServe V1's model list.

Paths are matched with TF Serving's own (case-insensitive) patterns; errors
are `{"error": "..."}`.
"""

import re

from xai_callback.serve import codec
from xai_callback.serve.errors import ServeError

POST_PATH = re.compile(
    r"(?i)^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict|explain)$")
GET_PATH = re.compile(r"(?i)^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(/metadata)?$")
PREDICT_KEYS = (codec.SIGNATURE_KEY, codec.ROW_KEY, codec.COLUMNAR_KEY)
SIGNATURE_DEF_MAP = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


async def models_route(service, request):
    """Dispatches every `/v1/models/...` request by TF Serving's path patterns."""
    path = request.url.path
    if request.method == "POST":
        match = POST_PATH.match(path)
        if not match:
            raise ServeError(404, f"No such route: POST {path}. Use /v1/models/NAME[/versions/N]"
                                  ":predict or :explain, or Vertex AI's /v1/projects/P/locations/"
                                  "L/endpoints/E:predict or :explain.")
        name, version, label, verb = match.groups()
        _refuse_label(label)
        if verb.lower() == "predict":
            return await predict(service, request, name, version)
        if verb.lower() == "explain":
            return await explain(service, request, name, version)
        raise ServeError(400, f"':{verb}' (the tf.Example API) is not served; use ':predict'.")
    match = GET_PATH.match(path)
    if not match:
        raise ServeError(404, f"No such route: GET {path}. Use /v1/models/NAME[/versions/N]"
                              "[/metadata], /healthz or /readyz.")
    name, version, label, metadata = match.groups()
    _refuse_label(label)
    if metadata:
        return model_metadata(service, name, version)
    service.repository.check_name(name)
    return {"model_version_status": service.repository.status(version)}


def model_list(service):
    """KServe V1 `GET /v1/models`."""
    return {"models": [service.repository.name]}


async def predict(service, request, name, version):
    body = codec.request_object(await service.read_body(request), PREDICT_KEYS)
    model = service.repository.get(name, version)
    signature_name = codec.signature_of(model, body)
    data, row_format = codec.instances_of(body)
    arrays = codec.decode(data, row_format, model.inputs(signature_name))
    outputs = await service.runner.predict(model, signature_name, arrays)
    return codec.encode(outputs, row_format)


async def explain(service, request, name, version):
    body = await service.read_body(request)
    model = service.repository.get(name, version)
    return await service.explain(model, body)


def model_metadata(service, name, version):
    model = service.repository.get(name, version)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {"@type": SIGNATURE_DEF_MAP,
                                       "signature_def": model.signature_defs}},
    }


def _refuse_label(label):
    if label:
        raise ServeError(404, f"Version labels are not served (got label {label!r}); use "
                              "/versions/N or no version for the newest.")
