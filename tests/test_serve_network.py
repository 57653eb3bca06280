"""`xai-callback serve` on a network: bounded work per request, hostile JSON, non-finite
outputs, KServe's model-ready answer, the Open Inference Protocol (V2), Prometheus metrics,
and 500s for failures that are not the client's.

Servers run uvicorn in a thread on 127.0.0.1 (free ports), one per set of options, shared by
the module; clients are real HTTP requests.
"""

import json
import math
import re
import time

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow  # real servers and processes: skipped by `make test-fast`
pytest.importorskip("prometheus_client")

import xai_callback  # noqa: E402
from models import trained_mlp  # noqa: E402
from serve_helpers import ThreadServer, request  # noqa: E402

VERTEX = "/v1/projects/p/locations/l/endpoints/e"
GOOD = [[0.1, 0.2, 0.3, 0.4]]


@pytest.fixture(scope="module")
def trained():
    return trained_mlp()


@pytest.fixture(scope="module")
def version_path(trained, tmp_path_factory):
    model, _ = trained
    base = tmp_path_factory.mktemp("network") / "churn"
    return xai_callback.export_explainable_model(model, str(base), versioned=True).path


@pytest.fixture(scope="module")
def server(version_path):
    with ThreadServer(version_path.rsplit("/", 1)[0]) as running:
        yield running


@pytest.fixture(scope="module")
def kserve_server(version_path):
    """KServe's model-ready answer; a short deadline; limits raised above Vertex's."""
    with ThreadServer(version_path.rsplit("/", 1)[0], status_format="kserve", request_timeout_seconds=1.0,
                      max_step_count=200, max_in_flight=1) as running:
        yield running


def serving(path, x):
    return tf.saved_model.load(path).signatures["serving_default"](feats=tf.constant(x))["score"].numpy()


def message(body):
    error = body["error"]
    return error["message"] if isinstance(error, dict) else error


# -- bounded work per request -----------------------------------------------------------------

LIMITED = [
    # id, path, body, words the 400 names
    ("step-count-huge", "/v1/models/churn:explain",
     {"instances": GOOD, "parameters": {"stepCount": 20000000}}, ["stepCount=20000000", "100", "--max-step-count"]),
    ("step-count-override", VERTEX + ":explain",
     {"instances": GOOD, "explanationSpecOverride": {"parameters": {
         "integratedGradientsAttribution": {"stepCount": 101}}}},
     ["integratedGradientsAttribution.stepCount=101", "--max-step-count"]),
    ("path-count", "/v1/models/churn:explain",
     {"instances": GOOD, "parameters": {"method": "sampled-shapley", "pathCount": 51}},
     ["pathCount=51", "50", "--max-path-count"]),
    ("noisy-samples", VERTEX + ":explain",
     {"instances": GOOD, "explanationSpecOverride": {"parameters": {"integratedGradientsAttribution": {
         "smoothGradConfig": {"noiseSigma": 0.1, "noisySampleCount": 500}}}}},
     ["noisySampleCount=500", "--max-noisy-sample-count"]),
    ("top-k-minus-one", "/v1/models/churn:explain", {"instances": GOOD, "parameters": {"topK": -1}},
     ["topK", ">= 1", "-1"]),
    ("top-k-boolean", VERTEX + ":explain",
     {"instances": GOOD, "explanationSpecOverride": {"parameters": {"topK": True}}}, ["topK", "True"]),
    ("step-count-boolean", "/v1/models/churn:explain", {"instances": GOOD, "parameters": {"stepCount": True}},
     ["stepCount", "True"]),
    ("budget", "/v1/models/churn:explain",
     {"instances": GOOD * 300, "parameters": {"stepCount": 100}},
     ["300 instances", "100 steps", "30000", "25600", "--max-explanation-steps"]),
    ("unknown-option", "/v1/models/churn:explain", {"instances": GOOD, "parameters": {"colour": "red"}},
     ["'colour'", "step_count"]),
]


@pytest.mark.parametrize("path, body, words", [c[1:] for c in LIMITED], ids=[c[0] for c in LIMITED])
def test_explanation_settings_past_the_limits_are_refused(server, path, body, words):
    status, answer, _ = request(server.port, "POST", path, body)
    assert status == 400, answer
    for word in words:
        assert word in message(answer), message(answer)


