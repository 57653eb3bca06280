"""Explanation spec: declaration rules, Vertex JSON, round trips, legacy dialect.

Signatures are described by `tf.TensorSpec`s, exactly what the exporter and
`validate` read from a reloaded export; the gradient probe on real saved
models is covered in test_validation.py.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from xai_callback.errors import SpecError
from xai_callback.spec import (
    XRAI,
    ExplanationSpec,
    Feature,
    FeatureValueDomain,
    IntegratedGradients,
    Output,
    SampledShapley,
    SmoothGrad,
    Visualization,
    to_legacy_metadata,
)

F32 = tf.float32
TABULAR_IN = {"age": tf.TensorSpec([None, 1], F32), "scores": tf.TensorSpec([None, 4], F32)}
CLASSES_OUT = {"probs": tf.TensorSpec([None, 3], F32)}
TWO_OUT = {"probs": tf.TensorSpec([None, 3], F32), "price": tf.TensorSpec([None, 1], F32)}
IMAGE_IN = {"image": tf.TensorSpec([None, 8, 8, 3], F32)}


def full_spec():
    """A spec that sets every metadata and parameter field at least once."""
    return ExplanationSpec(
        features=[
            Feature("age", input_key="age", baselines=[[30.0], [40.0]],
                    feature_value_domain=FeatureValueDomain(0, 120, 38.5, 12.0),
                    group_name="person"),
            Feature("tokens", input_key="scores", encoding="BAG_OF_FEATURES",
                    index_feature_mapping=["a", "b", "c", "d"], baselines=np.zeros(4),
                    encoded_tensor_name="scores", encoded_baselines=[0.5],
                    indices_tensor_name="idx", dense_shape_tensor_name="shape"),
            Feature("photo", input_key="image", modality="image", baselines=np.zeros((8, 8, 3)),
                    visualization=Visualization("OUTLINES", "BOTH", "RED_GREEN", 99.0, 70.0,
                                                "GRAYSCALE")),
        ],
        output=Output("probs", name="species", index_display_name_mapping=["a", "b", "c"]),
        method=IntegratedGradients(
            step_count=25, max_blur_sigma=1.5,
            smooth_grad=SmoothGrad(feature_noise_sigma={"age": 0.1, "photo": 0.2},
                                   noisy_sample_count=7)),
        top_k=2,
        output_indices=[0, 2],
    )


FULL_IN = {**TABULAR_IN, **IMAGE_IN, "idx": tf.TensorSpec([None, 2], tf.int64),
           "shape": tf.TensorSpec([2], tf.int64)}


# --- defaults ---------------------------------------------------------------

def test_defaults_explain_every_input_with_zero_baseline_and_ig_50():
    metadata, parameters = ExplanationSpec().build(TABULAR_IN, CLASSES_OUT)
    assert metadata == {
        "inputs": {
            "age": {"inputTensorName": "age", "inputBaselines": [0.0],
                    "modality": "numeric", "encoding": "IDENTITY"},
            "scores": {"inputTensorName": "scores", "inputBaselines": [0.0],
                       "modality": "numeric", "encoding": "IDENTITY"},
        },
        "outputs": {"probs": {"outputTensorName": "probs"}},
    }
    assert parameters == {"integratedGradientsAttribution": {"stepCount": 50}}


def test_default_baseline_follows_the_input_dtype():
    metadata, parameters = ExplanationSpec(method="sampled_shapley").build(
        {"ids": tf.TensorSpec([None, 3], tf.int32), "text": tf.TensorSpec([None], tf.string)},
        CLASSES_OUT)
    assert metadata["inputs"]["ids"]["inputBaselines"] == [0]
    assert "inputBaselines" not in metadata["inputs"]["text"]
    assert parameters == {"sampledShapleyAttribution": {"pathCount": 10}}


def test_output_key_picks_one_of_several_outputs():
    metadata, _ = ExplanationSpec().build(TABULAR_IN, TWO_OUT, output_key="price")
    assert metadata["outputs"] == {"price": {"outputTensorName": "price"}}
    metadata, _ = ExplanationSpec(output="probs").build(TABULAR_IN, TWO_OUT)
    assert metadata["outputs"] == {"probs": {"outputTensorName": "probs"}}


def test_several_outputs_need_a_key():
    with pytest.raises(SpecError, match=r"several outputs \['price', 'probs'\]"):
        ExplanationSpec().build(TABULAR_IN, TWO_OUT)


def test_output_key_conflicting_with_declared_output_is_refused():
    with pytest.raises(SpecError, match="'probs'.*conflicts with output_key='price'"):
        ExplanationSpec(output="probs").build(TABULAR_IN, TWO_OUT, output_key="price")


def test_coerce_accepts_none_dict_and_spec():
    spec = full_spec()
    assert ExplanationSpec.coerce(None) == ExplanationSpec()
    assert ExplanationSpec.coerce(spec) is spec
    assert ExplanationSpec.coerce(spec.get_config()) == spec
    with pytest.raises(TypeError, match="'xrai'"):
        ExplanationSpec.coerce("xrai")


@pytest.mark.parametrize("identifier, expected", [
    (None, IntegratedGradients()),
    ("integrated_gradients", IntegratedGradients()),
    ("SampledShapley", SampledShapley()),
    ("xraiAttribution", XRAI()),
    ({"class_name": "SampledShapley", "config": {"path_count": 5}}, SampledShapley(5)),
    ({"integratedGradientsAttribution": {"stepCount": 80}}, IntegratedGradients(80)),
])
def test_method_from_name_config_or_vertex_json(identifier, expected):
    assert ExplanationSpec(method=identifier).method == expected


# --- round trips ------------------------------------------------------------

def test_every_metadata_field_round_trips_through_vertex_json():
    metadata, parameters = full_spec().build(FULL_IN, CLASSES_OUT)
    # The files are JSON: go through text, as a reader of the export does.
    metadata, parameters = json.loads(json.dumps(metadata)), json.loads(json.dumps(parameters))
    again = ExplanationSpec.from_vertex(metadata, parameters)
    assert again.build(FULL_IN, CLASSES_OUT) == (metadata, parameters)
    tokens = metadata["inputs"]["tokens"]
    assert tokens == {
        "inputTensorName": "scores", "inputBaselines": [[0.0, 0.0, 0.0, 0.0]],
        "modality": "numeric", "encoding": "BAG_OF_FEATURES",
        "indexFeatureMapping": ["a", "b", "c", "d"], "encodedTensorName": "scores",
        "encodedBaselines": [0.5], "indicesTensorName": "idx", "denseShapeTensorName": "shape",
    }
    assert metadata["inputs"]["age"]["featureValueDomain"] == {
        "minValue": 0.0, "maxValue": 120.0, "originalMean": 38.5, "originalStddev": 12.0}
    assert metadata["inputs"]["age"]["groupName"] == "person"
    assert metadata["outputs"] == {"species": {"outputTensorName": "probs",
                                               "indexDisplayNameMapping": ["a", "b", "c"]}}
    assert parameters == {
        "integratedGradientsAttribution": {
            "stepCount": 25,
            "blurBaselineConfig": {"maxBlurSigma": 1.5},
            "smoothGradConfig": {"noisySampleCount": 7, "featureNoiseSigma": {"noiseSigma": [
                {"name": "age", "sigma": 0.1}, {"name": "photo", "sigma": 0.2}]}},
        },
        "topK": 2,
        "outputIndices": [0, 2],
    }


def test_config_round_trips_exactly_as_plain_json():
    config = full_spec().get_config()
    text = json.dumps(config)  # plain dicts and lists only, numpy included
    assert ExplanationSpec.from_config(json.loads(text)).get_config() == config
    assert ExplanationSpec.from_config(config) == full_spec()


@pytest.mark.parametrize("method", [
    IntegratedGradients(step_count=1, smooth_grad=SmoothGrad(noise_sigma=0.3)),
    SampledShapley(path_count=50),
    XRAI(step_count=100, smooth_grad=SmoothGrad(noise_sigma=0.1, noisy_sample_count=50)),
], ids=["ig", "shapley", "xrai"])
def test_each_method_round_trips(method):
    features = [Feature("image", modality="image")]
    spec = ExplanationSpec(features=features, method=method)
    metadata, parameters = spec.build(IMAGE_IN, CLASSES_OUT)
    assert ExplanationSpec.from_vertex(metadata, parameters).method == method
    assert type(method).from_config(method.get_config()) == method


def test_numpy_and_tensor_baselines_become_json_lists():
    feature = Feature("scores", baselines=[np.full(4, 0.5, np.float32), tf.ones([4]),
                                           np.float64(2.0)])
    assert feature.baselines == [[0.5] * 4, [1.0] * 4, 2.0]
    assert Feature("scores", baselines=np.zeros(4)).baselines == [[0.0] * 4]  # one baseline
    assert Feature("scores", baselines=[0.0, 1.0]).baselines == [0.0, 1.0]  # two scalars
    metadata, _ = ExplanationSpec(features=[feature]).build(TABULAR_IN, CLASSES_OUT)
    json.dumps(metadata)


def test_baseline_may_broadcast_to_one_example():
    per_channel = Feature("image", modality="image", baselines=np.array([0.1, 0.2, 0.3]))
    metadata, _ = ExplanationSpec(features=[per_channel]).build(IMAGE_IN, CLASSES_OUT)
    assert metadata["inputs"]["image"]["inputBaselines"] == [[0.1, 0.2, 0.3]]


def test_multi_output_explains_the_chosen_output_with_class_names():
    spec = ExplanationSpec(output=Output("probs", index_display_name_mapping=["x", "y", "z"]),
                           top_k=-1)
    metadata, parameters = spec.build(TABULAR_IN, TWO_OUT)
    assert metadata["outputs"] == {"probs": {"outputTensorName": "probs",
                                             "indexDisplayNameMapping": ["x", "y", "z"]}}
    assert parameters["topK"] == -1


def test_image_visualization_defaults_and_uppercase_enums():
    metadata, parameters = ExplanationSpec(
        features=[Feature("image", modality="image")], method=XRAI()).build(IMAGE_IN, CLASSES_OUT)
    assert metadata["inputs"]["image"]["visualization"] == {
        "polarity": "POSITIVE", "clipPercentUpperbound": 99.9, "clipPercentLowerbound": 62.0,
        "overlayType": "NONE"}
    assert parameters == {"xraiAttribution": {"stepCount": 50}}
    lowercase = Visualization(type="pixels", polarity="both", color_map="viridis",
                              overlay_type="mask_black")
    assert lowercase.to_vertex() == {
        "type": "PIXELS", "polarity": "BOTH", "colorMap": "VIRIDIS",
        "clipPercentUpperbound": 99.9, "clipPercentLowerbound": 62.0, "overlayType": "MASK_BLACK"}


def test_legacy_metadata_is_snake_case_with_lowercase_enums():
    metadata, parameters = full_spec().build(FULL_IN, CLASSES_OUT)
    legacy = to_legacy_metadata(metadata, parameters)
    assert legacy["framework"] == "tensorflow2"
    assert legacy["outputs"] == {"species": {"output_tensor_name": "probs",
                                             "index_name_mapping": ["a", "b", "c"]}}
    assert legacy["inputs"]["age"] == {
        "input_tensor_name": "age", "input_baselines": [[30.0], [40.0]],
        "modality": "numeric", "encoding": "identity", "group_name": "person",
        "domain": {"min": 0.0, "max": 120.0, "original_mean": 38.5, "original_stddev": 12.0}}
    assert legacy["inputs"]["tokens"]["encoding"] == "bag_of_features"
    assert legacy["inputs"]["tokens"]["index_feature_mapping"] == ["a", "b", "c", "d"]
    assert legacy["inputs"]["photo"]["visualization"] == {
        "type": "outlines", "polarity": "both", "color_map": "red_green",
        "clip_above_percentile": 99.0, "clip_below_percentile": 70.0, "overlay_type": "grayscale"}


# --- bad input at declaration time ------------------------------------------
# Each case: the call, the error type, and text the message must contain
# (the bad value as received, and the field).

DECLARATION_ERRORS = {
    "feature name not a string": (lambda: Feature(123), TypeError, ["name", "123"]),
    "unknown modality": (lambda: Feature("a", modality="text"), SpecError, ["modality", "'text'"]),
    "unknown encoding": (lambda: Feature("a", encoding="ONE_HOT"), SpecError,
                         ["encoding", "'ONE_HOT'", "BAG_OF_FEATURES_SPARSE"]),
    "bag of features without mapping": (
        lambda: Feature("a", encoding="bag_of_features"), SpecError,
        ["index_feature_mapping", "BAG_OF_FEATURES"]),
    "mapping with identity": (
        lambda: Feature("a", index_feature_mapping=["x"]), SpecError,
        ["index_feature_mapping", "['x']", "IDENTITY"]),
    "eleven baselines": (lambda: Feature("a", baselines=[0.0] * 11), SpecError,
                         ["baselines", "11 baselines", "1 to 10"]),
    "no baselines": (lambda: Feature("a", baselines=[]), SpecError, ["0 baselines"]),
    "ragged baseline": (lambda: Feature("a", baselines=[[[1, 2], [3]]]), TypeError,
                        ["baselines[0]", "[[1, 2], [3]]", "ragged"]),
    "nan baseline": (lambda: Feature("a", baselines=[np.nan]), SpecError,
                     ["baselines[0]", "nan", "finite"]),
    "visualization on numeric": (
        lambda: Feature("a", visualization=Visualization()), SpecError,
        ["visualization", "'numeric'"]),
    "bad polarity": (lambda: Visualization(polarity="UP"), SpecError,
                     ["polarity", "'UP'", "POSITIVE"]),
    "clip bounds crossed": (
        lambda: Visualization(clip_percent_upperbound=50, clip_percent_lowerbound=60),
        SpecError, ["clip_percent_lowerbound", "60", "less than clip_percent_upperbound (50)"]),
    "clip above 100": (lambda: Visualization(clip_percent_upperbound=101), SpecError,
                       ["clip_percent_upperbound", "101", "<= 100"]),
    "domain min above max": (lambda: FeatureValueDomain(min_value=5, max_value=1), SpecError,
                             ["max_value", "1", "min_value (5)"]),
    "zero stddev": (lambda: FeatureValueDomain(original_stddev=0), SpecError,
                    ["original_stddev", "0", "> 0"]),
    "output with two mappings": (
        lambda: Output("p", index_display_name_mapping=["a"], display_name_mapping_key="k"),
        SpecError, ["display_name_mapping_key", "'k'", "not both"]),
    "class names not strings": (lambda: Output("p", index_display_name_mapping=["a", 2]),
                                SpecError, ["index_display_name_mapping", "['a', 2]"]),
    "ig step count 0": (lambda: IntegratedGradients(step_count=0), SpecError,
                        ["step_count", "0", "1 to 100"]),
    "ig step count 101": (lambda: IntegratedGradients(step_count=101), SpecError,
                          ["step_count", "101"]),
    "ig step count float": (lambda: IntegratedGradients(step_count=50.5), TypeError,
                            ["step_count", "50.5"]),
    "ig step count bool": (lambda: IntegratedGradients(step_count=True), TypeError,
                           ["step_count", "True"]),
    "xrai step count": (lambda: XRAI(step_count=500), SpecError, ["XRAI", "step_count", "500"]),
    "shapley path count 51": (lambda: SampledShapley(path_count=51), SpecError,
                              ["path_count", "51", "1 to 50"]),
    "noisy sample count 0": (lambda: SmoothGrad(noise_sigma=0.1, noisy_sample_count=0), SpecError,
                             ["noisy_sample_count", "0", "1 to 50"]),
    "smoothgrad without a sigma": (lambda: SmoothGrad(), SpecError,
                                   ["noise_sigma", "got None", "feature_noise_sigma", "no default"]),
    "smoothgrad json without a sigma": (
        lambda: ExplanationSpec(method={"integratedGradientsAttribution": {
            "stepCount": 50, "smoothGradConfig": {"noisySampleCount": 5}}}),
        SpecError, ["noise_sigma", "got None"]),
    "both noise sigmas": (lambda: SmoothGrad(noise_sigma=0.1, feature_noise_sigma={"a": 0.2}),
                          SpecError, ["feature_noise_sigma", "{'a': 0.2}", "not both"]),
    "negative noise sigma": (lambda: SmoothGrad(noise_sigma=-1), SpecError,
                             ["noise_sigma", "-1", "> 0"]),
    "blur sigma zero": (lambda: IntegratedGradients(max_blur_sigma=0), SpecError,
                        ["max_blur_sigma", "0"]),
    "two methods in one dict": (
        lambda: ExplanationSpec(method={"integratedGradientsAttribution": {"stepCount": 50},
                                        "sampledShapleyAttribution": {"pathCount": 10}}),
        SpecError, ["integratedGradientsAttribution", "sampledShapleyAttribution",
                    "exactly one"]),
    "unknown method name": (lambda: ExplanationSpec(method="lime"), SpecError,
                            ["method", "'lime'", "SampledShapley"]),
    "top_k zero": (lambda: ExplanationSpec(top_k=0), SpecError, ["top_k", "0", "-1"]),
    "negative output index": (lambda: ExplanationSpec(output_indices=[-1]), SpecError,
                              ["output_indices", "[-1]"]),
    "duplicate feature names": (
        lambda: ExplanationSpec(features=[Feature("a"), Feature("a", input_key="b")]),
        SpecError, ["features", "['a']", "unique"]),
    "xrai on numeric feature": (
        lambda: ExplanationSpec(features=[Feature("a")], method=XRAI()), SpecError,
        ["feature 'a'", "modality", "'numeric'", "image"]),
    "noise sigma for unknown feature": (
        lambda: ExplanationSpec(features=[Feature("a")], method=IntegratedGradients(
            smooth_grad=SmoothGrad(feature_noise_sigma={"b": 0.1}))),
        SpecError, ["featureNoiseSigma", "'b'", "['a']"]),
    "unknown feature config key": (
        lambda: Feature.from_config({"name": "a", "baseline": 0}), SpecError,
        ["Feature", "['baseline']", "baselines"]),
    "vertex keys at top level of a spec config": (
        lambda: ExplanationSpec.from_config({"integratedGradientsAttribution": {}}), SpecError,
        ["['integratedGradientsAttribution']", "method"]),
    "features not a list": (lambda: ExplanationSpec(features=Feature("a")), TypeError,
                            ["features", "Feature("]),
}


@pytest.mark.parametrize("case", sorted(DECLARATION_ERRORS))
def test_declaration_error_names_field_and_value(case):
    make, error, fragments = DECLARATION_ERRORS[case]
    with pytest.raises(error) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


# --- bad input against the signature (build) --------------------------------

BUILD_ERRORS = {
    "input key not in signature": (
        ExplanationSpec(features=[Feature("age", input_key="x:0")]), TABULAR_IN,
        ["feature 'age'", "inputTensorName (input_key)", "'x:0'", "['age', 'scores']"]),
    "output key not in signature": (
        ExplanationSpec(output="output_0"), TABULAR_IN,
        ["outputTensorName", "'output_0'", "['probs']"]),
    "encoded tensor not in signature": (
        ExplanationSpec(features=[Feature("age", encoded_tensor_name="emb")]), TABULAR_IN,
        ["encodedTensorName (encoded_tensor_name)", "'emb'"]),
    "baseline of the wrong shape": (
        ExplanationSpec(features=[Feature("scores", baselines=np.zeros(3))]), TABULAR_IN,
        ["inputBaselines (baselines)[0]", "shape [3]", "[4]", "float32[None,4]"]),
    "baseline with the batch dimension": (
        ExplanationSpec(features=[Feature("scores", baselines=np.zeros((1, 4)))]), TABULAR_IN,
        ["shape [1, 4]", "without the batch dimension"]),
    "text baseline for a float input": (
        ExplanationSpec(features=[Feature("age", baselines=["none"])]), TABULAR_IN,
        ["'none'", "float32", "numbers"]),
    "integer input with integrated gradients": (
        ExplanationSpec(), {"ids": tf.TensorSpec([None, 5], tf.int32)},
        ["feature 'ids'", "'ids'", "int32[None,5]", "SampledShapley()", "xai_preprocess"]),
    "xrai on default numeric features": (
        ExplanationSpec(method="xrai"), IMAGE_IN, ["modality", "'numeric'", "image"]),
    "feature names vs last axis": (
        ExplanationSpec(features=[Feature("scores", encoding="INDICATOR",
                                          index_feature_mapping=["a", "b"])]), TABULAR_IN,
        ["indexFeatureMapping", "2 names", "float32[None,4]"]),
    "class names vs output size": (
        ExplanationSpec(output=Output(index_display_name_mapping=["a", "b"])), TABULAR_IN,
        ["indexDisplayNameMapping", "shape [2]", "[3]"]),
    "output index out of range": (
        ExplanationSpec(output_indices=[1, 3]), TABULAR_IN,
        ["outputIndices (output_indices)", "[1, 3]", "index [3] is out of range"]),
}


@pytest.mark.parametrize("case", sorted(BUILD_ERRORS))
def test_build_error_names_field_and_value(case):
    spec, inputs, fragments = BUILD_ERRORS[case]
    with pytest.raises(SpecError) as info:
        spec.build(inputs, CLASSES_OUT)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_sampled_shapley_accepts_integer_inputs():
    metadata, parameters = ExplanationSpec(method=SampledShapley(20)).build(
        {"ids": tf.TensorSpec([None, 5], tf.int32)}, CLASSES_OUT)
    assert metadata["inputs"]["ids"]["inputTensorName"] == "ids"
    assert parameters == {"sampledShapleyAttribution": {"pathCount": 20}}


def test_from_vertex_refuses_legacy_dialect():
    legacy = to_legacy_metadata(ExplanationSpec().build(TABULAR_IN, CLASSES_OUT)[0])
    with pytest.raises(SpecError, match="'framework'"):
        ExplanationSpec.from_vertex(legacy, {"integratedGradientsAttribution": {"stepCount": 50}})
