"""`xai-callback serve`: every route over real HTTP, Google's own Vertex client, bad bodies, auth, batching.

Two servers for the module (uvicorn in a thread on 127.0.0.1, free ports): a
versioned base directory of a trained MLP, and a CSV-string export with an
extra signature behind a bearer token.
"""

import base64
import concurrent.futures
import json

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import xai_callback  # noqa: E402
from models import CSV_SIGNATURE, csv_lines, parse_csv, trained_mlp  # noqa: E402
from serve_helpers import ThreadServer, request  # noqa: E402
from xai_callback.explain import load_explainer  # noqa: E402

pytestmark = pytest.mark.slow  # a real server per module: skipped by `make test-fast`

TOKEN = "s3cret-token"
VERTEX = "/v1/projects/p/locations/us-central1/endpoints/123"


@pytest.fixture(scope="module")
def trained():
    return trained_mlp()


@pytest.fixture(scope="module")
def mlp_version(trained, tmp_path_factory):
    model, _ = trained
    base = tmp_path_factory.mktemp("serve") / "churn"
    return xai_callback.export_explainable_model(model, str(base), versioned=True).path


AIP_HEALTH = "/v1/endpoints/123/deployedModels/456"
AIP_PREDICT = AIP_HEALTH + ":predict"


@pytest.fixture(scope="module")
def server(mlp_version):
    with ThreadServer(mlp_version.rsplit("/", 1)[0], health_route=AIP_HEALTH,
                      predict_route=AIP_PREDICT) as running:
        yield running


def echo_lines(csv):
    return {"line_bytes": csv, "length": tf.strings.length(csv)}


@pytest.fixture(scope="module")
def csv_server(trained, tmp_path_factory):
    model, x = trained
    path = str(tmp_path_factory.mktemp("serve") / "csv")
    xai_callback.export_explainable_model(
        model, path, preprocess_fn=parse_csv, sample={"csv": csv_lines(x[:3])},
        extra_signatures={"echo": (echo_lines, CSV_SIGNATURE)})
    with ThreadServer(path, bearer_token=TOKEN, max_body_bytes=4096) as running:
        yield running


def auth(headers=None):
    return {"Authorization": f"Bearer {TOKEN}", **(headers or {})}


def serving(path, inputs):
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**inputs).items()}


# -- routes ------------------------------------------------------------------------


def test_health_readiness_status_and_model_list(server):
    assert request(server.port, "GET", "/healthz")[:2] == (200, {"status": "alive"})
    status, body, _ = request(server.port, "GET", "/readyz")
    assert (status, body["model"], body["version"]) == (200, "churn", 1)
    assert request(server.port, "GET", "/v1/models")[1] == {"models": ["churn"]}
    status, body, _ = request(server.port, "GET", "/v1/models/churn")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert request(server.port, "GET", "/v1/models/churn/versions/1")[1] == body


