"""`xai_explain` answered as TF Serving answers it: `signature_name`
on the REST predict route of `xai-callback serve`, plain JSON out, equal to `explain`."""

import numpy as np
import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from explain_checks import quiet  # noqa: E402
from preprocessing_models import petfinder_model  # noqa: E402
from serve_helpers import ThreadServer, request  # noqa: E402
from xai_callback import export_explainable_model  # noqa: E402
from xai_callback.explain import explain  # noqa: E402
from xai_callback.explain.signature import signature_outputs  # noqa: E402

pytestmark = pytest.mark.slow  # own processes or servers: skipped by `make test-fast`


@pytest.fixture(scope="module")
def petfinder(tmp_path_factory):
    """The automatic split of the PetFinder model, with the signature."""
    model, rows = petfinder_model()
    base = tmp_path_factory.mktemp("serve_explain") / "pets"
    export_explainable_model(model, str(base / "1"), explain_signature=True)
    instances = [{k: v[i].tolist()[0] for k, v in rows.items()} for i in range(3)]
    return str(base), instances


def test_xai_explain_through_the_predict_route(petfinder):
    base, instances = petfinder
    response = quiet(explain, base + "/1", instances)
    expected = signature_outputs(response)
    with ThreadServer(base) as server:
        status, body, _ = request(server.port, "POST", "/v1/models/pets:predict",
                                  {"signature_name": "xai_explain", "instances": instances})
        assert status == 200, body
        rows = body["predictions"]
        assert len(rows) == 3
        predictions = sorted(set(rows[0]) - set(expected))  # the model's outputs, beside the explanation
        assert predictions and all(key.startswith("prediction_") for key in predictions), sorted(rows[0])
        for key, want in expected.items():
            got = np.array([row[key] for row in rows])
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=key)
        served = np.ravel([row[predictions[0]] for row in rows])
        np.testing.assert_allclose(served, np.ravel(expected["instance_output"]), rtol=1e-5)
        # columnar, as TF Serving's "inputs" form
        columns = {k: [[i[k]] for i in instances] for k in instances[0]}
        status, body, _ = request(server.port, "POST", "/v1/models/pets:predict",
                                  {"signature_name": "xai_explain", "inputs": columns})
        assert status == 200, body
        np.testing.assert_allclose(body["outputs"]["attribution_Type"], expected["attribution_Type"],
                                   rtol=1e-5, atol=1e-6)
