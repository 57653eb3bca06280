"""One model of the explanation spec and errors by kind.

The typed `spec` objects define every method's settings, defaults and
limits; the command line lists the methods without TensorFlow; local
explanations may pass Vertex AI's caps, a server may set its own; messages
name options as the caller writes them; an internal failure is not a usage
error.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import explain_exports as ex
from explain_exports import run_cli
from xai_callback.commands import explain_cmd
from xai_callback.errors import ExplanationFailedError, MethodNotSupportedError, SpecError
from xai_callback.explain import Explainer, algorithms, explain
from xai_callback.explain.settings import DEFAULT_PARAMETERS, settings_from_vertex
from xai_callback.names import ASSETS_EXTRA, SAMPLE_FILE, VERTEX_PARAMETERS_FILE
from xai_callback.signatures.tensor_io import encode_tensor_dict
from xai_callback.spec import methods
from xai_callback.spec.limits import LOCAL_LIMITS, VERTEX_LIMITS, Limits
from xai_callback.spec.options import CLI_SPELLING, REQUEST_SPELLING

X = np.array([[1.0, 2.0, 3.0], [-0.5, 4.0, 0.0]], np.float32)
METADATA = {"inputs": {"x": {"inputTensorName": "x", "inputBaselines": [0.0]}},
            "outputs": {"y": {"outputTensorName": "y"}}}


@pytest.fixture(scope="module")
def linear_dir(tmp_path_factory):
    return ex.linear_export(tmp_path_factory.mktemp("linear") / "1")


# --- one registry, read without TensorFlow -------------------------------------

@pytest.mark.slow  # its own process
def test_command_line_lists_methods_without_tensorflow():
    code = ("import sys, xai_callback, xai_callback.cli as cli\n"
            "parser = cli.build_parser()\n"
            "from xai_callback.spec.methods import METHOD_NAMES\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
            "print(sorted(METHOD_NAMES))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.replace("'", '"')) == sorted(
        ["integrated-gradients", "smoothgrad", "blur-ig", "sampled-shapley", "xrai"])


def test_every_registered_name_has_one_algorithm_bound_to_its_spec_class():
    found = algorithms()
    assert set(found) == set(methods.METHOD_NAMES)
    for name, cls in methods.METHOD_NAMES.items():
        assert issubclass(cls, found[name].SPEC), name


def test_the_defaults_are_written_once():
    assert DEFAULT_PARAMETERS == {"integratedGradientsAttribution": {"stepCount": methods.DEFAULT_STEP_COUNT}}
    settings = settings_from_vertex(METADATA, None, {"method": "sampled-shapley"})
    assert settings.method == methods.SampledShapley(path_count=methods.DEFAULT_PATH_COUNT)


# --- limits: Vertex AI's for exports, local ones for local explanations -------

def test_local_explanations_pass_vertex_caps_but_exports_do_not():
    settings = settings_from_vertex(METADATA, DEFAULT_PARAMETERS, {"step_count": 300})
    assert settings.method.step_count == 300
    with pytest.raises(SpecError, match=r"step_count.*300.*1 to 100.*Vertex AI's limit"):
        methods.IntegratedGradients(step_count=300)
    with pytest.raises(SpecError, match=r"`step_count` got 300; expected an integer from 1 to 100"):
        settings_from_vertex(METADATA, DEFAULT_PARAMETERS, {"step_count": 300}, limits=VERTEX_LIMITS)


def test_a_server_sets_its_own_limits():
    limits = Limits(max_step_count=200, max_path_count=20, max_noisy_sample_count=5)
    assert settings_from_vertex(METADATA, None, {"step_count": 200}, limits=limits).method.step_count == 200
    with pytest.raises(SpecError, match=r"`pathCount` got 30.*1 to 20"):
        settings_from_vertex(METADATA, None, {"method": "sampled-shapley", "path_count": 30},
                             limits=limits, spelling=REQUEST_SPELLING)
    with pytest.raises(SpecError, match=r"noisy_sample_count.*9.*1 to 5"):
        settings_from_vertex(METADATA, None, {"method": "smoothgrad", "noise_sigma": 0.1,
                                              "noisy_sample_count": 9}, limits=limits)
    with pytest.raises(TypeError, match=r"max_step_count.*'many'"):
        Limits(max_step_count="many")


def test_explainer_applies_its_limits(linear_dir):
    from xai_callback.explain import load_explainer

    strict = load_explainer(linear_dir, limits=VERTEX_LIMITS)
    with pytest.raises(SpecError, match="1 to 100"):
        strict.explain_instances(X.tolist(), step_count=101)
    assert load_explainer(linear_dir).explain_instances(X.tolist(), step_count=101).method == (
        "integrated-gradients(stepCount=101)")


# --- options: how each method is chosen and set ------------------------------

def test_method_names_and_their_options():
    stored = methods.IntegratedGradients(step_count=80)
    smooth = settings_from_vertex(METADATA, stored.to_parameters(),
                                  {"method": "smooth_grad", "noise_sigma": 0.2}).method
    assert smooth.name == "smoothgrad" and smooth.step_count == 80  # the stored steps are kept
    assert smooth.smooth_grad.noise_sigma == 0.2 and smooth.smooth_grad.noisy_sample_count == 3
    back = settings_from_vertex(METADATA, smooth.to_parameters(), {"method": "ig"}).method
    assert back == methods.IntegratedGradients(step_count=80)
    with pytest.raises(SpecError, match=r"smoothgrad.*needs a noise.*noise_sigma="):
        settings_from_vertex(METADATA, None, {"method": "smoothgrad"})
    with pytest.raises(MethodNotSupportedError, match=r"--method gradcam.*xrai"):
        settings_from_vertex(METADATA, None, {"method": "gradcam"}, spelling=CLI_SPELLING)
    with pytest.raises(TypeError, match=r"--paths 3.*integrated-gradients.*--steps"):
        settings_from_vertex(METADATA, None, {"path_count": 3}, spelling=CLI_SPELLING)


# --- errors by kind ----------------------------------------------------------

@tf.custom_gradient
def _no_gradient(x):
    def grad(upstream):
        # What TensorFlow raises for a gradient it cannot take through a graph
        # (the LSTM case): a ValueError that is not the caller's.
        raise ValueError("Internal error: Tried to take gradients (or similar) of a variable "
                         "without handle data")
    return tf.identity(x), grad


def test_a_tensorflow_failure_is_an_internal_error_not_a_usage_error():
    explainer = Explainer(lambda x: {"y": tf.reduce_sum(_no_gradient(x), axis=1)}, METADATA)
    with pytest.raises(ExplanationFailedError) as caught:
        explainer.explain({"x": X})
    error = caught.value
    assert not isinstance(error, ValueError)  # a caller catching usage errors does not swallow it
    assert isinstance(error.cause, ValueError) and "handle data" in str(error)
    assert error.method == "integrated-gradients(stepCount=50)"
    # Sampled Shapley takes no gradient: the same model explains.
    assert explainer.explain({"x": X}, method="sampled-shapley", path_count=2).explanations


def internal_failure_export(path):
    """Runs on 0s and 1s, refuses every point in between: integrated gradients'
    path cannot be evaluated, though the instances and baselines are fine. Its
    stored method, sampled Shapley, never leaves 0s and 1s, so the export is
    explanation-ready (validate runs the stored method) and only an override to
    integrated gradients fails, inside TensorFlow."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serving(x):
        ok = tf.reduce_all((x <= 0.1) | (x >= 0.9))
        with tf.control_dependencies([tf.debugging.Assert(ok, ["points between 0.1 and 0.9"])]):
            return {"y": tf.reduce_sum(x * x, axis=1)}

    module.serving = serving
    tf.saved_model.save(module, str(path), signatures={"serving_default": serving})
    extra = path / ASSETS_EXTRA
    extra.mkdir()
    (extra / VERTEX_PARAMETERS_FILE).write_text(json.dumps({"sampledShapleyAttribution": {"pathCount": 2}}))
    (extra / SAMPLE_FILE).write_text(json.dumps(encode_tensor_dict({"x": tf.ones([2, 3])})))
    return str(path)


