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

Readiness: the workers write what they serve on a shared board
(`board.WorkerBoard`); any worker's `/readyz` is 200 only when every worker
has a version loaded. Prometheus figures of all workers are added up through
one `PROMETHEUS_MULTIPROC_DIR`.

The supervisor forwards SIGTERM/SIGINT to the workers, which finish their
requests in flight (`graceful_seconds`), and exits 0. Workers also stop when
the supervisor is gone (killed by SIGKILL): their stdin, a pipe from it, ends.
A worker that dies after it served (a crash, the OOM killer) is restarted
while the others keep answering; a worker that exits before it ever served
(its model failed to load) stops the others, and the supervisor exits 1, for
the container's restart policy to act on.
"""

import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from xai_callback.serve.board import STATE_DIR_ENV, WORKER_ENV, WORKERS_ENV, WorkerBoard

log = logging.getLogger("xai_callback.serve")

SOCKET_FD_ENV = "XAI_CALLBACK_SERVE_SOCKET_FD"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How often the supervisor checks its workers; the time a worker gets on top
# of graceful_seconds before it is killed; the least time between two starts
# of one worker.
WATCH_SECONDS = 0.2
KILL_MARGIN_SECONDS = 10.0
RESTART_SECONDS = 1.0
_WORKER_COMMAND = "from xai_callback.serve.server import worker_main; worker_main()"


class CannotBind(OSError):
    """The address cannot be listened on (the port is in use, or not ours to take)."""


def run_workers(options):
    """Serves `options` from `options.workers` processes; returns the exit status.

    Example:

    ```python
    run_workers(ServeOptions("exports/churn", workers=2))   # until SIGTERM
    ```

    Raises:
        CannotBind: the port is in use.
    """
    listener = bind(options.host, options.port)
    host, port = listener.getsockname()[:2]
    settings = json.dumps(dataclasses.asdict(dataclasses.replace(options, workers=1, port=port)))
    shared = tempfile.mkdtemp(prefix="xai_serve_")
    board = WorkerBoard(os.path.join(shared, "board"), None, options.workers)
    os.makedirs(board.directory)
    env = {STATE_DIR_ENV: board.directory, WORKERS_ENV: str(options.workers)}
    if options.metrics:
        env[METRICS_DIR_ENV] = os.path.join(shared, "metrics")
        os.makedirs(env[METRICS_DIR_ENV])
    workers = {}
    stopping = threading.Event()

    def start(index):
        workers[index] = _start_worker(listener, settings, {**env, WORKER_ENV: str(index)})

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            _signal_all(workers.values(), signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(options.workers):
            start(index)
        log.info("serving %s on http://%s:%s with %d worker processes %s", options.path, host, port,
                 len(workers), [w.pid for w in workers.values()])
        return _watch(workers, board, start, stopping, options.graceful_seconds)
    finally:
        stop()
        _reap(workers.values(), options.graceful_seconds)
        listener.close()
        shutil.rmtree(shared, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def bind(host, port):
    """A listening TCP socket on `host:port` that child processes can inherit.

    Raises:
        CannotBind: with one line saying why (the port is in use, ...).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only for sockets
    # whose proto says TCP (proto 0 left Nagle on: about 40 ms per answer).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as e:
        listener.close()
        raise CannotBind(f"cannot listen on {host}:{port}: {e.strerror or e}. Another process may hold "
                         "the port: stop it, or choose another with --port.") from None
    listener.set_inheritable(True)
    return listener


def _start_worker(listener, settings, env):
    env = dict(os.environ, **env, **{SOCKET_FD_ENV: str(listener.fileno())})
    worker = subprocess.Popen([sys.executable, "-c", _WORKER_COMMAND], stdin=subprocess.PIPE,
                              pass_fds=(listener.fileno(),), env=env)
    # On stdin: the bearer token stays out of argv and env. The pipe stays open:
    # its end (the supervisor gone, even by SIGKILL) tells the worker to stop.
    worker.stdin.write(settings.encode() + b"\n")
    worker.stdin.flush()
    worker.started = time.monotonic()
    return worker


def _watch(workers, board, start, stopping, graceful_seconds):
    """Waits for SIGTERM/SIGINT; restarts workers that die after they served; the exit status."""
    while not stopping.wait(WATCH_SECONDS):
        for index, worker in list(workers.items()):
            if worker.poll() is None:
                continue
            state = board.read(index)
            if state is None or state.get("pid") != worker.pid:  # it never served: it cannot load
                log.error("worker %d exited with status %d before it served; stopping the other "
                          "workers.", worker.pid, worker.returncode)
                stopping.set()
                _signal_all(workers.values(), signal.SIGTERM)
                _reap(workers.values(), graceful_seconds)
                return 1
            log.error("worker %d exited with status %d; starting another (the others keep "
                      "answering).", worker.pid, worker.returncode)
            board.clear(index)
            if worker.stdin is not None:
                worker.stdin.close()
            time.sleep(max(0.0, worker.started + RESTART_SECONDS - time.monotonic()))
            start(index)
    _reap(workers.values(), graceful_seconds)
    return 0 if all(w.returncode == 0 for w in workers.values()) else 1


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
        if worker.stdin is not None and not worker.stdin.closed:
            worker.stdin.close()