def test_metadata_lists_the_signature_defs(server):
    status, body, _ = request(server.port, "GET", "/v1/models/churn/versions/1/metadata")
    assert status == 200 and body["model_spec"] == {"name": "churn", "signature_name": "", "version": "1"}
    defs = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "xai_model"} <= set(defs)
    feats = defs["serving_default"]["inputs"]["feats"]
    assert feats["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in feats["tensor_shape"]["dim"]] == ["-1", "4"]


def test_predict_row_and_columnar_formats(server, trained, mlp_version):
    _, x = trained
    expected = serving(mlp_version, {"feats": tf.constant(x[:3])})["score"]
    status, rows, _ = request(server.port, "POST", "/v1/models/churn:predict",
                              {"instances": x[:3].tolist()})
    assert status == 200
    np.testing.assert_allclose(rows["predictions"], expected, rtol=1e-6)
    named = [{"feats": row} for row in x[:3].tolist()]
    status, by_name, _ = request(server.port, "POST", "/v1/models/churn/versions/1:predict",
                                 {"instances": named, "signature_name": "serving_default"})
    assert by_name == rows
    status, columns, _ = request(server.port, "POST", "/V1/MODELS/churn:predict",
                                 {"inputs": {"feats": x[:3].tolist()}})
    assert status == 200
    np.testing.assert_allclose(columns["outputs"], expected, rtol=1e-6)
    assert request(server.port, "POST", "/v1/models/churn:predict",
                   {"inputs": x[:3].tolist()})[1] == columns


def test_predict_any_signature_by_name(server, trained, mlp_version):
    _, x = trained
    status, body, _ = request(server.port, "POST", "/v1/models/churn:predict",
                              {"instances": x[:2].tolist(), "signature_name": "xai_model"})
    assert status == 200
    np.testing.assert_allclose(body["predictions"],
                               serving(mlp_version, {"feats": tf.constant(x[:2])})["score"], rtol=1e-6)


def test_kserve_explain_equals_local_explain(server, trained, mlp_version):
    _, x = trained
    instances = x[:3].tolist()
    status, body, _ = request(server.port, "POST", "/v1/models/churn:explain", {"instances": instances})
    assert status == 200
    assert body == json.loads(json.dumps(xai_callback.explain(mlp_version, instances).to_dict()))


def test_a_savedmodel_without_xai_model_is_served_but_not_explained(trained, tmp_path):
    """Keras' own `model.export` (signatures `serve`, `serving_default`): predict
    answers; explain is refused with the reason."""
    model, x = trained
    path = str(tmp_path / "plain" / "3")
    model.export(path, verbose=False)
    expected = tf.saved_model.load(path).signatures["serving_default"](tf.constant(x[:2]))
    with ThreadServer(path) as plain:
        status, body, _ = request(plain.port, "POST", "/v1/models/plain:predict", {"instances": x[:2].tolist()})
        assert status == 200, body
        np.testing.assert_allclose(body["predictions"], next(iter(expected.values())).numpy(), rtol=1e-6)
        status, body, _ = request(plain.port, "POST", VERTEX + ":explain", {"instances": x[:2].tolist()})
    assert status == 400 and body["error"]["status"] == "FAILED_PRECONDITION", body
    assert "Version 3 cannot be explained" in body["error"]["message"], body
    assert "['serve', 'serving_default'] but no 'xai_model'" in body["error"]["message"], body


def test_baseline_override_of_an_embedding_feature(tmp_path):
    """A split embedding feature is attributed on its embedding, with
    encodedBaselines: a Vertex `inputBaselines` override of it takes effect."""
    import keras

    keras.utils.set_random_seed(4)
    lookup = keras.layers.StringLookup(vocabulary=["a", "b", "c"])
    word = keras.Input((1,), dtype="string", name="word")
    embedded = keras.layers.Embedding(4, 3)(lookup(word))
    model = keras.Model(word, keras.layers.Dense(1, name="score")(keras.layers.Flatten()(embedded)))
    path = xai_callback.export_explainable_model(model, str(tmp_path / "words")).path
    instances, baseline = [["a"], ["c"]], [[0.5, -0.5, 0.25]]
    override = {"metadata": {"inputs": {"word": {"inputBaselines": [baseline]}}}}
    with ThreadServer(path) as words:
        status, body, _ = request(words.port, "POST", VERTEX + ":explain",
                                  {"instances": instances, "explanationSpecOverride": override})
    assert status == 200, body
    explainer = load_explainer(path)
    assert "encodedBaselines" in explainer.metadata["inputs"]["word"]
    plain = explainer.explain_instances(instances)
    explainer.metadata = {**explainer.metadata, "inputs": {
        "word": {**explainer.metadata["inputs"]["word"], "encodedBaselines": [baseline]}}}
    local = explainer.explain_instances(instances)
    for got, want, before in zip(body["explanations"], local.explanations, plain.explanations):
        assert got["attributions"][0]["baselineOutputValue"] == pytest.approx(
            want.attributions[0].baseline_output_value, rel=1e-6)
        assert want.attributions[0].baseline_output_value != pytest.approx(
            before.attributions[0].baseline_output_value, rel=1e-3)
        np.testing.assert_allclose(got["attributions"][0]["featureAttributions"]["word"],
                                   want.attributions[0].feature_attributions["word"], rtol=1e-6)


def test_baseline_override_refused_where_it_cannot_apply():
    """An encoded tensor other than the input: `inputBaselines` cannot say its baselines."""
    import types

    from xai_callback.serve.errors import ServeError
    from xai_callback.serve.explaining import metadata_with_baselines

    stored = types.SimpleNamespace(metadata={"inputs": {"word": {
        "inputTensorName": "word_ids", "encodedTensorName": "word_embedding",
        "encoding": "COMBINED_EMBEDDING", "encodedBaselines": [0.0]}}, "outputs": {}})
    with pytest.raises(ServeError, match="'word' is attributed on its encoded tensor 'word_embedding'") as e:
        metadata_with_baselines(stored, {"inputs": {"word": {"inputBaselines": [[1.0]]}}})
    assert e.value.status == 400 and "'word_ids' is another tensor" in str(e.value)


def test_explain_parameters_reach_the_explainer(server, trained, mlp_version):
    _, x = trained
    instances = x[:2].tolist()
    body = {"instances": instances, "parameters": {"method": "sampled-shapley", "pathCount": 10}}
    status, served, _ = request(server.port, "POST", "/v1/models/churn:explain", body)
    assert status == 200
    local = xai_callback.explain(mlp_version, instances, method="sampled-shapley", path_count=10)
    assert served == json.loads(json.dumps(local.to_dict()))


def test_vertex_custom_container_routes(server, trained, mlp_version):
    """AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE; `parameters.explain` adds explanations."""
    _, x = trained
    instances = x[:2].tolist()
    assert request(server.port, "GET", AIP_HEALTH)[0] == 200
    status, body, _ = request(server.port, "POST", AIP_PREDICT,
                              {"instances": instances, "parameters": {"threshold": 0.5}})
    assert status == 200 and set(body) == {"predictions", "deployedModelId", "modelVersionId"}
    status, explained, _ = request(server.port, "POST", AIP_PREDICT,
                                   {"instances": instances, "parameters": {"explain": {"stepCount": 20}}})
    assert status == 200
    local = xai_callback.explain(mlp_version, instances, step_count=20).to_dict()
    assert explained["explanations"] == json.loads(json.dumps(local["explanations"]))
    assert explained["predictions"] == body["predictions"]
    status, error, _ = request(server.port, "POST", AIP_PREDICT,
                               {"instances": instances, "parameters": {"explain": "yes"}})
    assert status == 400 and "'yes'" in error["error"]["message"]


def test_string_inputs_b64_and_bytes_outputs(csv_server, trained):
    _, x = trained
    lines = csv_lines(x[:2])
    encoded = [{"b64": base64.b64encode(line.encode()).decode()} for line in lines]
    status, plain, _ = request(csv_server.port, "POST", "/v1/models/csv:predict",
                               {"instances": lines}, headers=auth())
    assert status == 200
    assert request(csv_server.port, "POST", "/v1/models/csv:predict",
                   {"instances": encoded}, headers=auth())[1] == plain
    status, echo, _ = request(csv_server.port, "POST", "/v1/models/csv:predict",
                              {"instances": encoded, "signature_name": "echo"}, headers=auth())
    assert status == 200
    # several outputs: one object per instance; *_bytes outputs come back as b64
    assert echo["predictions"] == [{"length": len(line), "line_bytes": b64}
                                   for line, b64 in zip(lines, encoded)]


# -- Google's own client -----------------------------------------------------------


@pytest.fixture(scope="module")
def vertex_client(server):
    aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
    from google.auth.credentials import AnonymousCredentials

    return aiplatform_v1, aiplatform_v1.PredictionServiceClient(
        transport="rest", credentials=AnonymousCredentials(),
        client_options={"api_endpoint": server.url})


def as_dict(message):
    from google.protobuf import json_format

    return json_format.MessageToDict(type(message).pb(message))


def test_google_client_predict(vertex_client, trained, mlp_version):
    _, client = vertex_client
    _, x = trained
    response = as_dict(client.predict(endpoint=VERTEX[4:], instances=x[:3].tolist()))
    np.testing.assert_allclose(response["predictions"],
                               serving(mlp_version, {"feats": tf.constant(x[:3])})["score"], rtol=1e-6)
    assert response["deployedModelId"] == "1"


def test_google_client_explain_equals_local_explain(vertex_client, trained, mlp_version):
    aiplatform_v1, client = vertex_client
    _, x = trained
    instances = x[3:6].tolist()
    response = as_dict(client.explain(endpoint=VERTEX[4:], instances=instances))
    local = xai_callback.explain(mlp_version, instances)
    assert len(response["explanations"]) == 3
    for got, want in zip(response["explanations"], local.explanations):
        (attribution,) = got["attributions"]
        np.testing.assert_allclose(attribution["featureAttributions"]["feats"],
                                   want.attributions[0].feature_attributions["feats"], rtol=1e-6)
        assert attribution["instanceOutputValue"] == pytest.approx(
            want.attributions[0].instance_output_value, rel=1e-6)
        assert attribution["outputName"] == want.attributions[0].output_name


def test_google_client_explanation_spec_override(vertex_client, trained, mlp_version):
    aiplatform_v1, client = vertex_client
    _, x = trained
    instances, baseline = x[:2].tolist(), [0.5, -0.5, 0.25, 0.0]
    override = {"parameters": {"integratedGradientsAttribution": {"stepCount": 7}},
                "metadata": {"inputs": {"feats": {"inputBaselines": [baseline]}}}}
    explain_request = aiplatform_v1.ExplainRequest.from_json(json.dumps(
        {"endpoint": VERTEX[4:], "instances": instances, "explanationSpecOverride": override}))
    response = as_dict(client.explain(request=explain_request))
    explainer = load_explainer(mlp_version)
    explainer.metadata = {**explainer.metadata, "inputs": {
        "feats": {**explainer.metadata["inputs"]["feats"], "inputBaselines": [baseline]}}}
    local = explainer.explain_instances(instances, step_count=7)
    for got, want in zip(response["explanations"], local.explanations):
        np.testing.assert_allclose(got["attributions"][0]["featureAttributions"]["feats"],
                                   want.attributions[0].feature_attributions["feats"], rtol=1e-6)
        assert got["attributions"][0]["baselineOutputValue"] == pytest.approx(
            want.attributions[0].baseline_output_value, rel=1e-6)


def test_google_client_gets_the_error_message(vertex_client):
    from google.api_core import exceptions

    _, client = vertex_client
    with pytest.raises(exceptions.BadRequest, match=r"Instance 1.*'feats'.*\[3\]"):
        client.predict(endpoint=VERTEX[4:], instances=[[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]])


def test_google_client_with_bearer_token(csv_server, trained):
    """The client sends an OAuth access token as `Authorization: Bearer`."""
    aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
    from google.oauth2.credentials import Credentials

    _, x = trained
    client = aiplatform_v1.PredictionServiceClient(
        transport="rest", credentials=Credentials(TOKEN), client_options={"api_endpoint": csv_server.url})
    response = client.predict(endpoint=VERTEX[4:], instances=csv_lines(x[:2]))
    assert len(response.predictions) == 2


# -- bad bodies ----------------------------------------------------------------------

GOOD = [[0.1, 0.2, 0.3, 0.4]]
BAD_BODIES = [
    # id, path, body (dict, or raw bytes), status, words the message names
    ("not-json", "/v1/models/churn:predict", b"{instances: [1]", 400, ["not valid JSON"]),
    ("empty-body", "/v1/models/churn:predict", b"", 400, ["empty"]),
    ("body-is-a-list", "/v1/models/churn:predict", [[1, 2, 3, 4]], 400, ["JSON object", "list"]),
    ("unknown-body-key", "/v1/models/churn:predict", {"instance": GOOD}, 400, ["'instance'", "instances"]),
    ("rows-and-columns", "/v1/models/churn:predict", {"instances": GOOD, "inputs": GOOD}, 400,
     ["exactly one"]),
    ("instances-not-a-list", "/v1/models/churn:predict", {"instances": {"feats": 1}}, 400, ["list"]),
    ("wrong-instance-key", "/v1/models/churn:predict", {"instances": [{"x": [1, 2, 3, 4]}]}, 400,
     ["Instance 0", "'x'", "feats"]),
    ("wrong-shape", "/v1/models/churn:predict", {"instances": [[1, 2, 3, 4], [1, 2, 3]]}, 400,
     ["Instance 1", "'feats'", "[3]", "[4]"]),
    ("not-a-number", "/v1/models/churn:predict", {"instances": [[1, 2, 3, 4], [1, "a", 3, 4]]}, 400,
     ["Instance 1", "'feats'", "'a'"]),
    ("b64-into-floats", "/v1/models/churn:predict", {"instances": [[{"b64": "AAAA"}] * 4]}, 400,
     ["'feats'", "b64", "float32"]),
    ("columnar-not-a-batch", "/v1/models/churn:predict", {"inputs": {"feats": 3}}, 400,
     ["'feats'", "batch"]),
    ("wrong-signature", "/v1/models/churn:predict", {"instances": GOOD, "signature_name": "xai_explain"},
     400, ["'xai_explain'", "serving_default", "xai_model"]),
    ("unknown-model", "/v1/models/sales:predict", {"instances": GOOD}, 404, ["'sales'", "'churn'"]),
    ("unknown-version", "/v1/models/churn/versions/9:predict", {"instances": GOOD}, 404,
     ["Version 9", "version 1"]),
    ("version-label", "/v1/models/churn/labels/stable:predict", {"instances": GOOD}, 404, ["'stable'"]),
    ("classify-api", "/v1/models/churn:classify", {"examples": []}, 400, [":classify"]),
    ("unknown-explain-option", "/v1/models/churn:explain",
     {"instances": GOOD, "parameters": {"stepCount": 10, "colour": "red"}}, 400, ["colour"]),
    ("step-count-out-of-range", "/v1/models/churn:explain",
     {"instances": GOOD, "explanationSpecOverride": {
         "parameters": {"integratedGradientsAttribution": {"stepCount": 0}}}}, 400, ["stepCount", "0"]),
    ("override-unknown-feature", "/v1/models/churn:explain",
     {"instances": GOOD, "explanationSpecOverride": {
         "metadata": {"inputs": {"age": {"inputBaselines": [0]}}}}}, 400, ["'age'", "feats"]),
    ("override-unknown-key", "/v1/models/churn:explain",
     {"instances": GOOD, "explanationSpecOverride": {"parameter": {}}}, 400, ["'parameter'"]),
    ("examples-override", "/v1/models/churn:explain",
     {"instances": GOOD, "explanationSpecOverride": {"examplesOverride": {"neighborCount": 3}}}, 400,
     ["example-based"]),
    ("vertex-wrong-shape", VERTEX + ":predict", {"instances": [[1, 2]]}, 400, ["'feats'", "[2]"]),
    ("vertex-explain-bad-key", VERTEX + ":explain", {"instances": GOOD, "explanationSpec": {}}, 400,
     ["'explanationSpec'"]),
    ("unknown-route", "/v1/models/churn:nothing", {"instances": GOOD}, 404, ["No such route"]),
]


@pytest.mark.parametrize("path, body, status, words", [case[1:] for case in BAD_BODIES],
                         ids=[case[0] for case in BAD_BODIES])
def test_bad_bodies_get_a_clear_error(server, path, body, status, words):
    raw = body if isinstance(body, bytes) else None
    got, answer, _ = request(server.port, "POST", path, None if raw is not None else body, raw=raw)
    assert got == status, answer
    google = path.startswith("/v1/projects/")
    message = answer["error"]["message"] if google else answer["error"]
    if google:
        assert answer["error"]["code"] == status and answer["error"]["status"] == "INVALID_ARGUMENT"
    for word in words:
        assert word in message, message
    assert "Traceback" not in message


def test_bad_b64_and_unparsable_strings(csv_server, trained):
    _, x = trained
    status, body, _ = request(csv_server.port, "POST", "/v1/models/csv:predict",
                              {"instances": [csv_lines(x[:1])[0], {"b64": "not base64!"}]}, headers=auth())
    assert status == 400 and "Instance 1" in body["error"] and "'csv'" in body["error"]
    # Decodable, but the model's own parsing refuses it: still the client's 400, no traceback.
    status, body, _ = request(csv_server.port, "POST", "/v1/models/csv:predict",
                              {"instances": ["1,2,x,4"]}, headers=auth())
    assert status == 400 and "rejected the input" in body["error"] and "Traceback" not in body["error"]


def test_oversize_body_gets_413(csv_server):
    big = {"instances": ["1,2,3,4"] * 1000}  # > max_body_bytes=4096
    status, body, _ = request(csv_server.port, "POST", "/v1/models/csv:predict", big, headers=auth())
    assert status == 413 and "4096" in body["error"]
    status, body, _ = request(csv_server.port, "POST", VERTEX + ":predict", big, headers=auth())
    assert status == 413 and body["error"]["code"] == 413 and "4096" in body["error"]["message"]


def test_default_body_limit_is_vertex_size(server):
    body = json.dumps({"instances": [[0.123456789] * 4] * 40000}).encode()  # ~2 MB
    assert len(body) > 1.5 * 2**20
    status, answer, _ = request(server.port, "POST", "/v1/models/churn:predict", raw=body)
    assert status == 413 and str(1536 * 1024) in answer["error"]


# -- bearer token --------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}],
                         ids=["missing", "wrong", "no-scheme"])
