"""POST requests straight to their route's endpoint, past Starlette's routing and middleware.

Predict and explain requests are the server's hot path; Starlette's router
(every route's pattern tried in turn), its two middlewares and the endpoint
wrapper cost Python time per request that the answer does not need (measured
in benchmarks/bench_serve.py). Every POST is answered by the first POST route
whose pattern matches its path (the last route, `/{rest:path}`, matches all),
so this front matches the same `Route` objects' own compiled patterns in the
same order and awaits the same endpoint: the answers, errors, body limit and
bearer token are the route's, not a second implementation. Anything else
(GET, lifespan, a `root_path`) goes to the Starlette app.
"""

from starlette.requests import Request


class PostRoutes:
    """An ASGI app answering POSTs with `routes`' endpoints and everything else with `app`.

    Example:

    ```python
    app = PostRoutes(Starlette(routes=routes), [r for r in routes if "POST" in r.methods])
    ```

    Args:
        app: the Starlette app, for every other request (and lifespan).
        routes: Starlette `Route`s taking POST, in the app's order; the
            first whose pattern matches the path answers, as in the app.
            Their endpoints must answer every request themselves (errors
            included), as `build_app`'s routes do.
    """

    def __init__(self, app, routes):
        self.app = app
        self.routes = [(r.path_regex, r.param_convertors, r.endpoint) for r in routes]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path = scope["path"]
            for pattern, convertors, endpoint in self.routes:
                match = pattern.match(path)
                if match:
                    params = {k: convertors[k].convert(v) for k, v in match.groupdict().items()}
                    request = Request({**scope, "app": self.app, "path_params": params}, receive, send)
                    response = await endpoint(request)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
