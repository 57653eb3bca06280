"""`xai-callback serve` over time: a version published while clients loop, half-written
directories, SIGTERM with a request in flight, Vertex's AIP_* contract, exit statuses,
and the core package free of the web framework."""

import shutil
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import xai_callback  # noqa: E402
from models import trained_mlp  # noqa: E402
from serve_helpers import ThreadServer, request, wait_until  # noqa: E402
from subprocess_runs import REPO_DIR, free_ports, parse_result, script_command, script_env  # noqa: E402
from xai_callback import cli  # noqa: E402

pytestmark = pytest.mark.slow  # own processes or servers: skipped by `make test-fast`

VERTEX = "/v1/projects/p/locations/l/endpoints/e"
CLIENT_SECONDS = 90  # upper bound of every client loop


@pytest.fixture(scope="module")
def trained():
    return trained_mlp()


@pytest.fixture(scope="module")
def other_model():
    return trained_mlp(seed=7)[0]


def predictions(path, x):
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return signature(feats=tf.constant(x))["score"].numpy()


def test_new_version_is_served_without_a_failed_request(trained, other_model, tmp_path):
    model, x = trained
    base = str(tmp_path / "churn")
    xai_callback.export_explainable_model(model, base, versioned=True)
    results, stop = [], threading.Event()
    with ThreadServer(base, poll_seconds=0.2) as server:

        def client(explain):
            deadline = time.monotonic() + CLIENT_SECONDS
            while not stop.is_set() and time.monotonic() < deadline:
                verb = ":explain" if explain else ":predict"
                status, body, _ = request(server.port, "POST", VERTEX + verb, {"instances": x[:2].tolist()})
                results.append((status, body))

        clients = [threading.Thread(target=client, args=(i == 2,)) for i in range(3)]
        for thread in clients:
            thread.start()
        try:
            assert wait_until(lambda: len(results) >= 10, 30)
            second = xai_callback.export_explainable_model(other_model, base, versioned=True).path
            assert second.endswith("/2")
            switched = wait_until(lambda: any(b.get("deployedModelId") == "2" for _, b in results), 60)
            assert switched, "version 2 was never served"
            # Half-written versions are never loaded: files without saved_model.pb,
            # and an export of ours without its commit marker (a copy still in
            # progress on an object store; see placement.is_complete).
            shutil.copytree(second, f"{base}/7", ignore=shutil.ignore_patterns("saved_model.pb"))
            shutil.copytree(second, f"{base}/8",
                            ignore=shutil.ignore_patterns("xai_callback_complete.json"))
            count = len(results)
            assert wait_until(lambda: len(results) >= count + 20, 30)
            time.sleep(1.0)  # five polls
        finally:
            stop.set()
            for thread in clients:
                thread.join(CLIENT_SECONDS)
        served = request(server.port, "GET", "/v1/models/churn")[1]["model_version_status"][0]

    failed = [(status, body) for status, body in results if status != 200]
    assert not failed, failed[:3]
    versions = [body["deployedModelId"] for _, body in results]
    assert versions[0] == "1" and versions[-1] == "2"
    assert set(versions) == {"1", "2"} and served["version"] == "2"
    new = [body for _, body in results if body["deployedModelId"] == "2" and "explanations" not in body]
    np.testing.assert_allclose(new[-1]["predictions"], predictions(second, x[:2]), rtol=1e-6)


def test_sigterm_lets_the_request_in_flight_finish(trained, tmp_path):
    """The CLI as Vertex runs it (AIP_* variables, no PATH): health and predict
    routes, then SIGTERM while a long explanation is in flight."""
    model, x = trained
    path = xai_callback.export_explainable_model(model, str(tmp_path / "model")).path
    (port,) = free_ports(1)
    env = script_env(AIP_HTTP_PORT=port, AIP_STORAGE_URI=path, AIP_HEALTH_ROUTE="/v1/endpoints/e/ok",
                     AIP_PREDICT_ROUTE="/v1/endpoints/e/deployedModels/d:predict")
    process = subprocess.Popen(script_command("serve_cli_script.py", "serve", "--no-access-log"),
                               env=env, cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        def healthy():
            try:
                return request(port, "GET", "/v1/endpoints/e/ok", timeout=5)[0] == 200
            except OSError:
                return process.poll() is not None

        assert wait_until(healthy, 120, interval=0.25) and process.poll() is None
        status, body, _ = request(port, "POST", "/v1/endpoints/e/deployedModels/d:predict",
                                  {"instances": x[:2].tolist()})
        assert status == 200
        np.testing.assert_allclose(body["predictions"], predictions(path, x[:2]), rtol=1e-6)
        # ~4000 model calls of one row each: seconds of work.
        slow = {"instances": x[:40].tolist(), "parameters": {"stepCount": 100, "maxRowsPerCall": 1}}
        answer = {}
        thread = threading.Thread(target=lambda: answer.update(
            reply=request(port, "POST", "/v1/models/model:explain", slow, timeout=120)))
        thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        thread.join(120)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    status, body, _ = answer["reply"]
    assert status == 200 and len(body["explanations"]) == 40
    assert "Waiting for connections to close" in output, output[-3000:]  # it was in flight
    assert process.returncode == 0, output[-3000:]
    # Before `serve` ran, the package and its command line had imported no web framework.
    assert parse_result(output, "serve_cli_script.py") == {"web_modules": []}


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert cli.main(["serve", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert cli.main(["serve", str(tmp_path), "--max-in-flight", "0"]) == 2
    assert "max_in_flight=0" in capsys.readouterr().err
    assert cli.main(["serve", str(tmp_path), "--model-name", "a/b"]) == 2
    assert "'a/b'" in capsys.readouterr().err


def test_cli_exits_1_when_the_model_cannot_load(tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    assert cli.main(["serve", str(broken), "--port", "0", "--no-access-log"]) == 1


def test_serves_a_base_directory_behind_a_gfile_url(trained):
    """Paths go through tf.io.gfile: a versioned base directory on ram:// (as on gs://)."""
    model, x = trained
    base = "ram://xai_serve_tests/churn"
    version = xai_callback.export_explainable_model(model, base, versioned=True).path
    with ThreadServer(base) as server:
        status, body, _ = request(server.port, "POST", "/v1/models/churn:predict",
                                  {"instances": x[:2].tolist()})
        ready = request(server.port, "GET", "/readyz")[1]
    assert status == 200 and ready["version"] == 1
    np.testing.assert_allclose(body["predictions"], predictions(version, x[:2]), rtol=1e-6)
