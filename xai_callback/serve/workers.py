"""`--workers N`: N server processes on one listening socket, under a small supervisor.

One server process answers from one event-loop thread, and Python runs one
thread at a time: HTTP, JSON and the model call's Python share one core. With
`workers > 1` the supervisor (the process started) binds the socket, then
starts N worker processes (fresh interpreters, not forks: TensorFlow's threads
do not survive a fork) that inherit it, each loading the model and running the
same app. The kernel hands each new connection to one worker. Each worker
polls the base directory itself, so after a new version is published the
workers switch within `poll_seconds` of each other (a keep-alive connection
stays with one worker and never sees an older version again).

The supervisor forwards SIGTERM/SIGINT to the workers, which finish their
requests in flight (`graceful_seconds`), and exits 0. Workers also stop when
the supervisor is gone (killed by SIGKILL): their stdin, a pipe from it, ends.
If a worker exits on its own (its model failed to load, or it crashed), the
supervisor stops the others and exits 1, for the container's restart policy
to act on.
"""

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

log = logging.getLogger("xai_callback.serve")

SOCKET_FD_ENV = "XAI_CALLBACK_SERVE_SOCKET_FD"
# How often the supervisor checks its workers; and the time a worker gets on
# top of graceful_seconds before it is killed.
WATCH_SECONDS = 0.2
KILL_MARGIN_SECONDS = 10.0
_WORKER_COMMAND = "from xai_callback.serve.server import worker_main; worker_main()"


def run_workers(options):
    """Serves `options` from `options.workers` processes; returns the exit status.

    Example:

    ```python
    run_workers(ServeOptions("exports/churn", workers=2))   # until SIGTERM
    ```
    """
    listener = bind(options.host, options.port)
    host, port = listener.getsockname()[:2]
    settings = json.dumps(dataclasses.asdict(dataclasses.replace(options, workers=1, port=port)))
    workers = []
    stopping = threading.Event()

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            _signal_all(workers, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(options.workers):
            workers.append(_start_worker(listener, settings))
        listener.close()  # the workers hold it now
        log.info("serving %s on http://%s:%s with %d worker processes %s", options.path, host, port,
                 len(workers), [w.pid for w in workers])
        return _watch(workers, stopping, options.graceful_seconds)
    finally:
        stop()
        _reap(workers, options.graceful_seconds)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def bind(host, port):
    """A listening TCP socket on `host:port` that child processes can inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _start_worker(listener, settings):
    env = dict(os.environ, **{SOCKET_FD_ENV: str(listener.fileno())})
    worker = subprocess.Popen([sys.executable, "-c", _WORKER_COMMAND], stdin=subprocess.PIPE,
                              pass_fds=(listener.fileno(),), env=env)
    # On stdin: the bearer token stays out of argv and env. The pipe stays open:
    # its end (the supervisor gone, even by SIGKILL) tells the worker to stop.
    worker.stdin.write(settings.encode() + b"\n")
    worker.stdin.flush()
    return worker


def _watch(workers, stopping, graceful_seconds):
    """Waits for SIGTERM/SIGINT or a worker's exit; the exit status."""
    while not stopping.wait(WATCH_SECONDS):
        for worker in workers:
            if worker.poll() is not None:
                log.error("worker %d exited with status %d; stopping the other workers.",
                          worker.pid, worker.returncode)
                stopping.set()
                _signal_all(workers, signal.SIGTERM)
                _reap(workers, graceful_seconds)
                return 1
    _reap(workers, graceful_seconds)
    return 0 if all(w.returncode == 0 for w in workers) else 1


def _signal_all(workers, sig):
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(sig)


def _reap(workers, graceful_seconds):
    deadline = time.monotonic() + graceful_seconds + KILL_MARGIN_SECONDS
    for worker in workers:
        try:
            worker.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.error("worker %d did not stop in time; killing it.", worker.pid)
            worker.kill()
            worker.wait()
        if worker.stdin is not None:
            worker.stdin.close()
