"""Request errors: what the client did wrong (4xx) or what failed here (5xx).

Each protocol words a `ServeError` in its own error body (see
`xai_callback.serve.protocols`): TF Serving and KServe clients read
`{"error": "message"}`; Google's client reads Google's error JSON
`{"error": {"code", "message", "status"}}` with the gRPC status names below.
"""

# gRPC status names of the HTTP codes the server uses (Google's mapping).
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ServeError(Exception):
    """An error answered to the client as `status` with `message`.

    Example:

    ```python
    raise ServeError(404, "Model 'churn' is not served here.")
    ```

    Args:
        status: HTTP status code.
        message: what went wrong, for the client; never a traceback.
        headers: extra response headers (e.g. `WWW-Authenticate`).
        google_status: the status name in Google's error JSON. Defaults to
            None: the usual one for `status` (e.g. INVALID_ARGUMENT for 400).
    """

    def __init__(self, status, message, headers=None, google_status=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.google_status = google_status


def internal_error():
    """The 500 answered for a failure that is not the client's (the log has the details)."""
    return ServeError(500, "Internal server error; the server log has the details.")
