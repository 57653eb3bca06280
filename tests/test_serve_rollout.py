"""`xai-callback serve` over time: versions copied in piece by piece, failed loads
retried, deleted versions leaving the status, memory after varied settings, workers that are
all ready or restarted, the port in use, slow clients."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow  # real servers and processes: skipped by `make test-fast`

import xai_callback  # noqa: E402
from models import trained_mlp  # noqa: E402
from serve_helpers import ThreadServer, request, wait_until  # noqa: E402
from subprocess_runs import REPO_DIR, free_ports, run_script, script_command, script_env  # noqa: E402
from xai_callback import cli  # noqa: E402

VERTEX = "/v1/projects/p/locations/l/endpoints/e"
MEMORY_LIMIT_MB = 60


@pytest.fixture(scope="module")
def trained():
    return trained_mlp()


def served_version(server):
    status, body, _ = request(server.port, "GET", "/readyz")
    return body.get("version") if status == 200 else None


def copy_piece_by_piece(source, target, first):
    """`cp -r` / gsutil order: the files named in `first` arrive before the rest."""
    os.makedirs(target)
    for name in first:
        shutil.copy(os.path.join(source, name), os.path.join(target, name))

    def rest():
        shutil.copytree(source, target, dirs_exist_ok=True)

    return rest


def test_a_foreign_savedmodel_is_loaded_once_it_settles(trained, tmp_path):
    """Keras' own `model.export` (no provenance): `saved_model.pb` first, the variables later."""
    model, x = trained
    base = tmp_path / "plain"
    model.export(str(base / "1"), verbose=False)
    model.export(str(tmp_path / "next"), verbose=False)
    with ThreadServer(str(base), poll_seconds=0.1, settle_seconds=1.0) as server:
        assert served_version(server) == 1
        rest = copy_piece_by_piece(str(tmp_path / "next"), str(base / "2"), ["saved_model.pb"])
        time.sleep(1.5)  # fifteen polls: the half copy stood still longer than the settle time
        rest()
        assert wait_until(lambda: served_version(server) == 2, 30), request(server.port, "GET", "/v1/models/plain")
        status = request(server.port, "GET", "/v1/models/plain")[1]["model_version_status"]
    assert [s["state"] for s in status] == ["AVAILABLE"], status  # no failed load on the way


def test_a_failed_load_is_retried_and_a_deleted_version_leaves_the_status(trained, tmp_path):
    """An export of ours whose variables are broken when it lands (a copy tool wrote them
    wrong); fixed a moment later: the retry loads it. A version that keeps failing is
    listed until it is deleted."""
    model, x = trained
    base = str(tmp_path / "churn")
    xai_callback.export_explainable_model(model, base, versioned=True)
    second = xai_callback.export_explainable_model(model, str(tmp_path / "staging"), versioned=True).path
    with ThreadServer(base, poll_seconds=0.1, load_retry_seconds=0.5, max_load_retries=3) as server:
        shutil.copytree(second, f"{base}/2")
        variables = f"{base}/2/variables/variables.index"
        good = open(variables, "rb").read()
        with open(variables, "wb") as f:
            f.write(b"broken")
        failing = wait_until(lambda: [s for s in request(server.port, "GET", "/v1/models/churn")[1][
            "model_version_status"] if s["version"] == "2" and s["status"]["error_message"]], 30)
        assert failing and failing[0]["state"] == "LOADING" and "retrying" in failing[0]["status"]["error_message"]
        assert served_version(server) == 1
        with open(variables, "wb") as f:
            f.write(good)
        assert wait_until(lambda: served_version(server) == 2, 30)
        shutil.copytree(second, f"{base}/3")
        with open(f"{base}/3/variables/variables.index", "wb") as f:
            f.write(b"broken")
        ended = wait_until(lambda: [s for s in request(server.port, "GET", "/v1/models/churn")[1][
            "model_version_status"] if s["version"] == "3" and s["state"] == "END"], 30)
        assert ended, "version 3 never gave up"
        shutil.rmtree(f"{base}/3")
        assert wait_until(lambda: [s["version"] for s in request(server.port, "GET", "/v1/models/churn")[1][
            "model_version_status"]] == ["2"], 10)


def test_distinct_step_counts_leave_memory_flat():
    result = run_script("serve_memory_script.py", 80, timeout=900)
    before, after = result["rss_mb"]
    assert after - before <= MEMORY_LIMIT_MB, f"RSS grew {after - before:.0f} MB over 80 stepCounts"


