"""Local explanations: exactness, completeness, export == live model, bad input."""

import base64
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

import explain_exports as ex
from explain_checks import assert_same_response
from xai_callback.errors import ExportVerificationError, SpecError
from xai_callback.explain import Explainer, InstanceError, MethodNotSupportedError, explain, load_explainer

X = np.array([[1.0, 2.0, 3.0], [-0.5, 4.0, 0.0], [0.3, -0.2, 1.5]], np.float32)
IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], np.float32)
IRIS_BASELINES = [[5.8, 3.0, 3.8, 1.2], [4.0, 2.0, 1.0, 0.1]]


def csv_lines(rows):
    return [",".join(str(v) for v in row) for row in rows.tolist()]


def attributions(response, feature):
    return np.array([a.feature_attributions[feature] for e in response.explanations
                     for a in e.attributions])


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def linear_dir(tmp_path_factory):
    return ex.linear_export(
        tmp_path_factory.mktemp("linear") / "1",
        metadata={"inputs": {"measurements": {"inputTensorName": "x",
                                              "inputBaselines": [[0.5, 0.0, -1.0]]}},
                  "outputs": {"score": {"outputTensorName": "y"}}},
        parameters={"integratedGradientsAttribution": {"stepCount": 7}},
    )


@pytest.fixture(scope="module")
def csv_metadata():
    return {
        "inputs": {"iris": {"inputTensorName": "features", "inputBaselines": IRIS_BASELINES,
                            "encoding": "BAG_OF_FEATURES",
                            "indexFeatureMapping": ["sl", "sw", "pl", "pw"]}},
        "outputs": {"species": {"outputTensorName": "probabilities",
                                "indexDisplayNameMapping": ex.CLASSES}},
    }


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory, csv_metadata):
    return ex.csv_export(tmp_path_factory.mktemp("csv") / "1", metadata=csv_metadata,
                         parameters={"integratedGradientsAttribution": {"stepCount": 50}, "topK": 1})


@pytest.fixture(scope="module")
def csv_explainer(csv_dir):
    return load_explainer(csv_dir)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    metadata = {
        "inputs": {"picture": {"inputTensorName": "image", "inputBaselines": [0.0, 1.0],
                               "modality": "image",
                               "visualization": {"type": "PIXELS", "polarity": "BOTH",
                                                 "colorMap": "PINK_GREEN", "overlayType": "GRAYSCALE",
                                                 "clipPercentUpperbound": 99.0,
                                                 "clipPercentLowerbound": 10.0}}},
        "outputs": {"scores": {"outputTensorName": "scores", "indexDisplayNameMapping": ["cat", "dog"]}},
    }
    return ex.image_export(tmp_path_factory.mktemp("image") / "1", metadata,
                           {"integratedGradientsAttribution": {"stepCount": 20}})


# --- exactness ---------------------------------------------------------------

def test_integrated_gradients_on_linear_export_is_exact(linear_dir):
    response = explain(linear_dir, X.tolist())
    baseline = np.array([0.5, 0.0, -1.0], np.float32)
    np.testing.assert_allclose(attributions(response, "measurements"), (X - baseline) * ex.LINEAR_W,
                               rtol=1e-6, atol=1e-6)
    first = response.explanations[0].attributions[0]
    assert first.baseline_output_value == pytest.approx(float(baseline @ ex.LINEAR_W + ex.LINEAR_B))
    assert first.instance_output_value == pytest.approx(float(X[0] @ ex.LINEAR_W + ex.LINEAR_B))
    assert first.approximation_error < 1e-6
    assert response.method == "integrated-gradients(stepCount=7)"  # from the parameters file