def test_limits_are_serve_options(kserve_server, version_path, trained):
    """--max-step-count 200: stepCount 150 is explained (as `explain` computes it), 201 is not."""
    _, x = trained
    body = {"instances": x[:1].tolist(), "parameters": {"stepCount": 150}}
    status, answer, _ = request(kserve_server.port, "POST", "/v1/models/churn:explain", body)
    assert status == 200, answer
    local = xai_callback.explain(version_path, x[:1].tolist(), step_count=150).to_dict()
    np.testing.assert_allclose(answer["explanations"][0]["attributions"][0]["featureAttributions"]["feats"],
                               local["explanations"][0]["attributions"][0]["featureAttributions"]["feats"],
                               rtol=1e-6)
    body["parameters"]["stepCount"] = 201
    status, answer, _ = request(kserve_server.port, "POST", "/v1/models/churn:explain", body)
    assert status == 400 and "200" in answer["error"] and "--max-step-count" in answer["error"]


def test_a_request_past_its_deadline_gets_504_and_frees_the_worker(kserve_server, trained):
    """One worker thread (max_in_flight=1) and a 1 s deadline: the explanation stops, and the
    next predict is answered at once, not after the explanation's full run."""
    _, x = trained
    slow = {"instances": x[:60].tolist(), "parameters": {"stepCount": 100, "maxRowsPerCall": 1}}
    start = time.monotonic()
    status, answer, _ = request(kserve_server.port, "POST", VERTEX + ":explain", slow)
    took = time.monotonic() - start
    assert status == 504, answer
    assert answer["error"]["status"] == "DEADLINE_EXCEEDED" and "--request-timeout-seconds" in message(answer)
    assert took < 10, took
    status, answer, _ = request(kserve_server.port, "POST", "/v1/models/churn:explain",
                                {"instances": x[:1].tolist(), "parameters": {"stepCount": 10}}, timeout=30)
    assert status == 200, answer


# -- hostile JSON --------------------------------------------------------------------------------


def nested(depth):
    return "[" * depth + "1" + "]" * depth


HOSTILE = [
    # id, path, raw body, status, words
    ("deep-in-instances", "/v1/models/churn:predict",
     ('{"instances": [[1, 2, 3, 4], %s]}' % nested(600)).encode(), 400, ["Instance 1", "'feats'", "nested"]),
    ("deeper-than-the-parser", VERTEX + ":explain", ('{"instances": %s}' % nested(5000)).encode(), 400,
     ["nests", "too deeply"]),
    ("boolean-for-a-float", "/v1/models/churn:predict",
     b'{"instances": [[1, 2, 3, 4], [1, true, 3, 4]]}', 400, ["Instance 1", "'feats'", "boolean"]),
    ("all-booleans", VERTEX + ":explain", b'{"instances": [[true, false, true, true]]}', 400,
     ["Instance 0", "'feats'", "boolean"]),
    ("boolean-columns", "/v1/models/churn:predict",
     b'{"inputs": {"feats": [[1, 2, 3, 4], [false, 2, 3, 4]]}}', 400, ["Instance 1", "'feats'", "boolean"]),
    ("utf-16", "/v1/models/churn:predict", json.dumps({"instances": GOOD}).encode("utf-16"), 400,
     ["not UTF-8", "RFC 8259"]),
    ("unicode-digit-version", "/v1/models/churn/versions/%D9%A1:predict", json.dumps({"instances": GOOD}).encode(),
     404, ["No such route"]),
    ("explain-names-the-bad-instance", "/v1/models/churn:explain",
     json.dumps({"instances": [[1, 2, 3, 4], ["a", "b", "c", "d"]]}).encode(), 400, ["Instance 1", "'feats'", "'a'"]),
]


