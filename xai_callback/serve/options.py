"""The settings of `xai-callback serve`, checked up front, and Vertex's `AIP_*` variables."""

import dataclasses
import os
import re

# Vertex AI's request size limit on shared public endpoints ("1.5 MB").
DEFAULT_MAX_BODY_BYTES = 1536 * 1024
# Model calls running at once (threads off the event loop); more wait.
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_MAX_BATCH_ROWS = 1024
# Signature calls measured faster than this run on the event loop (no thread
# hop); see `runner.CallTimes` and BENCHMARKS.md "Serving" for the measurement.
DEFAULT_INLINE_CALL_MS = 1.0
DEFAULT_POLL_SECONDS = 2.0
DEFAULT_GRACEFUL_SECONDS = 30.0
# A request (its model work) is answered 504 past this.
DEFAULT_REQUEST_TIMEOUT_SECONDS = 60.0
# Slow clients: request headers and body must arrive within these; idle
# keep-alive connections close after uvicorn's default.
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
DEFAULT_KEEP_ALIVE_SECONDS = 5.0
# Versions: a SavedModel not written by this package is loaded once it has
# stood unchanged this long; a failed load is retried (TF Serving's
# --max_num_load_retries is 5) after 1, 2, 4, ... seconds (at most 60).
DEFAULT_SETTLE_SECONDS = 10.0
DEFAULT_MAX_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_SECONDS = 1.0
STATUS_FORMATS = ("tf-serving", "kserve")
HEALTH_ROUTE = "/healthz"
READY_ROUTE = "/readyz"
TOKEN_ENV = "XAI_CALLBACK_BEARER_TOKEN"
_MODEL_NAME = re.compile(r"^[^/:\s]+$")


