"""`xai-callback serve PATH`: predictions and explanations over HTTP (TF Serving, KServe, Vertex AI).

Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 1 when the model
cannot be loaded, 2 on usage errors (bad options, no such path, the `[serve]`
extra missing), 3 when the address cannot be bound (the port is in use).
"""

import logging
import os
import sys

EXIT_OK, EXIT_LOAD_FAILED, EXIT_USAGE, EXIT_CANNOT_BIND = 0, 1, 2, 3
# Limits and timeouts: (option, ServeOptions field, type, help); defaults are ServeOptions'.
_TUNING = [
    ("--max-step-count", "max_step_count", int, "largest stepCount a request may ask for"),
    ("--max-path-count", "max_path_count", int, "largest pathCount a request may ask for"),
    ("--max-noisy-sample-count", "max_noisy_sample_count", int,
     "largest noisySampleCount a request may ask for"),
    ("--max-explanation-steps", "max_explanation_steps", int,
     "budget of one explain request: instances x outputs x steps"),
    ("--request-timeout-seconds", "request_timeout_seconds", float,
     "requests still working after this get 504 (explanations stop)"),
    ("--header-timeout-seconds", "header_timeout_seconds", float,
     "a request's headers must arrive within this, else the connection closes (408)"),
    ("--body-timeout-seconds", "body_timeout_seconds", float,
     "a request's body must arrive within this, else 408"),
    ("--keep-alive-seconds", "keep_alive_seconds", float, "idle keep-alive connections close after this"),
    ("--settle-seconds", "settle_seconds", float,
     "a version not written by xai-callback is loaded once its files stood unchanged this long"),
    ("--max-load-retries", "max_load_retries", int,
     "a version that fails to load is retried this many times (after 1, 2, 4, ... s)"),
]


def register(subparsers):
    from xai_callback.serve.options import (
        DEFAULT_GRACEFUL_SECONDS,
        DEFAULT_INLINE_CALL_MS,
        DEFAULT_MAX_BATCH_ROWS,
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_IN_FLIGHT,
        DEFAULT_POLL_SECONDS,
        STATUS_FORMATS,
        TOKEN_ENV,
        ServeOptions,
    )

    defaults = ServeOptions(".")

    parser = subparsers.add_parser(
        "serve",
        help="serve an export (or the newest version of a base directory) over HTTP: "
             "TF Serving REST, KServe V1/V2 and Vertex AI predict/explain",
        description="Serves PATH, one export or a base directory of numbered versions "
                    "(the newest complete one, switching when a newer one is published). "
                    "Routes: /v1/models/NAME[/versions/N][:predict|:explain|/metadata] "
                    "(TF Serving, KServe V1), /v1/projects/P/locations/L/endpoints/E:predict "
                    "and :explain (Vertex AI), /v2/models/NAME/infer (Open Inference Protocol), "
                    "/metrics (Prometheus), /healthz, /readyz. Vertex custom containers: "
                    "AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE and AIP_STORAGE_URI are "
                    "read. Needs the [serve] extra. Loading a SavedModel runs its graph: serve "
                    "only models you trust.",
    )
    parser.add_argument("path", nargs="?", metavar="PATH",
                        help="export or base directory, local or gs://... "
                             "(default: $AIP_STORAGE_URI)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only; "
                             "0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=None,
                        help="TCP port (default: $AIP_HTTP_PORT, else 8080)")
    parser.add_argument("--model-name", help="NAME in /v1/models/NAME (default: the base directory's name)")
    parser.add_argument("--bearer-token-file", metavar="FILE",
                        help=f"require 'Authorization: Bearer TOKEN' with the token in FILE "
                             f"(or in ${TOKEN_ENV}); health routes stay open")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help=f"larger request bodies get 413 (default {DEFAULT_MAX_BODY_BYTES}, "
                             "Vertex AI's 1.5 MB)")
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT,
                        help=f"model calls running at once (default {DEFAULT_MAX_IN_FLIGHT})")
    parser.add_argument("--no-batching", dest="batching", action="store_false",
                        help="call the model once per predict request instead of merging "
                             "concurrent ones")
    parser.add_argument("--max-batch-rows", type=int, default=DEFAULT_MAX_BATCH_ROWS,
                        help=f"rows of one merged predict call (default {DEFAULT_MAX_BATCH_ROWS})")
    parser.add_argument("--inline-call-ms", type=float, default=DEFAULT_INLINE_CALL_MS,
                        help="signature calls measured faster than this run on the event loop, "
                             "slower ones in worker threads; 0: always threads "
                             f"(default {DEFAULT_INLINE_CALL_MS})")
    parser.add_argument("--poll-seconds", type=float, default=DEFAULT_POLL_SECONDS,
                        help=f"how often a base directory is checked for a new version "
                             f"(default {DEFAULT_POLL_SECONDS})")
    parser.add_argument("--graceful-seconds", type=float, default=DEFAULT_GRACEFUL_SECONDS,
                        help="on SIGTERM, how long in-flight requests may take to finish "
                             f"(default {DEFAULT_GRACEFUL_SECONDS})")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes on the port, each loading the model "
                             "(default 1; about one per core for small, fast models)")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="do not log one line per request")
    parser.add_argument("--status-format", choices=STATUS_FORMATS, default=STATUS_FORMATS[0],
                        help="GET /v1/models/NAME answers TF Serving's model status (tf-serving, "
                             "the default) or KServe V1's {\"name\", \"ready\"} (kserve)")
    parser.add_argument("--no-metrics", dest="metrics", action="store_false",
                        help="no Prometheus metrics (and no /metrics route)")
    for flag, field, kind, text in _TUNING:
        parser.add_argument(flag, dest=field, type=kind, default=getattr(defaults, field),
                            help=f"{text} (default {getattr(defaults, field)})")
    parser.set_defaults(func=run)
    return parser