@pytest.mark.parametrize("path, raw, status, words", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_json_gets_a_4xx_naming_instance_and_key(server, path, raw, status, words):
    got, answer, _ = request(server.port, "POST", path, raw=raw)
    assert got == status, answer
    for word in words:
        assert word in message(answer), message(answer)
    assert request(server.port, "POST", "/v1/models/churn:predict", {"instances": GOOD})[0] == 200


def test_booleans_feed_a_bool_input(tmp_path):
    """JSON booleans are refused for numbers only: a bool input takes them."""
    flag = tf.keras.Input((1,), dtype="bool", name="flag")
    feats = tf.keras.Input((2,), name="feats")
    both = tf.keras.layers.Concatenate()([feats, tf.keras.layers.Lambda(lambda b: tf.cast(b, "float32"))(flag)])
    model = tf.keras.Model([flag, feats], tf.keras.layers.Dense(1, name="score")(both))

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.bool, name="flag"),
                                  tf.TensorSpec([None, 2], tf.float32, name="feats")])
    def serve(flag, feats):
        return {"score": model([flag, feats])}

    path = str(tmp_path / "flags" / "1")
    tf.saved_model.save(model, path, signatures={"serving_default": serve})
    with ThreadServer(path) as flags:
        status, answer, _ = request(flags.port, "POST", "/v1/models/flags:predict",
                                    raw=b'{"instances": [{"flag": [true], "feats": [1, 2]}]}')
        assert status == 200, answer
        status, answer, _ = request(flags.port, "POST", "/v1/models/flags:predict",
                                    raw=b'{"instances": [{"flag": [true], "feats": [1, false]}]}')
    assert status == 400 and "'feats'" in answer["error"] and "boolean" in answer["error"], answer


def test_non_finite_outputs_are_written_as_tf_serving_writes_them_or_refused(server, trained):
    """An input that overflows float32: `:predict` writes the non-finite output as a token
    (never null); `:explain` refuses that instance, naming it, rather than a null error."""
    _, x = trained
    rows = [x[0].tolist(), [1e39, -1e39, 1e39, 1e39]]
    status, raw, _ = request(server.port, "POST", "/v1/models/churn:predict", {"instances": rows})
    assert status == 200 and "null" not in json.dumps(raw), raw
    status, answer, _ = request(server.port, "POST", VERTEX + ":explain", {"instances": rows})
    assert status == 400, answer
    assert "Instance 1" in message(answer) and "not a finite number" in message(answer), answer


# -- errors that are not the client's --------------------------------------------------------------


def test_failures_inside_tensorflow_are_500s_not_invalid_argument():
    from xai_callback.errors import SpecError
    from xai_callback.serve.explaining import explain_error

    internal = explain_error(tf.errors.InternalError(None, None, "kernel crashed"))
    assert internal.status == 500 and "kernel crashed" in internal.message
    assert explain_error(ValueError("TensorFlow's own ValueError")).status == 500
    assert explain_error(RuntimeError("a bug")).status == 500
    assert explain_error(SpecError("stepCount must be ...")).status == 400
    assert explain_error(tf.errors.InvalidArgumentError(None, None, "bad input")).status == 400


# -- KServe V1 and the Open Inference Protocol (V2) ------------------------------------------------


def test_model_status_format(server, kserve_server):
    status, answer, _ = request(kserve_server.port, "GET", "/v1/models/churn")
    assert (status, answer) == (200, {"name": "churn", "ready": True})
    status, answer, _ = request(server.port, "GET", "/v1/models/churn")
    assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"
    assert request(kserve_server.port, "GET", "/v1/models/other")[0] == 404


def test_v2_health_and_metadata(server):
    assert request(server.port, "GET", "/v2/health/live")[:2] == (200, {"live": True})
    assert request(server.port, "GET", "/v2/health/ready")[:2] == (200, {"ready": True})
    status, answer, _ = request(server.port, "GET", "/v2")
    assert status == 200 and answer["name"] == "xai-callback"
    status, answer, _ = request(server.port, "GET", "/v2/models/churn")
    assert status == 200, answer
    assert answer["versions"] == ["1"] and answer["platform"] == "tensorflow_savedmodel"
    assert answer["inputs"] == [{"name": "feats", "datatype": "FP32", "shape": [-1, 4]}]
    assert answer["outputs"] == [{"name": "score", "datatype": "FP32", "shape": [-1, 1]}]
    assert request(server.port, "GET", "/v2/models/churn/versions/1/ready")[:2] == (
        200, {"name": "churn", "ready": True})