@dataclasses.dataclass
class ServeOptions:
    """What `serve` serves and how.

    Example:

    ```python
    options = ServeOptions("exports/churn", port=8081, bearer_token="s3cret")
    ```

    Args:
        path: one export, or a base directory of numbered versions (local
            path or gfile URL).
        host: interface to bind. Defaults to "127.0.0.1" (this machine only);
            "0.0.0.0" in a container.
        port: TCP port. Defaults to 8080.
        model_name: the `{name}` of `/v1/models/{name}`. Defaults to None: the
            base directory's name.
        bearer_token: when set, every route but health and readiness needs
            `Authorization: Bearer <token>`. Defaults to None (no auth).
        max_body_bytes: larger request bodies get 413. Defaults to 1.5 MiB.
        max_in_flight: model calls running at once. Defaults to 4.
        batching: merge concurrent predict requests into one model call.
            Defaults to True.
        max_batch_rows: rows of one merged call. Defaults to 1024.
        inline_call_ms: signature calls measured to take less than this
            many milliseconds run on the event loop instead of a worker
            thread; 0 runs every call in a thread. Defaults to 1.0.
        poll_seconds: how often a base directory is checked for a new
            version. Defaults to 2.0.
        graceful_seconds: on SIGTERM, how long in-flight requests may take
            to finish. Defaults to 30.0.
        health_route, predict_route: extra routes (Vertex's
            `AIP_HEALTH_ROUTE` / `AIP_PREDICT_ROUTE`). Defaults to None.
        access_log: log one line per request. Defaults to True.
        workers: server processes, each with its own copy of the model, on
            one port (see `xai_callback.serve.workers`). Defaults to 1.
        max_step_count, max_path_count, max_noisy_sample_count: the largest
            `stepCount`, `pathCount`, `noisySampleCount` a request may ask
            for. Defaults to Vertex AI's 100, 50, 50.
        max_explanation_steps: the largest instances x outputs x steps of
            one explain request. Defaults to 25600.
        request_timeout_seconds: requests still working after this many
            seconds are answered 504 (explanations stop). Defaults to 60.
        header_timeout_seconds, body_timeout_seconds: a request's headers
            (its body) must arrive within this many seconds, else the
            connection is closed (408). Defaults to 10 and 30.
        keep_alive_seconds: idle keep-alive connections close after this
            many seconds. Defaults to 5 (uvicorn's).
        status_format: what `GET /v1/models/NAME` answers: "tf-serving"
            (the model version status, the default) or "kserve" (KServe V1's
            `{"name", "ready"}`).
        metrics: Prometheus metrics at `/metrics`. Defaults to True.
        settle_seconds: a version not written by this package is loaded
            once its files stood unchanged this long. Defaults to 10.
        max_load_retries: a version that fails to load is retried this many
            times, after 1, 2, 4, ... seconds (at most 60). Defaults to 5.
    """

    path: str
    host: str = "127.0.0.1"
    port: int = 8080
    model_name: str = None
    bearer_token: str = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    batching: bool = True
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    inline_call_ms: float = DEFAULT_INLINE_CALL_MS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    graceful_seconds: float = DEFAULT_GRACEFUL_SECONDS
    health_route: str = None
    predict_route: str = None
    access_log: bool = True
    workers: int = 1
    max_step_count: int = 100
    max_path_count: int = 50
    max_noisy_sample_count: int = 50
    max_explanation_steps: int = 25600
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
    keep_alive_seconds: float = DEFAULT_KEEP_ALIVE_SECONDS
    status_format: str = "tf-serving"
    metrics: bool = True
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    max_load_retries: int = DEFAULT_MAX_LOAD_RETRIES
    load_retry_seconds: float = DEFAULT_LOAD_RETRY_SECONDS

    def __post_init__(self):
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"path must name an export or a base directory; received {self.path!r}.")
        _check_int("port", self.port, 0, 65535)
        _check_int("max_body_bytes", self.max_body_bytes, 1)
        _check_int("max_in_flight", self.max_in_flight, 1)
        _check_int("max_batch_rows", self.max_batch_rows, 1)
        _check_int("workers", self.workers, 1)
        for name in ("max_step_count", "max_path_count", "max_noisy_sample_count", "max_explanation_steps"):
            _check_int(name, getattr(self, name), 1)
        _check_int("max_load_retries", self.max_load_retries, 0)
        if self.status_format not in STATUS_FORMATS:
            raise ValueError(f"status_format must be one of {list(STATUS_FORMATS)}; received "
                             f"status_format={self.status_format!r}.")
        for name in ("access_log", "batching", "metrics"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; received {name}={getattr(self, name)!r}.")
        for name in ("poll_seconds", "graceful_seconds", "request_timeout_seconds", "header_timeout_seconds",
                     "body_timeout_seconds", "keep_alive_seconds", "load_retry_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number > 0; received {name}={value!r}.")
        for name in ("inline_call_ms", "settle_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0; received {name}={value!r}.")
        if self.model_name is not None and not _MODEL_NAME.match(str(self.model_name)):
            raise ValueError(
                f"model_name={self.model_name!r} cannot appear in /v1/models/{{name}}: "
                "use a name without '/', ':' or spaces."
            )
        if self.bearer_token is not None and (not isinstance(self.bearer_token, str)
                                              or not self.bearer_token.strip()):
            raise ValueError("bearer_token must be a non-empty string (or None for no auth).")
        for name in ("health_route", "predict_route"):
            route = getattr(self, name)
            if route is not None and not str(route).startswith("/"):
                raise ValueError(f"{name} must be a path starting with '/'; received {route!r}.")


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be an integer {bound}; received {name}={value!r}.")


def vertex_environment(environ=None):
    """Settings taken from Vertex AI's custom-container variables.

    `AIP_STORAGE_URI` (the model's copy) is the path, `AIP_HTTP_PORT` the
    port, and `AIP_HEALTH_ROUTE` / `AIP_PREDICT_ROUTE` extra routes; unset or
    empty variables give nothing.
    """
    environ = os.environ if environ is None else environ
    found = {}
    names = {"AIP_STORAGE_URI": "path", "AIP_HEALTH_ROUTE": "health_route",
             "AIP_PREDICT_ROUTE": "predict_route"}
    for variable, option in names.items():
        if environ.get(variable):
            found[option] = environ[variable]
    if environ.get("AIP_HTTP_PORT"):
        try:
            found["port"] = int(environ["AIP_HTTP_PORT"])
        except ValueError:
            raise ValueError(f"AIP_HTTP_PORT must be a port number; it is {environ['AIP_HTTP_PORT']!r}.")
    return found
