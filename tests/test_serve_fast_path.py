"""`xai-callback serve`'s speed paths give the answers of the plain paths: the numeric
fast path of decoding, signature calls on the event loop (`--inline-call-ms`), and
`--workers N` (N processes on one port that all answer and stop on SIGTERM)."""

import concurrent.futures
import contextlib
import http.client
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import xai_callback  # noqa: E402
from models import trained_mlp  # noqa: E402
from serve_helpers import ThreadServer, request, wait_until  # noqa: E402
from subprocess_runs import REPO_DIR, free_ports, script_command, script_env  # noqa: E402
from xai_callback import cli  # noqa: E402
from xai_callback.explain.instances import instances_to_tensors  # noqa: E402
from xai_callback.serve.numeric import NumericInputs  # noqa: E402

pytestmark = pytest.mark.slow  # own processes or servers: skipped by `make test-fast`

VERTEX = "/v1/projects/p/locations/l/endpoints/e"
# serving_default of the mixed export: an integer input and a float input.
MIXED = [tf.TensorSpec([None, 1], tf.int64, name="count"), tf.TensorSpec([None, 3], tf.float32, name="feats")]
MIXED_SPECS = {spec.name: spec for spec in MIXED}
FLOATS = {"feats": tf.TensorSpec([None, 4], tf.float32)}


@tf.function(input_signature=MIXED)
def join_count(count, feats):
    return {"feats": tf.concat([feats, tf.cast(count, tf.float32)], axis=1)}


@pytest.fixture(scope="module")
def trained():
    return trained_mlp()


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    """`{"floats": export taking feats float32 [None, 4], "mixed": export taking
    count int64 [None, 1] and feats float32 [None, 3]}`."""
    model, x = trained
    root = tmp_path_factory.mktemp("fast")
    sample = {"count": np.array([[1], [2], [3]], np.int64), "feats": x[:3, :3]}
    return {
        "floats": xai_callback.export_explainable_model(model, str(root / "floats")).path,
        "mixed": xai_callback.export_explainable_model(
            model, str(root / "mixed"), preprocess_fn=(join_count, MIXED), sample=sample).path,
    }


@pytest.fixture(scope="module")
def servers(exports):
    with ThreadServer(exports["floats"]) as floats, ThreadServer(exports["mixed"]) as mixed:
        yield {"floats": floats, "mixed": mixed}


# -- the numeric fast path against the general decoder --------------------------------

X = [[0.5, -1.25, 2.0, 3.5], [1e-7, 7.0, -0.1, 0.3]]
DECODED = [
    # id, specs, instances (row) or columns (dict)
    ("float-rows", FLOATS, X),
    ("int-values-into-floats", FLOATS, [[1, 2, 3, 4], [5, 6, 7, 8]]),
    ("bools-into-floats", FLOATS, [[True, False, 1, 0.5]]),
    ("keyed-rows", FLOATS, [{"feats": row} for row in X]),
    ("columnar", FLOATS, {"feats": X}),
    ("mixed-keyed-rows", MIXED_SPECS, [{"count": [3], "feats": [0.1, 0.2, 0.3]},
                                       {"count": [-4], "feats": [1, 2, 3]}]),
    ("integral-floats-into-int", MIXED_SPECS, [{"count": [3.0], "feats": [0.1, 0.2, 0.3]}]),
    ("scalar-per-instance", MIXED_SPECS, [{"count": 3, "feats": [0.1, 0.2, 0.3]},
                                          {"count": 9, "feats": [1, 2, 3]}]),
    ("mixed-columnar", MIXED_SPECS, {"count": [[1], [2]], "feats": [[0.1, 0.2, 0.3], [4, 5, 6]]}),
    ("mixed-columnar-flat", MIXED_SPECS, {"count": [1, 2], "feats": [[0.1, 0.2, 0.3], [4, 5, 6]]}),
]


@pytest.mark.parametrize("specs, data", [case[1:] for case in DECODED], ids=[c[0] for c in DECODED])
def test_fast_path_arrays_equal_the_general_decoder(specs, data):
    fast = NumericInputs(specs).arrays(data)
    assert fast is not None, "the fast path declined plain numbers"
    general = instances_to_tensors(data, specs)
    assert sorted(fast) == sorted(general)
    for key, tensor in general.items():
        assert fast[key].dtype == tensor.dtype.as_numpy_dtype, key
        assert fast[key].shape == tuple(tensor.shape), key
        np.testing.assert_array_equal(fast[key], tensor.numpy())