def test_cli_exit_codes_by_kind(linear_dir, tmp_path, capsys):
    instances = tmp_path / "x.jsonl"
    instances.write_text("[1.0, 1.0, 1.0]\n")
    failing = internal_failure_export(tmp_path / "failing")
    assert run_cli(failing, "--instances", instances, "--method", "integrated-gradients") == (
        explain_cmd.EXIT_INTERNAL) == 3
    assert "internal error" in capsys.readouterr().err
    # Its own method, which never leaves 0s and 1s, explains.
    assert run_cli(failing, "--instances", instances) == 0
    capsys.readouterr()
    # Usage errors exit 2 and name the flag, not the Python keyword.
    assert run_cli(linear_dir, "--instances", instances, "--method", "smoothgrad") == 2
    err = capsys.readouterr().err
    assert "--noise-sigma" in err and "noise_sigma=" not in err
    assert run_cli(linear_dir, "--instances", instances, "--method", "blur-ig",
                   "--max-blur-sigma", 3) == 2
    assert "--method integrated-gradients" in capsys.readouterr().err


def test_cli_smoothgrad_flags(linear_dir, tmp_path, capsys):
    instances = tmp_path / "x.jsonl"
    instances.write_text("[1.0, 2.0, 3.0]\n")
    assert run_cli(linear_dir, "--instances", instances, "--method", "smoothgrad",
                   "--noise-sigma", 0.1, "--noisy-sample-count", 4, "--steps", 20) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["explanations"][0]["attributions"][0]["featureAttributions"]["x"]


