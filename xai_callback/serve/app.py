"""The ASGI application: routes of every protocol over one model repository and runner."""

import contextlib
import functools
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from xai_callback.serve import tf_serving, vertex
from xai_callback.serve.bodies import check_bearer, json_response, read_json
from xai_callback.serve.errors import ServeError, google_error, tf_serving_error
from xai_callback.serve.explaining import explain_call, explain_error
from xai_callback.serve.options import HEALTH_ROUTE, READY_ROUTE
from xai_callback.serve.post_routes import PostRoutes
from xai_callback.serve.runner import ModelRunner, model_error

log = logging.getLogger("xai_callback.serve")


class Service:
    """What the routes share: the options, the model repository and the runner."""

    def __init__(self, options, repository, runner=None):
        self.options = options
        self.repository = repository
        self.runner = runner or ModelRunner(
            options.max_in_flight, batching=options.batching, max_batch_rows=options.max_batch_rows,
            inline_ms=options.inline_call_ms)

    async def read_body(self, request):
        return await read_json(request, self.options.max_body_bytes)

    async def explain(self, model, body):
        """The `{"explanations", "predictions"}` of an explain body, computed off the loop."""
        run = explain_call(model, body)
        try:
            return await self.runner.run(run)
        except Exception as e:  # noqa: BLE001 - sorted into the client's 400s and our 500s
            error = explain_error(e) or model_error(e)
            if error is e:
                raise
            raise error from e


def build_app(service):
    """The ASGI app serving `service`: Starlette, with POSTs sent straight to their routes (`PostRoutes`).

    Example:

    ```python
    repository = ModelRepository("exports/churn")
    app = build_app(Service(ServeOptions("exports/churn"), repository))
    uvicorn.run(app, host="127.0.0.1", port=8080)
    ```
    """
    options = service.options
    google_paths = tuple(f"/{api}/projects/" for api in vertex.API_VERSIONS)

    def error_response(request, error):
        """Google's error JSON on Vertex routes, TF Serving's elsewhere."""
        path = request.url.path
        google = path.startswith(google_paths) or path == options.predict_route
        return json_response((google_error if google else tf_serving_error)(error), error.status,
                             error.headers)

    def route(path, handler, methods, open_route=False):
        @functools.wraps(handler)
        async def endpoint(request):
            try:
                if not open_route:
                    check_bearer(request, options.bearer_token)
                result = await handler(service, request, **request.path_params)
            except ServeError as e:
                return error_response(request, e)
            except Exception:  # noqa: BLE001 - never a traceback to the client
                log.exception("%s %s failed", request.method, request.url.path)
                return error_response(request, ServeError(
                    500, "Internal server error; the server log has the details."))
            return json_response(result)

        return Route(path, endpoint, methods=methods)

    routes = [
        route(HEALTH_ROUTE, _alive, ["GET"], open_route=True),
        route(READY_ROUTE, _ready, ["GET"], open_route=True),
        route("/", _alive, ["GET"], open_route=True),
        route("/v1/models", _model_list, ["GET"]),
    ]
    for api in vertex.API_VERSIONS:
        base = f"/{api}{vertex.ENDPOINT}"
        routes.append(route(base + ":predict", _vertex_predict, ["POST"]))
        routes.append(route(base + ":explain", _vertex_explain, ["POST"]))
    if options.health_route:
        routes.insert(0, route(options.health_route, _ready, ["GET"], open_route=True))
    if options.predict_route:
        routes.insert(0, route(options.predict_route, _vertex_predict, ["POST"]))
    # Last: TF Serving's case-insensitive /v1/models/... patterns, and 404s.
    routes.append(route("/{rest:path}", _models, ["GET", "POST"]))

    async def http_error(request, exc):
        return error_response(request, ServeError(
            exc.status_code, f"{exc.detail}: {request.method} {request.url.path}"))

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                    lifespan=service_lifespan(service))
    return PostRoutes(app, [r for r in routes if "POST" in r.methods])


def service_lifespan(service):
    """Starts the repository (background load and polling); stops it and the runner at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.repository.start()
        try:
            yield
        finally:
            service.repository.stop()
            service.runner.close()

    return lifespan


async def _model_list(service, request):
    return tf_serving.model_list(service)


async def _alive(service, request):
    return {"status": "alive"}


async def _ready(service, request):
    repository = service.repository
    if not repository.ready:
        raise ServeError(503, f"Not ready: {repository.waiting_for()}.")
    return {"status": "ready", "model": repository.name, "version": repository.current.version}


async def _models(service, request, rest):
    return await tf_serving.models_route(service, request)


async def _vertex_predict(service, request, **_):
    return await vertex.predict(service, request)


async def _vertex_explain(service, request, **_):
    return await vertex.explain(service, request)