DECLINED = [
    ("strings", FLOATS, [["1", "2", "3", "4"]]),
    ("b64", FLOATS, [[{"b64": "AAAA"}] * 4]),
    ("ragged", FLOATS, [[1, 2, 3, 4], [1, 2, 3]]),
    ("wrong-width", FLOATS, [[1, 2, 3]]),
    ("null", FLOATS, [[1, None, 3, 4]]),
    ("wrong-key", FLOATS, [{"x": [1, 2, 3, 4]}]),
    ("extra-key", FLOATS, [{"feats": [1, 2, 3, 4], "x": 1}]),
    ("bare-and-keyed-rows", FLOATS, [[1, 2, 3, 4], {"feats": [1, 2, 3, 4]}]),
    ("non-integer-into-int", MIXED_SPECS, [{"count": [2.5], "feats": [0.1, 0.2, 0.3]}]),
    ("batch-sizes-differ", MIXED_SPECS, {"count": [[1], [2]], "feats": [[0.1, 0.2, 0.3]]}),
    ("bare-rows-for-two-inputs", MIXED_SPECS, [[1, 0.1, 0.2, 0.3]]),
    ("empty", FLOATS, []),
]


@pytest.mark.parametrize("specs, data", [case[1:] for case in DECLINED], ids=[c[0] for c in DECLINED])
def test_fast_path_leaves_everything_else_to_the_general_decoder(specs, data):
    assert NumericInputs(specs).arrays(data) is None


def test_no_fast_path_for_string_inputs_or_an_input_named_b64():
    assert NumericInputs({"csv": tf.TensorSpec([None], tf.string)}).arrays([[1.0]]) is None
    assert NumericInputs({"b64": tf.TensorSpec([None, 2], tf.float32)}).arrays([[1.0, 2.0]]) is None


# -- the same answers over HTTP, fast path on and off ---------------------------------

ANSWERED = [
    # id, server, path, body
    ("predict-rows", "floats", "/v1/models/floats:predict", {"instances": X}),
    ("predict-columnar", "floats", "/v1/models/floats:predict", {"inputs": {"feats": X}}),
    ("predict-bare-columnar", "floats", "/v1/models/floats:predict", {"inputs": X}),
    ("predict-ints", "floats", "/v1/models/floats:predict", {"instances": [[1, 2, 3, 4], [0, -1, 0, 1]]}),
    ("predict-xai-model", "floats", "/v1/models/floats:predict",
     {"instances": X, "signature_name": "xai_model"}),
    ("vertex-predict", "floats", VERTEX + ":predict", {"instances": X}),
    ("explain-rows", "floats", "/v1/models/floats:explain", {"instances": X}),
    ("explain-columnar", "floats", "/v1/models/floats:explain", {"inputs": {"feats": X}}),
    ("vertex-explain", "floats", VERTEX + ":explain",
     {"instances": X[:1], "parameters": {"stepCount": 20}}),
    ("mixed-predict-rows", "mixed", "/v1/models/mixed:predict",
     {"instances": [{"count": [3], "feats": [0.1, 0.2, 0.3]}, {"count": [1.0], "feats": [1, 2, 3]}]}),
    ("mixed-predict-scalars", "mixed", "/v1/models/mixed:predict",
     {"instances": [{"count": 3, "feats": [0.1, 0.2, 0.3]}]}),
    ("mixed-predict-columnar", "mixed", "/v1/models/mixed:predict",
     {"inputs": {"count": [[2], [5]], "feats": [[0.1, 0.2, 0.3], [1, 2, 3]]}}),
    ("mixed-explain-rows", "mixed", "/v1/models/mixed:explain",
     {"instances": [{"count": [3], "feats": [0.1, 0.2, 0.3]}, {"count": [-2], "feats": [1, 2, 3]}]}),
    ("mixed-explain-columnar", "mixed", "/v1/models/mixed:explain",
     {"inputs": {"count": [[2], [5]], "feats": [[0.1, 0.2, 0.3], [1, 2, 3]]}}),
]


def without_fast_path(monkeypatch):
    monkeypatch.setattr(NumericInputs, "arrays", lambda self, data: None)


@pytest.mark.parametrize("name, path, body", [case[1:] for case in ANSWERED], ids=[c[0] for c in ANSWERED])
def test_answers_equal_with_and_without_the_fast_path(servers, name, path, body, monkeypatch):
    port = servers[name].port
    fast = request(port, "POST", path, body)
    without_fast_path(monkeypatch)
    general = request(port, "POST", path, body)
    assert fast[0] == 200, fast[1]
    assert fast[:2] == general[:2]


