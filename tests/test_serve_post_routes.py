"""`PostRoutes`: POSTs answered straight by their route's endpoint, byte for byte as through Starlette.

Two servers of the same export with the same options (bearer token, a small
body limit, a custom predict route): `build_app`'s app (POSTs through
`PostRoutes`) and the Starlette app behind it alone (its mounted protocols,
their middleware and error handlers). Every request gets the same status,
headers and body bytes from both; POSTs to a POST route never reach the
Starlette app behind the front, GETs and POSTs no route takes do.
"""

import http.client
import json

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import xai_callback  # noqa: E402
from models import trained_mlp  # noqa: E402
from serve_helpers import ThreadServer  # noqa: E402
from xai_callback.serve.post_routes import PostRoutes  # noqa: E402

TOKEN = "s3cret-token"
LIMIT = 4096
VERTEX = "/v1/projects/p/locations/us-central1/endpoints/123"
AIP_HEALTH = "/v1/endpoints/123/deployedModels/456"
AIP_PREDICT = AIP_HEALTH + ":predict"
ROWS = [[0.1, 0.2, 0.3, 0.4], [1.5, -2.0, 0.25, 3.0]]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class CountingApp:
    """An ASGI app counting the HTTP requests it passes on to `app`."""

    def __init__(self, app):
        self.app = app
        self.requests = 0

    async def __call__(self, scope, receive, send):
        self.requests += scope["type"] == "http"
        await self.app(scope, receive, send)


def count_behind_front(app):
    assert isinstance(app, PostRoutes)
    app.app = CountingApp(app.app)
    return app


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    model, _ = trained_mlp()
    base = str(tmp_path_factory.mktemp("serve") / "churn")
    xai_callback.export_explainable_model(model, base, versioned=True)
    options = dict(bearer_token=TOKEN, max_body_bytes=LIMIT, health_route=AIP_HEALTH,
                   predict_route=AIP_PREDICT)
    with ThreadServer(base, app_of=count_behind_front, **options) as front, \
            ThreadServer(base, app_of=lambda app: app.app, **options) as starlette:
        yield front, starlette


