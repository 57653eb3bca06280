"""Running the app under uvicorn: start-up, graceful shutdown, exit status.

uvicorn handles SIGTERM and SIGINT: it stops accepting connections, lets
in-flight requests finish (up to `graceful_seconds`), then runs the
lifespan shutdown, which stops the version polling.
"""

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

from xai_callback.serve import workers
from xai_callback.serve.app import Service, build_app
from xai_callback.serve.board import WorkerBoard
from xai_callback.serve.options import ServeOptions
from xai_callback.serve.repository import ModelRepository, require_path
from xai_callback.serve.slow_clients import header_timeout_protocol
from xai_callback.serve.workers import bind, run_workers

log = logging.getLogger("xai_callback.serve")


def serve(options, sockets=None):
    """Serves `options.path` until SIGTERM/SIGINT; returns the exit status (0, or 1
    when the model could not be loaded). With `options.workers > 1`, from that
    many processes (see `workers`).

    Example:

    ```python
    from xai_callback.serve import ServeOptions, serve
    serve(ServeOptions("exports/churn", port=8081))
    ```

    Args:
        options: `ServeOptions`.
        sockets: listening sockets to serve on instead of binding
            `options.host:options.port` (a worker's inherited socket).

    Raises:
        FileNotFoundError: nothing exists at `options.path`.
        CannotBind: the port is in use.
    """
    if options.workers > 1 and sockets is None:
        require_path(options.path)
        return run_workers(options)
    if sockets is None:
        require_path(options.path)
        sockets = [bind(options.host, options.port)]  # one clear line when the port is taken
    fatal = []
    server = None

    def on_fatal(message):
        fatal.append(message)
        log.error("%s; stopping.", message)
        if server is not None:
            server.should_exit = True

    board = WorkerBoard.from_environment()
    repository = make_repository(options, on_fatal=on_fatal,
                                 on_change=board.publish if board is not None else None)
    if board is not None:
        # A worker takes connections from the shared socket only once its model is
        # loaded: the others answer meanwhile (at start, and after a restart).
        repository.start()
        while not repository.ready and not fatal:
            time.sleep(0.05)
        if fatal:
            return 1
    app = build_app(Service(options, repository, board=board))
    server = uvicorn.Server(uvicorn_config(app, options, log_level="info"))
    host, port = sockets[0].getsockname()[:2]
    log.info("serving model '%s' from %s on http://%s:%s", repository.name, repository.path, host, port)
    with _exit_quietly_after_signals():
        server.run(sockets=sockets)
    return 1 if fatal or not server.started else 0


def make_repository(options, **hooks):
    """The `ModelRepository` of `options` (`hooks`: `on_fatal`, `on_change`)."""
    return ModelRepository(options.path, name=options.model_name, poll_seconds=options.poll_seconds,
                           settle_seconds=options.settle_seconds, max_load_retries=options.max_load_retries,
                           retry_seconds=options.load_retry_seconds, **hooks)


def uvicorn_config(app, options, **settings):
    """uvicorn's settings for `options`: the slow-client timeouts, graceful shutdown, access log."""
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        timeout_graceful_shutdown=options.graceful_seconds,
        timeout_keep_alive=options.keep_alive_seconds,
        http=header_timeout_protocol(options.header_timeout_seconds),
        access_log=options.access_log,
        lifespan="on",
        **settings,
    )


@contextlib.contextmanager
def _exit_quietly_after_signals():
    """uvicorn re-raises SIGTERM/SIGINT to the previous handlers after its
    graceful shutdown; no-op handlers there make that a clean return (exit 0)
    instead of a kill by the signal or a KeyboardInterrupt traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def worker_main():
    """Entry point of a worker process: options on stdin, the socket's fd in the environment."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    options = ServeOptions(**json.loads(sys.stdin.readline()))
    listener = socket.socket(fileno=int(os.environ.pop(workers.SOCKET_FD_ENV)))
    threading.Thread(target=_stop_when_orphaned, args=(options.graceful_seconds,), daemon=True).start()
    sys.exit(serve(options, sockets=[listener]))


def _stop_when_orphaned(graceful_seconds):
    """Stops this worker when the supervisor's end of stdin closes (it exited or was
    killed): SIGTERM for a graceful stop, then an exit if that did not end it."""
    sys.stdin.read()  # returns at end of file only
    log.error("the supervisor is gone; stopping.")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(graceful_seconds + workers.KILL_MARGIN_SECONDS)
    os._exit(1)