def test_bearer_token_required(csv_server, headers):
    status, body, response_headers = request(csv_server.port, "POST", "/v1/models/csv:predict",
                                             {"instances": ["1,2,3,4"]}, headers=headers)
    assert status == 401 and "Bearer" in body["error"]
    assert response_headers.get("www-authenticate") == "Bearer"
    assert request(csv_server.port, "GET", "/v1/models/csv", headers=headers)[0] == 401


def test_health_routes_need_no_token(csv_server):
    assert request(csv_server.port, "GET", "/healthz")[0] == 200
    assert request(csv_server.port, "GET", "/readyz")[0] == 200
    assert request(csv_server.port, "GET", "/v1/models/csv", headers=auth())[0] == 200


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_requests_each_get_their_own_answer(csv_server, trained, mlp_version):
    """Merged predict calls are split back per request; a bad request fails alone."""
    _, x = trained
    expected = serving(mlp_version, {"feats": tf.constant(x[:48])})["score"]

    def call(i):
        lines = csv_lines(x[i:i + 1 + i % 3]) if i % 7 else ["1,2,x,4"]
        return i, request(csv_server.port, "POST", "/v1/models/csv:predict",
                          {"instances": lines}, headers=auth())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(40)))
    for i, (status, body, _) in results:
        if i % 7 == 0:
            assert status == 400, body
        else:
            assert status == 200, body
            np.testing.assert_allclose(body["predictions"], expected[i:i + 1 + i % 3], rtol=1e-5, atol=1e-5)


def test_concurrent_first_explanations(trained, tmp_path):
    """The first call of a method traces TensorFlow functions, which must not run
    concurrently on one model (TF's gradient construction is not thread-safe).
    Without a stored sample the server cannot warm the export up first."""
    model, x = trained
    path = xai_callback.export_explainable_model(model, str(tmp_path / "bare"), verify=False).path
    methods = [{"method": "integrated-gradients"}, {"method": "sampled-shapley", "pathCount": 10},
               {"method": "smoothgrad", "noisySampleCount": 3, "noiseSigma": 0.1}]
    for _ in range(3):  # each fresh server has traced nothing
        with ThreadServer(path, max_in_flight=8) as fresh:
            def call(i):
                return request(fresh.port, "POST", "/v1/models/bare:explain",
                               {"instances": x[i:i + 1].tolist(), "parameters": methods[i % 3]})

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                results = list(pool.map(call, range(8)))
        assert [status for status, _, _ in results] == [200] * 8, [b for _, b, _ in results]
