"""What each protocol's sub-application is made of: JSON endpoints, pattern routes, the mount.

A protocol (`xai_callback.serve.protocols`) is a `ProtocolApp`: its routes, its
error body and whether its routes need the bearer token, built into a
Starlette application of its own (its exception handlers, `BearerAuth` as
middleware) that `app.build_app` mounts. Its endpoints are `json_endpoint`s:
a handler returns a dict (the answer) or raises `ServeError`; anything else it
raises is logged and answered as a 500, never a traceback.
"""

import logging
import re
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, get_route_path, request_response

from xai_callback.serve.auth import BearerAuth, unauthorized
from xai_callback.serve.bodies import json_response
from xai_callback.serve.errors import ServeError, internal_error

log = logging.getLogger("xai_callback.serve")


def json_endpoint(service, protocol, api, handler):
    """A Starlette endpoint answering `await handler(service, request, **path_params)` as JSON.

    Counts the request in `service.metrics` under `protocol` and `api`.
    """

    async def endpoint(request):
        start = time.perf_counter()
        status = 500
        try:
            result = await handler(service, request, **request.path_params)
            status = 200
        except ServeError as e:
            status = e.status
            raise
        except Exception as e:  # noqa: BLE001 - never a traceback to the client
            log.exception("%s %s failed", request.method, request.url.path)
            raise internal_error() from e
        finally:
            service.metrics.request(protocol, api, status, time.perf_counter() - start)
        return json_response(result)

    endpoint.__name__ = handler.__name__
    return endpoint


class PatternRoute(BaseRoute):
    """A route matched by a regular expression of its own (TF Serving's case-insensitive paths).

    Example:

    ```python
    PatternRoute(r"(?i)^/(?P<name>[^/:]+):predict$", endpoint, ["POST"])
    ```
    """

    def __init__(self, pattern, endpoint, methods):
        self.path_regex = re.compile(pattern)
        self.endpoint = endpoint
        self.methods = set(methods)
        self.app = request_response(endpoint)

    def matches(self, scope):
        if scope["type"] != "http":
            return Match.NONE, {}
        match = self.path_regex.match(get_route_path(scope))
        if not match:
            return Match.NONE, {}
        params = {k: v for k, v in match.groupdict().items() if v is not None}
        child = {"endpoint": self.endpoint, "path_params": {**scope.get("path_params", {}), **params}}
        return (Match.FULL if scope["method"] in self.methods else Match.PARTIAL), child

    async def handle(self, scope, receive, send):
        if scope["method"] not in self.methods:
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(self.methods))})
        await self.app(scope, receive, send)

    def url_path_for(self, name, /, **path_params):
        raise NoMatchFound(name, path_params)


class PrefixMount(Mount):
    """A `Mount` matching its prefix without regard to case, and the bare prefix too.

    TF Serving matches `/v1/models/...` case-insensitively, and KServe answers
    `GET /v1/models` itself (Starlette's `Mount` needs `/v1/models/`).
    """

    def __init__(self, path, app):
        super().__init__(path, app=app)
        self.path_regex = re.compile(f"(?i)^{re.escape(self.path)}(?P<rest>/.*)?$")

    def matches(self, scope):
        if scope["type"] != "http":
            return Match.NONE, {}
        route_path = get_route_path(scope)
        match = self.path_regex.match(route_path)
        if not match:
            return Match.NONE, {}
        rest = match.group("rest") or ""
        root_path = scope.get("root_path", "")
        return Match.FULL, {
            "path_params": dict(scope.get("path_params", {})),
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + route_path[:len(route_path) - len(rest)],
            "endpoint": self.app,
        }


class ProtocolApp:
    """One protocol's sub-application: routes, error body, bearer authentication.

    Example:

    ```python
    v2 = ProtocolApp("v2", routes, v2_error_body, token=options.bearer_token)
    Mount("/v2", app=v2)
    ```

    Args:
        name: the protocol's name (metrics, logs).
        routes: its Starlette routes (paths relative to the mount).
        error_body: `error_body(ServeError) -> dict`, its error JSON.
        token: the bearer token its routes need; None: open routes.
        not_found: `not_found(method, path) -> message` of a 404 inside the
            mount. Defaults to None: Starlette's "Not Found".
    """

    def __init__(self, name, routes, error_body, token=None, not_found=None):
        self.name = name
        self.routes = list(routes)
        self.error_body = error_body
        self.not_found = not_found
        self.auth = BearerAuth(None, token, self.error_response) if token is not None else None
        middleware = [Middleware(BearerAuth, token=token, on_error=self.error_response)] if token else []
        handlers = {ServeError: self._on_serve_error, HTTPException: self._on_http_error}
        self.app = Starlette(routes=self.routes, middleware=middleware, exception_handlers=handlers)

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)

    def error_response(self, scope, error):
        """The response to `error` (a `ServeError` or Starlette `HTTPException`) in this protocol's body."""
        if isinstance(error, HTTPException):
            error = self.http_error(scope, error)
        return json_response(self.error_body(error), error.status, error.headers)

    def http_error(self, scope, error):
        """Starlette's 404/405 as a `ServeError` naming the method and path."""
        method, path = scope["method"], scope["path"]
        if error.status_code == 404 and self.not_found is not None:
            return ServeError(404, self.not_found(method, path))
        return ServeError(error.status_code, f"{error.detail}: {method} {path}", headers=error.headers)

    async def _on_serve_error(self, request, error):
        return self.error_response(request.scope, error)

    async def _on_http_error(self, request, error):
        return self.error_response(request.scope, error)

    async def answer(self, endpoint, scope, receive, send):
        """`endpoint`'s answer to the request, past Starlette's middleware and router (`PostRoutes`):
        the same authentication and error answers as through the sub-application."""
        if self.auth is not None and not self.auth.allows(scope):
            return self.error_response(scope, unauthorized())
        try:
            return await endpoint(Request(scope, receive, send))
        except (ServeError, HTTPException) as e:
            return self.error_response(scope, e)
