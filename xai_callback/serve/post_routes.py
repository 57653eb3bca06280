"""POST requests straight to their route's endpoint, past Starlette's routing and middleware.

Predict and explain requests are the server's hot path; Starlette's router,
its middlewares (twice: the app's and the protocol's sub-application's) and
the endpoint wrapper cost Python time per request that the answer does not
need (measured in benchmarks/bench_serve.py). Starlette answers a request
with the first route whose `matches` is FULL; this front asks the app's own
routes, in the app's order, and, inside a protocol's mount, that protocol's
routes: when that is a POST endpoint, the protocol answers it
(`ProtocolApp.answer`: its bearer-token middleware's check, the endpoint,
its error answers), byte for byte as through Starlette
(tests/test_serve_post_routes.py). Anything else (GET, lifespan, a
`root_path`, a path no POST route takes) goes to the Starlette app.

Asking the routes costs more than the rest of a small predict's routing (a
regular expression and a scope dict per route, several routes deep), and a
path's answer to them never changes: the endpoint found for a path is kept
(`MAX_PATHS` of them; any path matches some patterns, so the memory is bounded
by dropping them all when full).
"""

from starlette.routing import Match

from xai_callback.serve.routing import ProtocolApp

MAX_PATHS = 1024


class PostRoutes:
    """An ASGI app answering POSTs with their protocol's endpoint and everything else with `app`.

    Example:

    ```python
    app = PostRoutes(Starlette(routes=[PrefixMount("/v2", v2_protocol), ...]))
    ```

    Args:
        app: the Starlette app; its routes that lead to a `ProtocolApp` (a
            mount, or a route whose endpoint is one) are answered here.
    """

    def __init__(self, app):
        self.app = app
        self.routes = [(route, route.app if isinstance(getattr(route, "app", None), ProtocolApp) else None)
                       for route in app.routes]
        self._found = {}  # path -> (protocol, endpoint, the scope keys the routes add)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            found = self._found.get(scope["path"]) or self._find(scope)
            if found is not None:
                protocol, endpoint, child = found
                scope = {**scope, **child, "path_params": dict(child["path_params"])}
                response = await protocol.answer(endpoint, scope, receive, send)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _find(self, scope):
        """`(protocol, endpoint, child scope)` of the route Starlette would answer this POST with,
        when that is a protocol's POST endpoint; None otherwise."""
        for route, protocol in self.routes:
            match, outer = route.matches(scope)
            if match is not Match.FULL:
                continue
            if protocol is None:
                return None
            inner_scope = {**scope, **outer}
            for inner in protocol.routes:
                match, child = inner.matches(inner_scope)
                if match is not Match.FULL:
                    continue
                endpoint = getattr(inner, "endpoint", None)
                if endpoint is None or "POST" not in (inner.methods or ()):
                    return None
                if len(self._found) >= MAX_PATHS:
                    self._found.clear()
                found = self._found[scope["path"]] = (protocol, endpoint, {**outer, **child})
                return found
            return None
        return None