REFUSED = [
    # id, server, path, body, words of the message (instance and key named)
    ("wrong-shape", "floats", "/v1/models/floats:predict", {"instances": [X[0], [1, 2, 3]]},
     ["Instance 1", "'feats'", "[3]", "[4]"]),
    ("not-a-number", "floats", "/v1/models/floats:predict", {"instances": [X[0], [1, "a", 3, 4]]},
     ["Instance 1", "'feats'", "'a'"]),
    ("columnar-wrong-shape", "floats", "/v1/models/floats:predict", {"inputs": {"feats": [[1, 2]]}},
     ["'feats'", "[2]"]),
    ("vertex-wrong-shape", "floats", VERTEX + ":predict", {"instances": [[1, 2]]}, ["'feats'", "[2]"]),
    ("explain-not-a-number", "floats", "/v1/models/floats:explain", {"instances": [[1, 2, None, 4]]},
     ["'feats'", "None"]),
    ("non-integer-count", "mixed", "/v1/models/mixed:predict",
     {"instances": [{"count": [1], "feats": [1, 2, 3]}, {"count": [2.5], "feats": [1, 2, 3]}]},
     ["Instance 1", "'count'", "2.5"]),
    ("batch-sizes-differ", "mixed", "/v1/models/mixed:predict",
     {"inputs": {"count": [[1], [2]], "feats": [[1, 2, 3]]}}, ["'feats'", "batch sizes"]),
    ("explain-non-integer-count", "mixed", "/v1/models/mixed:explain",
     {"instances": [{"count": [0.5], "feats": [1, 2, 3]}]}, ["'count'", "0.5"]),
]