def run(args):
    try:
        from xai_callback.serve import ServeOptions, serve, vertex_environment
        from xai_callback.serve.options import TOKEN_ENV
        from xai_callback.serve.workers import CannotBind
    except ImportError as e:
        return _fail(f"{e}. Install the server with: pip install 'xai-callback[serve]'", EXIT_USAGE)
    try:
        options = ServeOptions(**_settings(args, vertex_environment(), TOKEN_ENV))
    except (ValueError, OSError) as e:
        return _fail(str(e), EXIT_USAGE)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    try:
        return serve(options)
    except FileNotFoundError as e:
        return _fail(str(e), EXIT_USAGE)
    except CannotBind as e:
        return _fail(str(e), EXIT_CANNOT_BIND)


def _settings(args, environment, token_env):
    """Options from the command line, else Vertex's AIP_* variables, else defaults."""
    path = args.path or environment.get("path")
    if not path:
        raise ValueError("give PATH (an export or a base directory), or set AIP_STORAGE_URI.")
    settings = {
        "path": path,
        "host": args.host,
        "port": args.port if args.port is not None else environment.get("port", 8080),
        "model_name": args.model_name,
        "bearer_token": _token(args.bearer_token_file, token_env),
        "max_body_bytes": args.max_body_bytes,
        "max_in_flight": args.max_in_flight,
        "batching": args.batching,
        "max_batch_rows": args.max_batch_rows,
        "inline_call_ms": args.inline_call_ms,
        "poll_seconds": args.poll_seconds,
        "graceful_seconds": args.graceful_seconds,
        "access_log": args.access_log,
        "workers": args.workers,
        "status_format": args.status_format,
        "metrics": args.metrics,
        **{field: getattr(args, field) for _, field, _, _ in _TUNING},
    }
    for option in ("health_route", "predict_route"):
        settings[option] = environment.get(option)
    return settings


def _token(path, token_env):
    if path:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
        if not token:
            raise ValueError(f"--bearer-token-file {path} is empty.")
        return token
    return os.environ.get(token_env) or None


def _fail(message, code):
    print(f"xai-callback serve: {message}", file=sys.stderr)
    return code


