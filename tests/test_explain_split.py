"""End to end: exports written by the AUTOMATIC split, explained per raw feature and per token.

The models are the tutorial shapes of `preprocessing_models.py` (PetFinder,
TextVectorization -> Embedding -> pooling, wide & deep with a cross, keras.io's
FeatureSpace), exported with defaults and no `sample`.
"""

import numpy as np
import pytest
import tensorflow as tf

from xai_callback import ExplanationSpec, Feature, SampledShapley, export_explainable_model, validate
from xai_callback.explain import explain, load_explainer
from xai_callback.explain.instances import instances_to_tensors
from xai_callback.explain.signature import signature_outputs

from explain_checks import assert_complete, quiet, units
from preprocessing_models import feature_space_models, petfinder_model, text_classifier, wide_deep_model

pytestmark = pytest.mark.slow  # whole trainings and splits of tutorial models: the full suite runs them, `make test-fast` does not


def export(model, tmp_path_factory, name, **options):
    path = str(tmp_path_factory.mktemp("explain_split") / name)
    export_explainable_model(model, path, **options)
    return path


def rows_as_instances(rows, count):
    return [{k: v[i].tolist()[0] for k, v in rows.items()} for i in range(count)]


@pytest.fixture(scope="module")
def petfinder(tmp_path_factory):
    model, rows = petfinder_model()
    return export(model, tmp_path_factory, "petfinder", explain_signature=True), rows


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    model, rows = text_classifier()
    return export(model, tmp_path_factory, "text", explain_signature=True), rows


@pytest.fixture(scope="module")
def wide_deep(tmp_path_factory):
    model, rows = wide_deep_model()
    return export(model, tmp_path_factory, "wide_deep"), rows


def test_petfinder_one_attribution_per_raw_feature(petfinder):
    path, rows = petfinder
    report = validate(path)
    assert report.ok, str(report)
    assert report["explain_signature"].status == "PASS"
    instances = rows_as_instances(rows, 4)
    for method, options in (("integrated-gradients", {}), ("sampled-shapley", {"path_count": 10})):
        response = quiet(explain, path, instances, method=method, **options)
        for a in units(response):
            assert set(a.feature_attributions) == set(rows)  # the raw inputs, nothing else
            for name in ("Type", "Color1", "MaturitySize", "Age"):
                assert np.ndim(a.feature_attributions[name]) == 0
        assert_complete(response, exact=method == "sampled-shapley")
    assert response.explanations[0].inputs["Type"] == rows["Type"][0, 0].encode()


def test_petfinder_signature_equals_the_explainer(petfinder):
    path, rows = petfinder
    explainer = load_explainer(path)
    inputs = instances_to_tensors(rows_as_instances(rows, 3), explainer.instance_specs)
    expected = signature_outputs(quiet(explainer.explain, inputs))
    got = tf.saved_model.load(path).signatures["xai_explain"](**inputs)
    for key, want in expected.items():
        np.testing.assert_allclose(got[key].numpy(), want, rtol=1e-5, atol=1e-7, err_msg=key)


def test_text_one_attribution_per_token(text):
    path, rows = text
    assert validate(path).ok
    texts = [rows["text"][i, 0] for i in range(3)]
    for method, options in (("integrated-gradients", {}), ("sampled-shapley", {"path_count": 10})):
        response = quiet(explain, path, texts, method=method, **options)
        for explanation, sentence in zip(response.explanations, texts):
            count = len(sentence.split())
            tokens = explanation.tokens["text"]
            assert len(tokens) == 8 and all(t == "" for t in tokens[count:])
            assert all(t for t in tokens[:count])  # a string (or [UNK]) per word
            per_token = explanation.attributions[0].feature_attributions["text"]
            assert per_token.shape == (8,) and np.all(per_token[count:] == 0.0)
        assert_complete(response, exact=method == "sampled-shapley")
    got = tf.saved_model.load(path).signatures["xai_explain"](text=tf.constant([[texts[0]]]))
    assert got["tokens_text"].numpy()[0].astype(str).tolist() == response.explanations[0].tokens["text"]


def test_wide_and_deep_groups_and_crosses(wide_deep):
    path, rows = wide_deep
    assert validate(path).ok
    response = explain(path, rows_as_instances(rows, 3))
    for a in units(response):
        # Color1's one-hot and embedding reported as one; the cross as its own feature
        assert set(a.feature_attributions) == {"Color1", "Fee", "Type_X_Color1"}
        assert np.ndim(a.feature_attributions["Color1"]) == 0
    encoded = explain(path, rows_as_instances(rows, 3), granularity="encoded")
    for a, e in zip(units(response), units(encoded)):
        assert a.feature_attributions["Color1"] == pytest.approx(
            np.sum(e.feature_attributions["Color1"]) + np.sum(e.feature_attributions["Color1_embedding"]))
    assert_complete(response)


def test_bad_empty_baseline_fails_validate_naming_the_feature(tmp_path_factory):
    """FeatureSpace's lookups have num_oov_indices=0: "" cannot be looked up."""
    _, _, inference_model, rows = feature_space_models()
    spec = ExplanationSpec(features=[
        Feature("thal", baselines=[""]), Feature("sex", baselines=[0]), Feature("cp", baselines=[0]),
        Feature("age", baselines=[50.0]), Feature("chol", baselines=[200.0])],
        method=SampledShapley(path_count=4))
    path = export(inference_model, tmp_path_factory, "fs_bad", split=False, explanation_spec=spec)
    result = validate(path)["baselines_run"]
    assert result.status == "FAIL"
    assert "feature 'thal'" in result.reason and "baseline ''" in result.reason


def test_feature_space_inference_model_per_raw_feature(tmp_path_factory):
    """keras.io's FeatureSpace: Discretization bins, a hashed cross, lookups
    without OOV; both methods attribute per raw feature, the cross on its own."""
    _, _, inference_model, rows = feature_space_models()
    path = export(inference_model, tmp_path_factory, "fs_inference")
    assert validate(path).ok
    instances = rows_as_instances(rows, 3)
    for method, options in (("integrated-gradients", {}), ("sampled-shapley", {"path_count": 8})):
        response = quiet(explain, path, instances, method=method, **options)
        for a in units(response):
            assert set(a.feature_attributions) == {"age", "chol", "cp", "sex", "thal", "sex_X_age"}
            # a category, a bin or a crossed bucket is one number; a [None, 1] number stays [1]
            assert all(np.size(v) == 1 for v in a.feature_attributions.values())
            assert np.ndim(a.feature_attributions["thal"]) == 0
        assert_complete(response, exact=method == "sampled-shapley")
