"""XRAI and blurred-image baselines, through PAIR's saliency library.

A tiny CNN trained on generated images (a bright square on the left or the
right); its export declares XRAI, Vertex AI's method for images. Completeness
is checked against the SavedModel's own signatures, not against the tool's
`approximationError` alone.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from xai_callback import XRAI, ExplainableExporter, ExplanationSpec, Feature, XaiExportCallback
from xai_callback import export_explainable_model, validate
from explain_exports import run_cli
from xai_callback.errors import MethodNotSupportedError
from xai_callback.explain import explain

# Models trained per test and whole explanation runs: the full tier (`make test`), not `make test-fast`.
pytestmark = pytest.mark.slow

SIZE = 32
STEPS = 40


def images(count, seed):
    """Dim noise with a bright 8x8 square; label 1 when the square is on the left."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, (count, SIZE, SIZE, 3)).astype("float32")
    left = rng.integers(0, 2, count)
    for i in range(count):
        row, col = rng.integers(4, 20), rng.integers(2, 8) + (0 if left[i] else 16)
        x[i, row:row + 8, col:col + 8] += 0.8
    return x, left


def xrai_spec(**method):
    return ExplanationSpec(
        features=[Feature("pixels", input_key="image", modality="image", baselines=[0.0])],
        method=XRAI(step_count=STEPS, **method))


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    x, y = images(256, 0)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3), name="image"),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(4),
        keras.layers.Flatten(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return model, x


@pytest.fixture(scope="module")
def xrai_dir(trained, tmp_path_factory):
    model, x = trained
    path = str(tmp_path_factory.mktemp("xrai") / "1")
    export_explainable_model(model, path, explanation_spec=xrai_spec(), sample=x[:4])
    return path


def outputs_of(path, signature, batch):
    loaded = tf.saved_model.load(path)
    fn = loaded.signatures[signature]
    (key,) = fn.structured_outputs
    return fn(image=tf.constant(batch))[key].numpy()


def test_xrai_regions_in_vertex_form_add_up_to_the_model_output(xrai_dir, trained):
    _, x = trained
    batch = x[:2]
    response = explain(xrai_dir, batch)
    assert response.method == f"xrai(stepCount={STEPS})"
    served = outputs_of(xrai_dir, "serving_default", batch)
    at_baseline = outputs_of(xrai_dir, "xai_model", np.zeros_like(batch[:1]))[0]
    for i, explanation in enumerate(response.explanations):
        (a,) = explanation.attributions
        pixels = np.asarray(a.feature_attributions["pixels"])
        assert pixels.shape == (SIZE, SIZE, 3)  # shaped like the image
        # Regions: one value per region, far fewer than pixels; channels equal.
        assert len(np.unique(pixels.round(12))) < SIZE * SIZE / 20
        np.testing.assert_allclose(pixels[..., 0], pixels[..., 2])
        # f(x) and f(baseline) are the SavedModel's own outputs.
        index = a.output_index[0]
        assert a.instance_output_value == pytest.approx(served[i, index], rel=1e-5)
        assert a.baseline_output_value == pytest.approx(at_baseline[index], rel=1e-5)
        change = served[i, index] - at_baseline[index]
        # XRAI redistributes integrated gradients: their sum is kept, and misses
        # f(x) - f(baseline) by the reported approximation error (IG's gap).
        assert abs(pixels.sum() - change) == pytest.approx(a.approximation_error * abs(change),
                                                           rel=1e-3, abs=1e-7)
        assert a.approximation_error < 0.05


def test_xrai_keeps_the_integrated_gradients_total(xrai_dir, trained):
    _, x = trained
    xrai = explain(xrai_dir, x[:1]).explanations[0].attributions[0]
    ig = explain(xrai_dir, x[:1], method="integrated-gradients",
                 step_count=STEPS).explanations[0].attributions[0]
    assert np.sum(xrai.feature_attributions["pixels"]) == pytest.approx(
        np.sum(ig.feature_attributions["pixels"]), rel=1e-6)
    assert xrai.approximation_error == pytest.approx(ig.approximation_error, rel=1e-6)
    # The bright square (where the model looks) ranks above the dim background.
    assert np.abs(xrai.feature_attributions["pixels"]).max() > 0


def test_cli_explains_xrai(xrai_dir, trained, tmp_path, capsys):
    _, x = trained
    instances = tmp_path / "images.jsonl"
    instances.write_text("\n".join(json.dumps({"image": row.tolist()}) for row in x[:1]))
    assert run_cli(xrai_dir, "--instances", instances) == 0
    body = json.loads(capsys.readouterr().out)
    pixels = body["explanations"][0]["attributions"][0]["featureAttributions"]["pixels"]
    assert np.shape(pixels) == (SIZE, SIZE, 3)


def test_blur_ig_starts_from_the_blurred_image(xrai_dir, trained):
    _, x = trained
    sigma = 4.0
    response = explain(xrai_dir, x[:2], method="blur-ig", max_blur_sigma=sigma, step_count=STEPS)
    assert response.method == f"blur-ig(stepCount={STEPS}, maxBlurSigma={sigma})"
    # The baseline is each image blurred over height and width (zero padding).
    blurred = np.stack([ndimage.gaussian_filter(image, [sigma, sigma, 0], mode="constant")
                        for image in x[:2]])
    at_blurred = outputs_of(xrai_dir, "xai_model", blurred)
    for i, explanation in enumerate(response.explanations):
        (a,) = explanation.attributions
        index = a.output_index[0]
        assert a.baseline_output_value == pytest.approx(at_blurred[i, index], rel=1e-5)
        change = a.instance_output_value - a.baseline_output_value
        total = np.sum(a.feature_attributions["pixels"])
        assert abs(total - change) == pytest.approx(a.approximation_error * abs(change),
                                                    rel=1e-3, abs=1e-7)


def test_blur_ig_needs_its_sigma(xrai_dir, trained):
    _, x = trained
    with pytest.raises(ValueError, match="max_blur_sigma="):
        explain(xrai_dir, x[:1], method="blur-ig")


def test_xai_explain_refuses_xrai_at_declaration(trained, tmp_path):
    model, _ = trained
    for declare in (lambda: ExplainableExporter(model, explanation_spec=xrai_spec(),
                                                explain_signature=True),
                    lambda: XaiExportCallback(str(tmp_path / "out"), explanation_spec=xrai_spec(),
                                              explain_signature=True)):
        with pytest.raises(MethodNotSupportedError, match=r"xrai.*segmentation.*not a graph op"):
            declare()


def test_validate_says_which_routes_explain_xrai(xrai_dir):
    routes = validate(xrai_dir)["routes"]
    assert routes.passed
    assert "Python explainer" in routes.reason and "not by `xai_explain`" in routes.reason