def test_sampled_shapley_on_additive_model_is_exact():
    scales = tf.constant([1.0, -2.0, 0.5])

    def additive(x):  # non-linear but additive: Shapley values are f_i(x_i) - f_i(b_i)
        return {"y": tf.reduce_sum(tf.sin(x) * scales + x ** 2, axis=1)}

    metadata = {"inputs": {"x": {"inputTensorName": "x", "inputBaselines": [[0.1, 0.2, 0.3]]}},
                "outputs": {"y": {"outputTensorName": "y"}}}
    response = Explainer(additive, metadata).explain({"x": X}, method="sampled-shapley", path_count=4)
    part = lambda v: np.sin(v) * scales.numpy() + v ** 2  # noqa: E731
    expected = part(X.astype(np.float64)) - part(np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(attributions(response, "x"), expected, rtol=1e-5, atol=1e-5)
    assert all(a.approximation_error < 1e-5 for e in response.explanations for a in e.attributions)


def test_sampled_shapley_on_linear_export_matches_contributions(linear_dir):
    response = explain(linear_dir, X.tolist(), method="sampled-shapley", path_count=3)
    np.testing.assert_allclose(attributions(response, "measurements"),
                               (X - [0.5, 0.0, -1.0]) * ex.LINEAR_W, rtol=1e-5, atol=1e-5)


def test_several_baselines_are_averaged(tmp_path):
    path = ex.linear_export(tmp_path / "1", metadata={
        "inputs": {"x": {"inputTensorName": "x", "inputBaselines": [0.0, [1.0, 2.0, 3.0]]}},
        "outputs": {"y": {"outputTensorName": "y"}}})
    response = explain(path, X.tolist(), step_count=3)
    mean_baseline = np.array([0.5, 1.0, 1.5])
    np.testing.assert_allclose(attributions(response, "x"), (X - mean_baseline) * ex.LINEAR_W, rtol=1e-6)
    first = response.explanations[0].attributions[0]
    assert first.baseline_output_value == pytest.approx(float(mean_baseline @ ex.LINEAR_W + ex.LINEAR_B))


# --- completeness and approximation error -------------------------------------

def test_completeness_within_reported_error_which_falls_with_steps(csv_explainer):
    errors = []
    for steps in (2, 8, 32, 100):
        response = quiet(csv_explainer.explain_instances, csv_lines(IRIS), step_count=steps, top_k=-1)
        for explanation in response.explanations:
            for a in explanation.attributions:
                change = a.instance_output_value - a.baseline_output_value
                gap = abs(np.sum(a.feature_attributions["iris"]) - change)
                # the reported error is this completeness gap relative to the output change
                assert gap == pytest.approx(a.approximation_error * abs(change), rel=1e-3, abs=1e-6)
        errors.append(max(a.approximation_error for e in response.explanations for a in e.attributions))
    assert errors == sorted(errors, reverse=True), errors
    assert errors[-1] < 0.01 < errors[0], errors


def test_low_step_count_warns_naming_the_setting(csv_explainer):
    with pytest.warns(UserWarning, match=r"approximationError.*raise stepCount"):
        csv_explainer.explain_instances(csv_lines(IRIS), step_count=1)


def test_shapley_sampling_error_falls_with_paths():
    def interacting(x):
        return {"y": x[:, 0] * x[:, 1] + tf.sin(x[:, 2] * x[:, 0])}

    explainer = Explainer(interacting)
    errors = [np.mean([a.approximation_error for e in quiet(
        explainer.explain, {"x": X}, method="sampled-shapley", path_count=paths, seed=3).explanations
        for a in e.attributions]) for paths in (4, 64)]
    assert errors[1] < errors[0] / 2, errors


def test_chunking_does_not_change_results(csv_explainer):
    progress = []
    chunked = csv_explainer.explain_instances(csv_lines(IRIS), step_count=10, top_k=2,
                                              max_rows_per_call=7,
                                              progress=lambda done, total: progress.append((done, total)))
    whole = csv_explainer.explain_instances(csv_lines(IRIS), step_count=10, top_k=2)
    np.testing.assert_allclose(attributions(chunked, "iris"), attributions(whole, "iris"), rtol=1e-6, atol=1e-7)
    total = 3 * 2 * 2 * 11  # instances x outputs x baselines x (steps + 1)
    assert progress[-1] == (total, total) and len(progress) == -(-total // 7)


# --- export == live model; preprocess; outputs --------------------------------

def test_export_attributions_equal_live_keras_model(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.Dense(5, activation="tanh")(inputs)))
    fn = tf.function(lambda x: {"out": model(x)}, input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    module = tf.Module()
    module.model = model
    metadata = {"inputs": {"x": {"inputTensorName": "x", "inputBaselines": [[0.1, 0.1, 0.1]]}},
                "outputs": {"p": {"outputTensorName": "out"}}}
    parameters = {"integratedGradientsAttribution": {"stepCount": 25}, "topK": 2}
    path = ex.save_export(tmp_path / "1", module, fn, fn, metadata=metadata, parameters=parameters)
    from_export = quiet(explain, path, X.tolist())
    live = quiet(Explainer(lambda x: {"out": model(x)}, metadata, parameters).explain, {"x": X})
    np.testing.assert_allclose(from_export.predictions, live.predictions, rtol=1e-6)
    np.testing.assert_allclose(attributions(from_export, "x"), attributions(live, "x"), rtol=1e-5, atol=1e-7)
    assert [a.output_index for e in from_export.explanations for a in e.attributions] == \
        [a.output_index for e in live.explanations for a in e.attributions]


def test_preprocessed_export_equals_float_model(csv_explainer, csv_metadata):
    response = csv_explainer.explain_instances(csv_lines(IRIS))
    model = ex.mlp_fn(ex.mlp_weights())
    live = Explainer(model, csv_metadata).explain({"features": IRIS})
    np.testing.assert_allclose(attributions(response, "iris"), attributions(live, "iris"), rtol=1e-5, atol=1e-6)
    probabilities = model(tf.constant(IRIS))["probabilities"].numpy()
    first = response.explanations[0].attributions[0]
    # the metadata's outputTensorName picks "probabilities" among two outputs
    assert first.output_index == [int(np.argmax(probabilities[0]))]
    assert first.output_display_name == ex.CLASSES[first.output_index[0]]
    assert first.instance_output_value == pytest.approx(float(probabilities[0].max()), rel=1e-5)
    assert set(response.predictions[0]) == {"logits", "probabilities"}


def test_custom_serving_default_outputs_are_the_predictions(tmp_path):
    spec = tf.TensorSpec([None, 3], tf.float32, name="x")
    model = tf.function(ex.linear_fn, input_signature=[spec])
    serving = tf.function(lambda x: {**ex.linear_fn(x), "positive": ex.linear_fn(x)["y"] > 0},
                          input_signature=[spec])
    path = ex.save_export(tmp_path / "1", tf.Module(), serving, model)
    response = explain(path, X.tolist())
    y = X @ ex.LINEAR_W + ex.LINEAR_B
    assert [p["positive"] for p in response.predictions] == (y > 0).tolist()
    np.testing.assert_allclose([p["y"] for p in response.predictions], y, rtol=1e-6)


def test_output_key_override_and_output_indices(csv_explainer):
    response = csv_explainer.explain_instances(csv_lines(IRIS[:1]), output_key="logits",
                                               output_indices=[2, 0])
    chosen = response.explanations[0].attributions
    assert [a.output_index for a in chosen] == [[2], [0]]
    assert [a.output_display_name for a in chosen] == ["virginica", "setosa"]
    logits = ex.mlp_fn(ex.mlp_weights())(tf.constant(IRIS[:1]))["logits"].numpy()[0]
    assert chosen[0].instance_output_value == pytest.approx(float(logits[2]), rel=1e-5)


def test_top_k_explains_largest_outputs_in_order(csv_explainer):
    response = csv_explainer.explain_instances(csv_lines(IRIS[1:2]), top_k=3)
    values = [a.instance_output_value for a in response.explanations[0].attributions]
    assert len(values) == 3 and values == sorted(values, reverse=True)


def test_image_export_with_b64_instances(image_dir):
    instances = [{"b64": base64.b64encode(ex.png_bytes(seed)).decode()} for seed in (0, 1)]
    response = explain(image_dir, instances, top_k=2)
    picture = response.explanations[0].attributions[0].feature_attributions["picture"]
    assert picture.shape == (8, 8, 3)
    pixels = tf.io.decode_png(ex.png_bytes(0)).numpy().astype(np.float32) / 255.0
    model = ex.image_model_fn(ex.conv_weights())
    live = Explainer(model, response.metadata,
                     {"integratedGradientsAttribution": {"stepCount": 20}}).explain(
        {"image": pixels[None]}, top_k=2)
    np.testing.assert_allclose(picture, live.explanations[0].attributions[0].feature_attributions["picture"],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(response.explanations[0].inputs["picture"], pixels)
    assert [a.output_display_name for a in response.explanations[1].attributions] in (["cat", "dog"], ["dog", "cat"])


def test_export_without_spec_files_uses_defaults(tmp_path):
    path = ex.linear_export(tmp_path / "1")
    response = explain(path, {"x": X.tolist()})  # columnar instances
    np.testing.assert_allclose(attributions(response, "x"), X * ex.LINEAR_W, rtol=1e-6, atol=1e-6)
    assert response.method == "integrated-gradients(stepCount=50)"
    assert response.explanations[0].attributions[0].output_name == "y"


def test_smoothgrad_adds_noise_only_to_named_features(linear_dir):
    noisy = explain(linear_dir, X.tolist(), method="smoothgrad", noisy_sample_count=5,
                    feature_noise_sigma={"measurements": 0.5})
    plain = explain(linear_dir, X.tolist())
    assert not np.allclose(attributions(noisy, "measurements"), attributions(plain, "measurements"))
    again = explain(linear_dir, X.tolist(), method="smoothgrad", noisy_sample_count=5, noise_sigma=0.5)
    # same seed, same sigma through noiseSigma: identical noise
    np.testing.assert_allclose(attributions(again, "measurements"), attributions(noisy, "measurements"))
    assert "smoothgrad" in noisy.method


def test_response_json_has_service_field_names(csv_explainer):
    body = json.loads(csv_explainer.explain_instances(csv_lines(IRIS[:2])).to_json())
    assert set(body) == {"explanations", "predictions"}
    attribution = body["explanations"][1]["attributions"][0]
    assert set(attribution) == {"baselineOutputValue", "instanceOutputValue", "featureAttributions",
                                "outputIndex", "outputDisplayName", "outputName", "approximationError"}
    assert len(attribution["featureAttributions"]["iris"]) == 4
    assert attribution["outputName"] == "species"


def test_ids_export_explained_by_shapley(tmp_path):
    response = explain(ex.ids_export(tmp_path / "1"), [[1, 3], [2, 4]], method="sampled-shapley",
                       path_count=2)
    table = np.array([0.0, 1.0, -2.0, 3.0, 0.5])
    np.testing.assert_allclose(attributions(response, "ids"), table[[[1, 3], [2, 4]]] - table[0], atol=1e-6)


# --- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("instances, named", [
    ([{"features": [1, 2, 3, 4]}], "csv_line"),                  # wrong key
    ([{"csv_line": "1,2,3,4", "extra": 1}], "extra"),           # unexpected key
    ([3.5], "3.5"),                                             # number for a string input
])
def test_instances_not_matching_serving_default(csv_explainer, instances, named):
    with pytest.raises(InstanceError, match=named):
        csv_explainer.explain_instances(instances)


@pytest.mark.parametrize("instances, named", [
    ([[1.0, 2.0]], r"\[3\].*\[2\]"),                           # wrong shape
    ([[1.0, "two", 3.0]], "'two'"),                            # not a number
    ([{"b64": "AAAA"}], "b64"),                                # binary for a float input
    ([[1, 2, 3], [1, 2]], "'x'"),                               # ragged
])
def test_bad_values_for_float_input(linear_dir, instances, named):
    explainer = load_explainer(linear_dir)
    with pytest.raises(InstanceError, match=named):
        explainer.explain_instances(instances)


def test_integrated_gradients_refused_on_int_inputs(tmp_path):
    path = ex.ids_export(tmp_path / "1")
    with pytest.raises(ExportVerificationError, match=r"differentiability.*'ids'.*int32"):
        explain(path, [[1, 3]])  # the stored (default) method is IG
    with pytest.raises(MethodNotSupportedError, match=r"'ids' of dtype int32.*sampled-shapley"):
        explain(path, [[1, 3]], method="integrated-gradients")


def test_export_failing_validation_is_refused(tmp_path):
    module = tf.Module()
    model = tf.function(lambda features: {"y": tf.reduce_sum(features, axis=1)},
                        input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    preprocess = tf.function(lambda csv_line: {"features": tf.cast(ex.parse_csv(csv_line)["features"], tf.float64)},
                             input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
    serving = tf.function(lambda csv_line: model(**ex.parse_csv(csv_line)),
                          input_signature=[tf.TensorSpec([None], tf.string, name="csv_line")])
    path = ex.save_export(tmp_path / "1", module, serving, model, preprocess)
    with pytest.raises(ExportVerificationError, match="features"):
        explain(path, ["1,2,3,4"])


def test_metadata_naming_a_missing_tensor(tmp_path):
    path = ex.linear_export(tmp_path / "1", metadata={
        "inputs": {"f": {"inputTensorName": "x:0"}}, "outputs": {"y": {"outputTensorName": "y"}}})
    with pytest.raises(ExportVerificationError, match=r"metadata_names.*'x:0'"):
        explain(path, X.tolist())
    with pytest.raises(SpecError, match=r"'x:0'.*\['x'\]"):
        explain(path, X.tolist(), validate=False)


@pytest.mark.parametrize("parameters, error, named", [
    ({"integratedGradientsAttribution": {"stepCount": 5}, "sampledShapleyAttribution": {"pathCount": 2}},
     SpecError, "exactly one"),
    ({"xraiAttribution": {"stepCount": 5}}, MethodNotSupportedError, "xraiAttribution"),
    ({"integratedGradientsAttribution": {"stepCount": 0}}, SpecError, "stepCount"),
    # example-based only: not silently answered with integrated gradients
    ({"examples": {"neighborCount": 3, "presets": {"query": "FAST", "modality": "TABULAR"}}},
     MethodNotSupportedError, "'examples'"),
])
def test_bad_parameters(linear_dir, parameters, error, named):
    explainer = load_explainer(linear_dir)
    explainer.parameters = parameters
    with pytest.raises(error, match=named):
        explainer.explain_instances(X.tolist())


def test_option_of_another_method_is_refused(linear_dir):
    with pytest.raises(TypeError, match="path_count"):
        explain(linear_dir, X.tolist(), path_count=5)
    with pytest.raises(MethodNotSupportedError, match="'gradcam'"):
        explain(linear_dir, X.tolist(), method="gradcam")


# --- honest quality signals ----------------------------------------------------

SIX = np.array([[1.0, 1.2, 0.9, 1.1, 1.3, 0.8], [0.7, 1.4, 1.0, 1.2, 0.9, 1.1]], np.float32)


def product(x):
    """Pure interaction: only the full coalition moves the output from a zero baseline."""
    return {"y": tf.reduce_prod(x, axis=1)}


def test_shapley_warning_advises_more_paths_only_below_the_maximum():
    explainer = Explainer(product)
    with pytest.warns(UserWarning, match=r"raise pathCount .*now 10.*about [0-9.]+ at 50"):
        explainer.explain({"x": SIX}, method="sampled-shapley", path_count=10)
    with pytest.warns(UserWarning) as caught:
        response = explainer.explain({"x": SIX}, method="sampled-shapley", path_count=50)
    message = str(caught[0].message)
    assert "already Vertex's maximum (50)" in message and "raise pathCount" not in message
    for a in (a for e in response.explanations for a in e.attributions):
        # the sum stays exact whatever the sampling error
        assert np.sum(a.feature_attributions["x"]) == pytest.approx(
            a.instance_output_value - a.baseline_output_value, abs=1e-5)


def test_shapley_takes_every_order_when_there_are_few_players():
    response = Explainer(product).explain({"x": SIX[:, :3]}, method="sampled-shapley", path_count=6)
    for row, a in zip(SIX[:, :3], (a for e in response.explanations for a in e.attributions)):
        np.testing.assert_allclose(a.feature_attributions["x"], np.full(3, np.prod(row) / 3), rtol=1e-6)
        assert a.approximation_error == 0.0


@pytest.mark.parametrize("scale", [0.0, 1e-14])
def test_output_blind_to_its_input_warns(scale):
    def blind(x):
        return {"y": scale * tf.reduce_sum(x, axis=1) + 1.0}

    with pytest.warns(UserWarning, match=r"does not respond to the explained inputs.*numerical noise"):
        Explainer(blind).explain({"x": X})


def test_validate_warns_when_the_output_ignores_the_features(tmp_path):
    spec = tf.TensorSpec([None, 3], tf.float32, name="x")
    fn = tf.function(lambda x: {"y": 1e-14 * tf.reduce_sum(x, axis=1) + 1.0}, input_signature=[spec])
    from xai_callback import validate

    report = validate(ex.save_export(tmp_path / "1", tf.Module(), fn, fn))
    assert report.ok and report["baselines_run"].status == "WARN"
    assert "same at the baselines and at all 4 sample instances" in report["baselines_run"].reason
    assert "(1 with a warning)" in str(report)


def test_float16_model_warning_names_rounding_not_steps(tmp_path):
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = keras.layers.Dense(1)
        layer.build((None, 2))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    layer.set_weights([np.full((2, 1), 0.1, np.float32), np.array([100.0], np.float32)])
    spec = tf.TensorSpec([None, 2], tf.float32, name="x")
    fn = tf.function(lambda x: {"y": tf.cast(layer(x), tf.float32)}, input_signature=[spec])
    module = tf.Module()
    module.layer = layer
    path = ex.save_export(tmp_path / "1", module, fn, fn)
    with pytest.warns(UserWarning) as caught:
        explain(path, [[0.25, 0.2]], step_count=50)
    message = str(caught[0].message)
    assert "float16" in message and "no stepCount removes" in message
    assert not message.split(":", 1)[1].strip().startswith("raise stepCount")


def test_concurrent_first_calls_trace_safely(csv_dir, csv_explainer):
    """Several threads explaining at once on a fresh explainer: TensorFlow builds a
    loaded signature's gradient without a lock, so the first traces must not race."""
    import threading

    methods = [("integrated-gradients", {}), ("sampled-shapley", {"path_count": 10}),
               ("smoothgrad", {"noisy_sample_count": 3, "noise_sigma": 0.1})] * 3
    expected = [csv_explainer.explain_instances(csv_lines(IRIS), method=m, **o).to_dict()
                for m, o in methods[:3]]
    for _ in range(3):  # the race showed in about one run in three before the lock
        explainer = load_explainer(csv_dir, validate=False)
        barrier, results, errors = threading.Barrier(len(methods)), {}, []

        def run(i, method, options):
            barrier.wait()
            try:
                results[i] = explainer.explain_instances(csv_lines(IRIS), method=method, **options)
            except Exception as e:  # reported below with the method
                errors.append(f"{method}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=run, args=(i, m, o)) for i, (m, o) in enumerate(methods)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        for i in range(len(methods)):
            # Threads may sum in another order: equal within a float tolerance.
            assert_same_response(results[i].to_dict(), expected[i % 3])