def test_v2_infer_equals_predict(server, trained, version_path):
    _, x = trained
    body = {"id": "r1", "inputs": [{"name": "feats", "shape": [3, 4], "datatype": "FP32",
                                    "data": x[:3].ravel().tolist()}], "outputs": [{"name": "score"}]}
    status, answer, _ = request(server.port, "POST", "/v2/models/churn/infer", body)
    assert status == 200, answer
    assert answer["model_name"] == "churn" and answer["model_version"] == "1" and answer["id"] == "r1"
    (output,) = answer["outputs"]
    assert output["name"] == "score" and output["datatype"] == "FP32" and output["shape"] == [3, 1]
    np.testing.assert_allclose(output["data"], serving(version_path, x[:3]).ravel(), rtol=1e-6)
    body["inputs"][0]["data"] = x[:3].tolist()  # nested as the shape: read too
    assert request(server.port, "POST", "/v2/models/churn/versions/1/infer", body)[1] == answer


V2_BAD = [
    ("wrong-datatype", {"name": "feats", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4]},
     ["inputs[0]", "'feats'", "INT32", "FP32"]),
    ("shape-and-data", {"name": "feats", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
     ["'feats'", "4 values", "[2, 4]"]),
    ("shape-of-the-input", {"name": "feats", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
     ["'feats'", "[1, 3]", "[-1, 4]"]),
    ("unknown-input", {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
     ["'x'", "feats"]),
    ("boolean-data", {"name": "feats", "shape": [1, 4], "datatype": "FP32", "data": [1, True, 3, 4]},
     ["'feats'", "boolean"]),
    ("strings", {"name": "feats", "shape": [1, 4], "datatype": "FP32", "data": ["1", "2", "3", "4"]},
     ["'feats'", "FP32 values"]),
]


@pytest.mark.parametrize("tensor, words", [c[1:] for c in V2_BAD], ids=[c[0] for c in V2_BAD])
def test_v2_infer_refuses_tensors_that_do_not_fit(server, tensor, words):
    status, answer, _ = request(server.port, "POST", "/v2/models/churn/infer", {"inputs": [tensor]})
    assert status == 400, answer
    for word in words:
        assert word in answer["error"], answer["error"]


# -- Prometheus metrics -----------------------------------------------------------------------------


def sample(text, name, **labels):
    """The value of the metric `name` whose labels include `labels`, or 0."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_version_and_status(trained, version_path):
    _, x = trained
    with ThreadServer(version_path.rsplit("/", 1)[0]) as fresh:
        for _ in range(3):
            assert request(fresh.port, "POST", VERTEX + ":predict", {"instances": x[:2].tolist()})[0] == 200
        assert request(fresh.port, "POST", "/v1/models/churn:predict", {"instances": [[1, 2]]})[0] == 400
        assert request(fresh.port, "POST", "/v1/models/churn:explain", {"instances": x[:1].tolist()})[0] == 200
        status, text, headers = request(fresh.port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain"), text
    count = ":tensorflow:serving:request_count_total"
    assert sample(text, count, model_name="churn", model_version="1", API="predict", protocol="vertex",
                  status="200") == 3
    assert sample(text, count, API="predict", protocol="tf_serving", status="400") == 1
    assert sample(text, ":tensorflow:serving:request_latency_count", API="explain", status="200") == 1
    assert sample(text, "request_predict_seconds_count", model_name="churn") == 3
    assert sample(text, "request_explain_seconds_count", model_name="churn", method="integratedGradients") == 1
    assert not re.search(r'API="(alive|ready)"', text)  # probes are not counted


def test_no_metrics_option(version_path):
    with ThreadServer(version_path.rsplit("/", 1)[0], metrics=False) as quiet:
        status, answer, _ = request(quiet.port, "GET", "/metrics")
    assert status == 404, answer


def test_metrics_need_the_bearer_token(version_path):
    with ThreadServer(version_path.rsplit("/", 1)[0], bearer_token="s3cret") as guarded:
        assert request(guarded.port, "GET", "/metrics")[0] == 401
        status, text, _ = request(guarded.port, "GET", "/metrics", headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and ":tensorflow:serving:request_count" in text


def test_non_finite_predictions_are_tokens_not_null(server, trained):
    _, x = trained
    status, answer, _ = request(server.port, "POST", "/v1/models/churn:predict",
                                {"instances": [[float("nan"), 1.0, 2.0, 3.0]]})
    assert status == 200 and math.isnan(answer["predictions"][0][0])
