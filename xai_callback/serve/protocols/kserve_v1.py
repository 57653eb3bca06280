"""KServe's V1 protocol, sharing `/v1/models` with TF Serving's REST API.

- `POST /v1/models/{name}[/versions/{v}]:explain`: `{"instances", "parameters"?,
  "explanationSpecOverride"?}` -> `{"predictions", "explanations"}`;
- `GET /v1/models`: `{"models": [name]}`;
- `GET /v1/models/{name}`: `{"name", "ready"}`, KServe's model-ready answer, with
  `--status-format kserve` (TF Serving answers the same path with its model
  status, the default; the two protocols disagree on this one route).

`:predict` is TF Serving's route (the bodies are the same). Errors are
`{"error": "..."}`, as TF Serving's.
"""

from xai_callback.serve.errors import ServeError
from xai_callback.serve.protocols.tf_serving import MODEL_PATH, refuse_label
from xai_callback.serve.routing import PatternRoute, json_endpoint

NAME = "kserve_v1"
STATUS_FORMATS = ("tf-serving", "kserve")


def routes(service):
    """The routes inside the `/v1/models` mount; placed before TF Serving's."""
    found = [
        PatternRoute(MODEL_PATH + r":explain$", json_endpoint(service, NAME, "explain", explain), ["POST"]),
        PatternRoute(r"^/?$", json_endpoint(service, NAME, "list", model_list), ["GET"]),
    ]
    if service.options.status_format == "kserve":
        found.append(PatternRoute(r"(?i)^/(?P<name>[^/:]+)$",
                                  json_endpoint(service, NAME, "ready", model_ready), ["GET"]))
    return found


async def explain(service, request, name, version=None, label=None):
    refuse_label(label)
    body = await service.read_body(request)
    model = service.repository.get(name, version)
    return await service.explain(model, body, request)


async def model_list(service, request):
    return {"models": [service.repository.name]}


async def model_ready(service, request, name):
    """`{"name", "ready": true}`; 503 with the reason while no version is loaded."""
    service.repository.check_name(name)
    problem = service.not_ready()
    if problem:
        raise ServeError(503, f"Model with name {name} is not ready: {problem}.")
    return {"name": name, "ready": True}
