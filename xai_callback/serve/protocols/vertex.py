"""Vertex AI's prediction API: `:predict` and `:explain` on `/v1/projects/.../endpoints/...`.

Google's own client (`PredictionServiceClient(transport="rest", ...)`) works
against these by changing only its `api_endpoint`. The project, location and
endpoint in the path are not checked (one model is served); query parameters
the client adds (`$alt=json;enum-encoding=int`) are ignored. Errors are
Google's error JSON. The same predict body also answers Vertex's custom
container route (`AIP_PREDICT_ROUTE`), a route of this sub-application at its
full path.
"""

import http

from starlette.routing import Route

from xai_callback.serve import codec
from xai_callback.serve.errors import GOOGLE_STATUS, ServeError
from xai_callback.serve.routing import json_endpoint

NAME = "vertex"
API_VERSIONS = ("v1", "v1beta1")
PREFIXES = tuple(f"/{api}/projects" for api in API_VERSIONS)
ENDPOINT = "/{project}/locations/{location}/endpoints/{endpoint}"
PREDICT_KEYS = (codec.ROW_KEY, "parameters", "labels")


def routes(service):
    """The routes inside each `/{api}/projects` mount, and the custom predict route (full path)."""
    found = [
        Route(ENDPOINT + ":predict", json_endpoint(service, NAME, "predict", predict), methods=["POST"]),
        Route(ENDPOINT + ":explain", json_endpoint(service, NAME, "explain", explain), methods=["POST"]),
    ]
    if service.options.predict_route:
        found.append(Route(service.options.predict_route,
                           json_endpoint(service, NAME, "predict", predict), methods=["POST"]))
    return found


def error_body(error):
    """Google's error JSON, as Vertex AI answers."""
    status = error.google_status or GOOGLE_STATUS.get(error.status) or http.HTTPStatus(
        error.status).phrase.upper().replace(" ", "_")
    return {"error": {"code": error.status, "message": error.message, "status": status}}


async def predict(service, request, **_):
    """`{"instances", "parameters"}` -> `{"predictions", "deployedModelId", ...}`.

    `serving_default` takes only the instances, so `parameters` are ignored,
    except `"explain"`: `true`, or an object of explanation options (as the
    `parameters` of `:explain`), adds `explanations` to the answer. That is
    how a client reaches explanations through a Vertex endpoint that forwards
    only the predict route to the container (call it with `rawPredict` to
    get the whole answer back).
    """
    body = codec.request_object(await service.read_body(request), PREDICT_KEYS)
    model = service.repository.get(service.repository.name)
    explain = _explain_option(body.get("parameters"))
    if explain is not None:
        explain_body = {codec.ROW_KEY: codec.instances_of(body)[0], **explain}
        return {**await service.explain(model, explain_body, request), **_ids(model)}
    signature_name = codec.signature_of(model, {})
    data, _ = codec.instances_of(body)
    arrays = codec.decode(data, True, model.inputs(signature_name), codec.booleans_in(request))
    outputs = await service.predict(model, signature_name, arrays)
    return {**codec.encode(outputs, True), **_ids(model)}


async def explain(service, request, **_):
    """`ExplainRequest` -> `ExplainResponse` (`explanations`, `predictions`, `deployedModelId`)."""
    body = await service.read_body(request)
    model = service.repository.get(service.repository.name)
    return {**await service.explain(model, body, request), "deployedModelId": str(model.version)}


def _explain_option(parameters):
    """The `:explain` body fields asked for by `parameters.explain`, or None."""
    explain = parameters.get("explain") if isinstance(parameters, dict) else None
    if explain is None or explain is False:
        return None
    if explain is True:
        return {}
    if isinstance(explain, dict):
        return {"parameters": explain}
    raise ServeError(400, f"'parameters.explain' must be true, false or an object of explanation "
                          f"options; received {explain!r}.")


def _ids(model):
    """The served version as the deployed model and model version ids."""
    return {"deployedModelId": str(model.version), "modelVersionId": str(model.version)}
