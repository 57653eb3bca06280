"""Running `xai-callback serve` for tests: in a thread (uvicorn on a free port) or as a process.

Only loopback traffic; every wait is bounded.
"""

import http.client
import json
import threading
import time

import uvicorn

from xai_callback.serve import ServeOptions, Service, build_app
from xai_callback.serve.server import make_repository, uvicorn_config

START_TIMEOUT = 60


class ThreadServer:
    """The real app under uvicorn in a background thread, on 127.0.0.1 and a free port.

    Example:

    ```python
    with ThreadServer(export_dir) as server:
        status, body, _ = request(server.port, "GET", "/readyz")
    ```
    """

    def __init__(self, path, app_of=None, **options):
        """`app_of`: what to serve, given `build_app`'s app (default: that app)."""
        options = {"graceful_seconds": 10, **options}
        self.options = ServeOptions(path, port=0, access_log=False, **options)
        self.repository = make_repository(self.options)
        self.service = Service(self.options, self.repository)
        app = build_app(self.service)
        self.server = uvicorn.Server(uvicorn_config(app_of(app) if app_of else app, self.options,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.server.started and self.repository.ready):
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.__exit__()
                raise RuntimeError(f"the server did not get ready in {START_TIMEOUT}s: "
                                   f"{self.repository.waiting_for()}")
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


def request(port, method, path, body=None, headers=None, raw=None, timeout=60):
    """`(status, parsed JSON body (or text), headers)` of one HTTP request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        connection.request(method, path, body=data,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = text
        return response.status, parsed, dict(response.getheaders())
    finally:
        connection.close()


def wait_until(condition, timeout, interval=0.1):
    """Polls `condition()` until it is truthy; returns its value or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return None