def test_cli_export_with_a_method_computed_elsewhere_names_the_flag(tmp_path, capsys):
    path = ex.linear_export(tmp_path / "1", parameters={
        "examples": {"neighborCount": 3, "presets": {"query": "FAST", "modality": "TABULAR"}}})
    instances = tmp_path / "x.jsonl"
    instances.write_text("[1.0, 2.0, 3.0]\n")
    assert run_cli(path, "--instances", instances) == 2
    err = capsys.readouterr().err
    assert "'examples'" in err and "--method" in err and "method=" not in err


# --- SmoothGrad's approximationError, as documented -------------------------

def test_smoothgrad_error_is_the_integration_gap_of_the_noisy_copies():
    """For a linear model integrated gradients are exact, so the documented
    `approximationError` (against the mean output of the noisy copies) is ~0,
    while `sum(attributions)` differs from f(x) - f(baseline) by the noise's
    mean effect, w . mean(noise)."""
    weights = np.array([0.5, -2.0, 1.5], np.float32)
    explainer = Explainer(lambda x: {"y": tf.linalg.matvec(x, weights)}, METADATA)
    response = explainer.explain({"x": X}, method="smoothgrad", noise_sigma=1.0,
                                 noisy_sample_count=4, step_count=3)
    gaps = []
    for explanation in response.explanations:
        (a,) = explanation.attributions
        assert a.approximation_error < 1e-5
        gaps.append(np.sum(a.feature_attributions["x"])
                    - (a.instance_output_value - a.baseline_output_value))
    assert max(abs(g) for g in gaps) > 0.05  # the smoothing, which no stepCount removes


def test_ig_and_blur_ig_in_one_parameters_set_are_refused_locally():
    parameters = {"integratedGradientsAttribution": {
        "stepCount": 10, "smoothGradConfig": {"noiseSigma": 0.1},
        "blurBaselineConfig": {"maxBlurSigma": 3.0}}}
    with pytest.raises(MethodNotSupportedError, match="keep one of them"):
        Explainer(lambda x: {"y": tf.reduce_sum(x, axis=1)}, METADATA, parameters).explain({"x": X})


def test_explain_uses_local_limits_by_default(linear_dir):
    response = explain(linear_dir, X.tolist(), method="sampled-shapley", path_count=60)
    assert response.method == "sampled-shapley(pathCount=60)"
    assert LOCAL_LIMITS.max_path_count is None
