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
"""

from starlette.routing import Match

from xai_callback.serve.routing import ProtocolApp


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

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            for route, protocol in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    if protocol is not None and await self._answer(protocol, {**scope, **child}, receive, send):
                        return
                    break
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(protocol, scope, receive, send):
        """Answers with the protocol's first FULL route when it is a POST endpoint; False otherwise."""
        for route in protocol.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                endpoint = getattr(route, "endpoint", None)
                if endpoint is None or "POST" not in (route.methods or ()):
                    return False
                scope = {**scope, **child}
                response = await protocol.answer(endpoint, scope, receive, send)
                await response(scope, receive, send)
                return True
        return False