@pytest.mark.parametrize("name, path, body, words", [case[1:] for case in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_refusals_equal_with_and_without_the_fast_path(servers, name, path, body, words, monkeypatch):
    port = servers[name].port
    fast = request(port, "POST", path, body)
    without_fast_path(monkeypatch)
    general = request(port, "POST", path, body)
    assert fast[0] == 400 and fast[:2] == general[:2]
    message = fast[1]["error"]["message"] if path.startswith(VERTEX) else fast[1]["error"]
    for word in words:
        assert word in message, message


# -- signature calls on the event loop (--inline-call-ms) -----------------------------


def test_inline_calls_answer_like_calls_in_threads(exports, trained):
    """Every call in a thread (0) and every call on the loop once timed (huge limit):
    the same answers, alone and merged under concurrency."""
    _, x = trained
    bodies = [{"instances": x[i:i + 1 + i % 4].tolist()} for i in range(24)]
    answers = {}
    for inline_ms in (0.0, 1e6):
        with ThreadServer(exports["floats"], inline_call_ms=inline_ms) as server:
            model = server.repository.get("floats")
            alone = [request(server.port, "POST", "/v1/models/floats:predict", b) for b in bodies[:3]]
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                together = list(pool.map(
                    lambda b: request(server.port, "POST", "/v1/models/floats:predict", b), bodies))
            on_loop = server.service.runner.inline(model, "serving_default", 4)
        assert on_loop == (inline_ms > 0), inline_ms
        assert all(status == 200 for status, _, _ in alone + together)
        answers[inline_ms] = [body for _, body, _ in alone], [body for _, body, _ in together]
    assert answers[0.0][0] == answers[1e6][0]  # alone: the same call, the same bits
    # Under concurrency requests merge as they happen to arrive, and a row's float
    # result may differ in the last bits with the size of the batch it ran in.
    signature = tf.saved_model.load(exports["floats"]).signatures["serving_default"]
    for inline_ms, (_, together) in answers.items():
        for body, answer in zip(bodies, together):
            expected = signature(feats=tf.constant(body["instances"]))["score"].numpy()
            np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("flag, value, words", [
    ("--inline-call-ms", "-1", ["inline_call_ms", "-1"]),
    ("--inline-call-ms", "nan", ["inline_call_ms", "nan"]),
    ("--inline-call-ms", "fast", ["--inline-call-ms", "'fast'"]),
    ("--workers", "0", ["workers=0"]),
    ("--workers", "two", ["--workers", "'two'"]),
])
def test_cli_refuses_bad_speed_options(tmp_path, capsys, flag, value, words):
    try:
        status = cli.main(["serve", str(tmp_path), flag, value])
    except SystemExit as e:  # argparse: a value that is not a number at all
        status = e.code
    assert status == 2
    error = capsys.readouterr().err
    for word in words:
        assert word in error, error


# -- --workers N --------------------------------------------------------------------

WORKER_START_SECONDS = 240  # two fresh interpreters importing TensorFlow on a loaded machine


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def socket_inodes(local_port, remote_port):
    """Inodes of the TCP sockets from `local_port` to `remote_port` on this machine."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == local_port and int(remote, 16) == remote_port:
                found.add(fields[9])
    return found


def owner(pids, inodes):
    """The process among `pids` holding one of the socket `inodes`, or None."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:  # the worker closes other connections meanwhile: a listed fd may be gone
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return pid
            except OSError:
                continue
    return None


def answered_by(port, workers, method, path, body=None):
    """One request on a fresh connection: `(status, parsed body, pid of the worker that answered)`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        parsed = json.loads(response.read())
        client_port = connection.sock.getsockname()[1]
        for _ in range(3):  # /proc is read while the workers open and close other sockets
            pid = owner(workers, socket_inodes(port, client_port))
            if pid is not None:
                break
        return response.status, parsed, pid
    finally:
        connection.close()


@contextlib.contextmanager
def workers_serving(path, count=2):
    """`(process, port, worker pids)` of `serve --workers count`, once every worker
    has answered /readyz; the whole process group is killed on the way out, so no
    worker outlives the test (nor holds its output pipe)."""
    (port,) = free_ports(1)
    process = subprocess.Popen(
        script_command("serve_cli_script.py", "serve", path, "--port", port, "--workers", count,
                       "--no-access-log"),
        env=script_env(), cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    ready = set()

    def all_ready():
        if process.poll() is not None:
            return True
        workers = children(process.pid)
        if len(workers) != count:
            return None
        try:  # fresh connections until each worker has said it is ready
            for _ in range(4):
                status, _, pid = answered_by(port, workers, "GET", "/readyz")
                if status == 200 and pid is not None:
                    ready.add(pid)
        except OSError:
            return None
        return ready == set(workers) and workers

    try:
        workers = wait_until(all_ready, WORKER_START_SECONDS, interval=0.2)
        if not workers or process.poll() is not None:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"workers not all ready in {WORKER_START_SECONDS}s (ready: {sorted(ready)}):\n"
                        + process.communicate(timeout=60)[0][-3000:])
        yield process, port, workers
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=60)


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="finds the answering process in /proc")
def test_two_workers_both_answer_and_stop_on_sigterm(exports, trained):
    _, x = trained
    path = exports["floats"]
    expected = tf.saved_model.load(path).signatures["serving_default"](
        feats=tf.constant(x[:2]))["score"].numpy()
    with workers_serving(path) as (process, port, workers):
        answers, deadline = [], time.monotonic() + 60
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            while time.monotonic() < deadline and len({pid for _, _, pid in answers}) < 2:
                answers += pool.map(lambda _: answered_by(
                    port, workers, "POST", "/v1/models/floats:predict", {"instances": x[:2].tolist()}),
                    range(8))
        assert {pid for _, _, pid in answers} == set(workers), answers[:4]
        for status, body, _ in answers:
            assert status == 200, body
            np.testing.assert_allclose(body["predictions"], expected, rtol=1e-6)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    assert "2 worker processes" in output, output[-3000:]
    for pid in workers:  # reaped by the supervisor, not left running
        assert not os.path.exists(f"/proc/{pid}"), pid


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="finds the answering process in /proc")
def test_workers_stop_when_the_supervisor_is_killed(exports):
    with workers_serving(exports["floats"]) as (process, port, workers):
        process.kill()  # SIGKILL: nothing forwards a signal; the workers see their stdin end
        process.wait(timeout=60)
        gone = wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and _alive(pid)
                                          for pid in workers), 60)
        assert gone, [pid for pid in workers if _alive(pid)]


def _alive(pid):
    """Running (a zombie is not: it waits for its parent to read its status)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_exit_1_when_the_model_cannot_load(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    assert cli.main(["serve", str(broken), "--port", "0", "--workers", "2", "--no-access-log"]) == 1


# -- JSON: orjson when installed, the standard library's answers ---------------------


@pytest.mark.parametrize("content", [
    {"predictions": [[0.1, 1e-07, -2.5e300], [3, -4]], "ok": True, "name": "é\u2603"},
    {"predictions": [[float("nan"), float("inf"), -float("inf")]]},
    {"predictions": [None, 1.0], "text": "null"},
    {1: "a non-string key", "big": 2**70},
])
def test_written_json_reads_back_as_the_standard_library_writes_it(content):
    from xai_callback.serve.bodies import dumps

    written = dumps(content)
    assert isinstance(written, bytes)
    assert written.decode() == json.dumps(content, separators=(",", ":")) or (
        json.loads(written) == json.loads(json.dumps(content)))
    if "nan" in repr(content):  # TF Serving's tokens, never null
        assert b"NaN" in written and b"-Infinity" in written and b"null" not in written


def test_nan_tokens_in_a_request_and_an_answer(servers, trained):
    """orjson refuses `NaN`; the standard library reads it, as TF Serving does, and
    the NaN the model answers is written as `NaN`, not `null`."""
    _, x = trained
    raw = ('{"instances": [[NaN, 1.0, 2.0, 3.0], %s]}' % json.dumps(x[0].tolist())).encode()
    status, body, _ = request(servers["floats"].port, "POST", "/v1/models/floats:predict", raw=raw)
    assert status == 200, body
    assert np.isnan(body["predictions"][0][0])
    expected = tf.saved_model.load(servers["floats"].options.path).signatures["serving_default"](
        feats=tf.constant(x[:1]))["score"].numpy()
    np.testing.assert_allclose(body["predictions"][1], expected[0], rtol=1e-6)
