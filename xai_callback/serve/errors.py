"""Request errors and the two error bodies the server answers with.

TF Serving and KServe clients read `{"error": "message"}`; Google's client
reads Google's error JSON `{"error": {"code", "message", "status"}}` and turns
it into a `google.api_core.exceptions` error carrying the message.
"""

import http

# gRPC status names of the HTTP codes the server uses (Google's mapping).
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    503: "UNAVAILABLE",
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


def tf_serving_error(error):
    """TF Serving's (and KServe V1's) error body."""
    return {"error": error.message}


def google_error(error):
    """Google's error JSON, as Vertex AI answers."""
    status = error.google_status or GOOGLE_STATUS.get(error.status) or http.HTTPStatus(error.status).phrase.upper().replace(" ", "_")
    return {"error": {"code": error.status, "message": error.message, "status": status}}
