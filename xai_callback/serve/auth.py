"""Bearer-token authentication as ASGI middleware, as Starlette's `AuthenticationMiddleware` is shaped.

Each protocol's sub-application installs it with its own `on_error`, so a
refused request is answered in that protocol's error body (Google's error
JSON on Vertex routes, `{"error": ...}` elsewhere). The token is compared in
constant time (`hmac.compare_digest`).
"""

import hmac

from xai_callback.serve.errors import ServeError

_AUTHORIZATION = b"authorization"


def unauthorized():
    """The 401 `ServeError` of a missing or wrong token."""
    return ServeError(401, "This server needs 'Authorization: Bearer <token>' with the token "
                           "it was started with.", headers={"WWW-Authenticate": "Bearer"})


class BearerAuth:
    """Lets a request through only with `Authorization: Bearer <token>`.

    Example:

    ```python
    Starlette(routes=routes, middleware=[Middleware(BearerAuth, token="s3cret", on_error=answer)])
    ```

    Args:
        app: the ASGI app behind it.
        token: the expected token; None lets every request through.
        on_error: `on_error(scope, ServeError) -> Response`, the protocol's
            answer to a refused request.
    """

    def __init__(self, app, token, on_error):
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise ValueError(f"token must be a non-empty string or None; received {token!r}.")
        self.app = app
        self.token = None if token is None else token.encode()
        self.on_error = on_error

    def allows(self, scope):
        """Whether the request of `scope` carries the token (always, without one)."""
        if self.token is None:
            return True
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self.allows(scope):
            await self.on_error(scope, unauthorized())(scope, receive, send)
            return
        await self.app(scope, receive, send)