# -- the port in use, workers ------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_port_in_use_is_one_line_and_exit_3(trained, tmp_path, capsys, workers):
    model, _ = trained
    path = xai_callback.export_explainable_model(model, str(tmp_path / "m")).path
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        status = cli.main(["serve", path, "--port", str(port), "--workers", str(workers), "--no-access-log"])
    error = capsys.readouterr().err
    assert status == 3, error
    assert f"cannot listen on 127.0.0.1:{port}" in error and "--port" in error and "Traceback" not in error


@contextlib.contextmanager
def supervised(path, *flags):
    (port,) = free_ports(1)
    process = subprocess.Popen(script_command("serve_cli_script.py", "serve", path, "--port", port,
                                              "--no-access-log", *flags),
                               env=script_env(), cwd=REPO_DIR, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield process, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)


def readiness(port):
    try:
        return request(port, "GET", "/readyz", timeout=5)
    except OSError:
        return None, None, None


def test_ready_means_every_worker_and_a_dead_worker_is_restarted(trained, tmp_path):
    model, x = trained
    path = xai_callback.export_explainable_model(model, str(tmp_path / "m")).path
    with supervised(path, "--workers", "2") as (process, port):
        ready = wait_until(lambda: readiness(port)[0] == 200, 240, interval=0.2)
        assert ready, process.poll()
        body = readiness(port)[1]
        workers = body["workers"]
        assert [w["version"] for w in workers] == [1, 1] and len({w["pid"] for w in workers}) == 2
        os.kill(workers[0]["pid"], signal.SIGKILL)
        # The other worker answers while the first is restarted; readiness says so.
        answers = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                answers.append(request(port, "POST", VERTEX + ":predict", {"instances": x[:1].tolist()},
                                       timeout=10)[0])
            except OSError:
                answers.append("refused")
            status, body, _ = readiness(port)
            if status == 200 and workers[0]["pid"] not in [w["pid"] for w in body["workers"]]:
                break
            time.sleep(0.1)
        assert status == 200, body
        assert process.poll() is None
        assert answers and set(answers) == {200}, answers
        new = [w["pid"] for w in body["workers"]]
        assert workers[1]["pid"] in new and workers[0]["pid"] not in new and None not in new


# -- slow clients ----------------------------------------------------------------------------


def trickle(port, data, interval, seconds, at_once=b""):
    """Sends `at_once`, then `data` a byte every `interval` s; `(seconds until the server
    closed, what it answered)`."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.settimeout(0.05)
    connection.sendall(at_once)
    start, answer = time.monotonic(), b""
    try:
        for byte in data:
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
            try:
                chunk = connection.recv(4096)
            except socket.timeout:
                chunk = None
            if chunk is not None:
                answer += chunk
                if not chunk:
                    break
            if time.monotonic() - start > seconds:
                break
            time.sleep(interval)
        return time.monotonic() - start, answer
    finally:
        connection.close()


def test_trickling_clients_are_cut_off(trained, tmp_path):
    """Headers or a body trickling a byte at a time get 408 within the timeouts, while
    other clients are answered; idle keep-alive connections close."""
    import concurrent.futures

    model, x = trained
    path = xai_callback.export_explainable_model(model, str(tmp_path / "m")).path
    head = b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    body = b'{"instances": [[1, 2, 3, 4]]}'
    with ThreadServer(path, header_timeout_seconds=1.0, body_timeout_seconds=1.0, keep_alive_seconds=1.0) as server:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            headers = [pool.submit(trickle, server.port, head * 20, 0.1, 15) for _ in range(8)]
            bodies = [pool.submit(trickle, server.port, body, 0.2, 15,
                                  at_once=head + b"Content-Length: %d\r\n\r\n" % len(body)) for i in range(3)]
            time.sleep(0.3)
            assert request(server.port, "POST", "/v1/models/m:predict", {"instances": x[:1].tolist()})[0] == 200
            cut = [f.result() for f in headers]
            slow_body, *_ = [f.result() for f in bodies]
        with socket.create_connection(("127.0.0.1", server.port)) as idle:
            idle.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            idle.settimeout(10)
            first = idle.recv(65536)
            start = time.monotonic()
            while idle.recv(65536):
                pass
            idle_closed = time.monotonic() - start
    for seconds, answer in cut:
        assert seconds < 4 and answer.startswith(b"HTTP/1.1 408"), (seconds, answer)
        assert b"--header-timeout-seconds" in answer
    seconds, answer = slow_body
    assert seconds < 4 and b" 408 " in answer and b"--body-timeout-seconds" in answer, (seconds, answer)
    assert first.startswith(b"HTTP/1.1 200") and idle_closed < 4