def exchange(port, method, path, body=b"", headers=AUTH):
    """`(status, headers that describe the answer, body bytes)` of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        data = response.read()
        kept = {k.lower(): v for k, v in response.getheaders() if k.lower() not in ("date", "server")}
        return response.status, kept, data
    finally:
        connection.close()


def encoded(body):
    return body if isinstance(body, bytes) else json.dumps(body).encode()


CASES = [
    # id, path, body, headers
    ("tf-serving-rows", "/v1/models/churn:predict", {"instances": ROWS}, AUTH),
    ("tf-serving-columns", "/v1/models/churn:predict", {"inputs": {"feats": ROWS}}, AUTH),
    ("tf-serving-version", "/v1/models/churn/versions/1:predict", {"instances": ROWS}, AUTH),
    ("tf-serving-case", "/V1/Models/churn:PREDICT", {"instances": ROWS}, AUTH),
    ("signature-name", "/v1/models/churn:predict", {"instances": ROWS, "signature_name": "xai_model"},
     AUTH),
    ("kserve-explain", "/v1/models/churn:explain", {"instances": ROWS[:1]}, AUTH),
    ("vertex-predict", VERTEX + ":predict", {"instances": ROWS}, AUTH),
    ("vertex-v1beta1-predict", VERTEX.replace("v1", "v1beta1", 1) + ":predict", {"instances": ROWS},
     AUTH),
    ("vertex-predict-explain", VERTEX + ":predict", {"instances": ROWS[:1], "parameters": {"explain": True}},
     AUTH),
    ("vertex-explain", VERTEX + ":explain", {"instances": ROWS[:1]}, AUTH),
    ("custom-predict-route", AIP_PREDICT, {"instances": ROWS}, AUTH),
    ("not-json", "/v1/models/churn:predict", b"{instances: [1]", AUTH),
    ("empty-body", VERTEX + ":predict", b"", AUTH),
    ("wrong-shape", "/v1/models/churn:predict", {"instances": [[1, 2, 3, 4], [1, 2, 3]]}, AUTH),
    ("vertex-wrong-shape", VERTEX + ":predict", {"instances": [[1, 2]]}, AUTH),
    ("unknown-key", VERTEX + ":predict", {"instance": ROWS}, AUTH),
    ("unknown-model", "/v1/models/sales:predict", {"instances": ROWS}, AUTH),
    ("unknown-version", "/v1/models/churn/versions/9:predict", {"instances": ROWS}, AUTH),
    ("classify-api", "/v1/models/churn:classify", {"examples": []}, AUTH),
    ("unknown-route", "/v1/models/churn:nothing", {"instances": ROWS}, AUTH),
    ("post-to-get-route", "/healthz", {"instances": ROWS}, AUTH),
    ("post-to-custom-health-route", AIP_HEALTH, {"instances": ROWS}, AUTH),
    ("post-to-root", "/", {"instances": ROWS}, AUTH),
    ("oversize", "/v1/models/churn:predict", {"instances": ROWS * 100}, AUTH),
    ("vertex-oversize", VERTEX + ":predict", {"instances": ROWS * 100}, AUTH),
    ("no-token", VERTEX + ":predict", {"instances": ROWS}, {}),
    ("wrong-token", "/v1/models/churn:predict", {"instances": ROWS}, {"Authorization": "Bearer wrong"}),
    ("no-token-unknown-route", "/nothing", {"instances": ROWS}, {}),
    ("v2-infer", "/v2/models/churn/infer",
     {"inputs": [{"name": "feats", "shape": [2, 4], "datatype": "FP32", "data": sum(ROWS, [])}]}, AUTH),
    ("v2-infer-no-token", "/v2/models/churn/infer", {"inputs": []}, {}),
    ("v2-infer-bad-datatype", "/v2/models/churn/infer",
     {"inputs": [{"name": "feats", "shape": [2, 4], "datatype": "INT8", "data": sum(ROWS, [])}]}, AUTH),
]


# POSTs no POST route takes (404s, 405s): Starlette's router answers them, not the front.
TO_STARLETTE = {"unknown-route", "post-to-get-route", "post-to-custom-health-route", "post-to-root",
                "no-token-unknown-route"}


@pytest.mark.parametrize("name, path, body, headers", CASES, ids=[case[0] for case in CASES])
def test_posts_answer_byte_for_byte_as_through_starlette(servers, name, path, body, headers):
    front, starlette = servers
    before = front.server.config.app.app.requests
    answers = [exchange(server.port, "POST", path, encoded(body), headers) for server in servers]
    assert answers[0] == answers[1]
    # answered by the front alone, or passed on
    assert front.server.config.app.app.requests == before + (name in TO_STARLETTE)


def test_body_limit_and_token_apply_in_front(servers):
    front, _ = servers
    status, _, data = exchange(front.port, "POST", "/v1/models/churn:predict",
                               encoded({"instances": ROWS * 100}))
    assert status == 413 and str(LIMIT) in json.loads(data)["error"]
    status, headers, data = exchange(front.port, "POST", VERTEX + ":predict", encoded({"instances": ROWS}),
                                     headers={"Authorization": "Bearer wrong"})
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert json.loads(data)["error"]["status"] == "UNAUTHENTICATED"
    status, _, data = exchange(front.port, "POST", VERTEX + ":predict", encoded({"instances": ROWS}))
    assert status == 200 and len(json.loads(data)["predictions"]) == len(ROWS)


@pytest.mark.parametrize("path, headers", [("/healthz", {}), ("/v1/models/churn", AUTH),
                                           ("/v1/models/churn/metadata", AUTH), ("/v1/models/churn", {})])
def test_gets_go_to_starlette(servers, path, headers):
    front, starlette = servers
    before = front.server.config.app.app.requests
    answers = [exchange(server.port, "GET", path, headers=headers) for server in servers]
    assert answers[0] == answers[1]
    assert front.server.config.app.app.requests == before + 1


def test_kept_routes_answer_as_found_ones_and_stay_bounded(servers, monkeypatch):
    """Every path's endpoint is found once and kept: the cases again, in reverse order and with
    the memory of paths overflowing (vertex paths take any endpoint id), answer as before."""
    from xai_callback.serve import post_routes

    front, starlette = servers
    monkeypatch.setattr(post_routes, "MAX_PATHS", 4)
    for endpoint_id in range(10):
        path = f"/v1/projects/p/locations/l/endpoints/{endpoint_id}:predict"
        status, _, data = exchange(front.port, "POST", path, encoded({"instances": ROWS}))
        assert status == 200 and len(json.loads(data)["predictions"]) == len(ROWS), data
        assert len(front.server.config.app._found) <= 4
    for name, path, body, headers in reversed(CASES):
        answers = [exchange(server.port, "POST", path, encoded(body), headers) for server in servers]
        assert answers[0] == answers[1], name
