"""The ASGI application: one mounted sub-application per protocol over one model repository.

```
/healthz /readyz / $AIP_HEALTH_ROUTE /v2/health/*   health (open)
$AIP_PREDICT_ROUTE, /v1/projects, /v1beta1/projects  vertex      (Google's error JSON)
/v1/models                                           kserve_v1 + tf_serving ({"error": ...})
/v2                                                  v2          (Open Inference Protocol)
/metrics                                             metrics     (Prometheus)
```

Each protocol (`xai_callback.serve.protocols`) answers its own errors and
checks the bearer token as middleware; `PostRoutes` sends POSTs straight to
their endpoint through the same token check and error answers.
"""

import asyncio
import contextlib
import logging
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route

from xai_callback.serve.bodies import json_response, read_json
from xai_callback.serve.codec import booleans_in
from xai_callback.serve.errors import ServeError
from xai_callback.serve.explaining import explain_call, explain_error
from xai_callback.serve.limits import ExplanationLimits
from xai_callback.serve.metrics import Metrics, NoMetrics
from xai_callback.serve.post_routes import PostRoutes
from xai_callback.serve.protocols import health, kserve_v1, metrics, tf_serving, v2, vertex
from xai_callback.serve.routing import PrefixMount, ProtocolApp
from xai_callback.serve.runner import ModelRunner

log = logging.getLogger("xai_callback.serve")
_TIMEOUT = getattr(asyncio, "timeout", None)  # Python >= 3.11


class DeadlineExceeded(Exception):
    """An explanation ran past the request's deadline (stopped between model calls)."""


class Service:
    """What the routes share: the options, the model repository, the runner, metrics, limits.

    Args:
        options: `ServeOptions`.
        repository: `ModelRepository`.
        runner: `ModelRunner`. Defaults to one made from `options`.
        board: `board.WorkerBoard` of the workers (`--workers N`), or None.
    """

    def __init__(self, options, repository, runner=None, board=None):
        self.options = options
        self.repository = repository
        self.board = board
        self.runner = runner or ModelRunner(
            options.max_in_flight, batching=options.batching, max_batch_rows=options.max_batch_rows,
            inline_ms=options.inline_call_ms)
        self.metrics = Metrics(repository.name, self._version) if options.metrics else NoMetrics()
        self.limits = ExplanationLimits(options.max_step_count, options.max_path_count,
                                        options.max_noisy_sample_count, options.max_explanation_steps)

    def _version(self):
        current = self.repository.current
        return current.version if current is not None else ""

    async def read_body(self, request):
        return await read_json(request, self.options.max_body_bytes, self.options.body_timeout_seconds)

    def not_ready(self):
        """Why the service is not ready (no version loaded, a worker without one), or None."""
        if not self.repository.ready:
            return self.repository.waiting_for()
        return self.board.not_ready() if self.board is not None else None

    def workers_status(self):
        return {} if self.board is None else {"workers": self.board.states()}

    async def predict(self, model, signature_name, arrays):
        """The outputs of one (batched) signature call, within the request's deadline."""
        start = time.perf_counter()
        try:
            if _TIMEOUT is None:
                outputs = await asyncio.wait_for(
                    self.runner.predict(model, signature_name, arrays), self.options.request_timeout_seconds)
            else:
                async with _TIMEOUT(self.options.request_timeout_seconds):
                    outputs = await self.runner.predict(model, signature_name, arrays)
        except (TimeoutError, asyncio.TimeoutError):
            raise self._deadline_error() from None
        self.metrics.model_call(time.perf_counter() - start)
        return outputs

    async def explain(self, model, body, request=None):
        """The `{"explanations", "predictions"}` of an explain body, computed off the loop.

        Work stops between model calls once the deadline passes, and the
        client gets 504 at the deadline.
        """
        run, method = explain_call(model, body, self.limits, booleans_in(request) if request else False)
        seconds = self.options.request_timeout_seconds
        deadline = time.monotonic() + seconds

        def stop_past_deadline(done, total):
            if time.monotonic() > deadline:
                raise DeadlineExceeded(f"stopped after {done} of {total} rows")

        start = time.perf_counter()
        try:
            result = await asyncio.wait_for(self.runner.run(run, stop_past_deadline), seconds)
        except (TimeoutError, asyncio.TimeoutError, DeadlineExceeded):
            raise self._deadline_error() from None
        except Exception as e:  # noqa: BLE001 - sorted into the client's 4xx and our 500s
            error = explain_error(e)
            if error.status >= 500:
                log.error("an explanation failed", exc_info=e)
            raise error from e
        self.metrics.explanation(method, time.perf_counter() - start)
        return result

    def _deadline_error(self):
        seconds = self.options.request_timeout_seconds
        return ServeError(504, f"The request took longer than this server's deadline of {seconds:g} s "
                               "(--request-timeout-seconds); send fewer instances or fewer steps.")


def build_app(service):
    """The ASGI app serving `service`: Starlette, a Mount per protocol, POSTs sent straight to their routes.

    Example:

    ```python
    repository = ModelRepository("exports/churn")
    app = build_app(Service(ServeOptions("exports/churn"), repository))
    uvicorn.run(app, host="127.0.0.1", port=8080)
    ```
    """
    options, token = service.options, service.options.bearer_token
    v1_models = ProtocolApp("v1_models", kserve_v1.routes(service) + tf_serving.routes(service),
                            tf_serving.error_body, token=token, not_found=tf_serving.not_found)
    google = ProtocolApp(vertex.NAME, vertex.routes(service), vertex.error_body, token=token)
    routes = health.routes(service)
    if options.predict_route:
        routes.insert(0, Route(options.predict_route, google, methods=["POST"]))
    routes.append(PrefixMount(tf_serving.PREFIX, v1_models))
    routes += [Mount(prefix, app=google) for prefix in vertex.PREFIXES]
    routes.append(PrefixMount(v2.PREFIX, v2.protocol(service)))
    if service.metrics.enabled:
        routes.append(PrefixMount(metrics.PREFIX, metrics.protocol(service)))

    async def root_error(request, error):
        if isinstance(error, HTTPException):
            error = ServeError(error.status_code, f"{error.detail}: {request.method} {request.url.path}",
                               headers=error.headers)
        return json_response(tf_serving.error_body(error), error.status, error.headers)

    app = Starlette(routes=routes, exception_handlers={HTTPException: root_error, ServeError: root_error},
                    lifespan=service_lifespan(service))
    return PostRoutes(app)


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
