"""What the conformance suite checks on each exported tutorial model.

`certify(path, instances, methods)` runs, in this process (TensorFlow only,
whatever wrote the export):

1. `validate`: explanation-ready, with the explanation rule run (not skipped);
2. `explain` with every method the row's features allow; each explanation adds
   up, checked from the SavedModel's own signatures (`completeness.py`), never
   from the tool's `approximationError` (gradient methods: at the stored
   stepCount, or else at 4x, where integration error must have fallen). SmoothGrad is run with a tiny noise
   sigma, where it must add up like integrated gradients (its noisy copies
   then differ from the instance by less than the integration error);
3. `xai_explain`: its attributions add up to its own outputs, its outputs
   equal `serving_default` and f(baseline) computed here, and the Python
   explainer's;
4. one `serve` request (`:explain`, a real server on 127.0.0.1): 200, the same
   attributions as `explain` and the predictions of `serving_default`.

`validate` and `explain` never disagree: a passing `validate` is followed by
every method explaining.
"""

import base64
import warnings

import numpy as np
import tensorflow as tf

import xai_callback
from completeness import assert_adds_up, baseline_outputs, completeness_gaps, explained_output
from serve_helpers import ThreadServer, request
from xai_callback.explain import load_explainer

ALL_METHODS = ("integrated-gradients", "smoothgrad", "sampled-shapley")
# Per method: options, and the allowed completeness gap relative to f(x) - f(baseline).
METHODS = {
    "integrated-gradients": ({}, 0.05),
    "smoothgrad": ({"noise_sigma": 1e-4, "noisy_sample_count": 2}, 0.05),
    "sampled-shapley": ({"path_count": 4}, 1e-3),
}
FINER_STEPS = (200, 800, 3200)  # 4x, 16x, 64x the default stepCount, when the default misses completeness
SERVED_MODEL = "model"


def certify(path, instances, methods=ALL_METHODS, rounding=1e-4):
    """Runs every check; returns what was checked, for the compatibility table."""
    report = xai_callback.validate(path)
    assert report.ok, f"validate:\n{report}"
    assert not report["explanations"].skipped, str(report)
    loaded = tf.saved_model.load(path)
    explainer = load_explainer(path)
    for method in methods:
        options, rtol = METHODS[method]
        response = _quiet(explainer.explain, instances, method=method, **options)
        try:
            assert_adds_up(response, path, loaded, instances, rtol=rtol, rounding=rounding)
        except AssertionError as e:
            if method == "sampled-shapley":
                raise AssertionError(f"{method}: {e}") from None
            # Integration error falls with the steps (ReLU kinks: as 1/steps); wrong gradients
            # do not: with 4x, 16x or 64x stepCount the attributions must add up (a path whose output
            # swings far more than it changes, e.g. an untrained ReLU regression, needs many steps).
            for steps in FINER_STEPS:
                finer = _quiet(explainer.explain, instances, method=method, step_count=steps,
                               **options)
                try:
                    assert_adds_up(finer, path, loaded, instances, rtol=rtol, rounding=rounding)
                    break
                except AssertionError as again:
                    if steps == FINER_STEPS[-1]:
                        raise AssertionError(f"{method}: {e}; with stepCount {steps}: {again}") from None
    stored = _quiet(explainer.explain, instances, seed=0)
    # xai_explain runs the stored settings: it may miss completeness as much as the
    # stored method does (which, above, was shown to converge with more steps).
    gaps = [abs(total - change) / max(abs(change), 1e-12)
            for total, change, _ in completeness_gaps(stored, path, loaded, instances)]
    check_xai_explain(path, loaded, instances, stored, rounding, rtol=max(0.05, 1.01 * max(gaps)))
    check_served(path, instances, stored)
    return {"methods": list(methods)}


def check_xai_explain(path, loaded, instances, stored, rounding, rtol=0.05):
    """`xai_explain` adds up to f(x) - f(baseline) computed from the other signatures."""
    assert "xai_explain" in loaded.signatures, sorted(loaded.signatures)
    tensors = {k: tf.convert_to_tensor(v) for k, v in instances.items()}
    got = {k: v.numpy() for k, v in loaded.signatures["xai_explain"](**tensors).items()}
    _, output_key = explained_output(path, loaded)
    f_x = np.asarray(loaded.signatures["serving_default"](**tensors)[output_key], np.float64)
    f_b = baseline_outputs(path, loaded, instances, output_key)
    attributions = [v for k, v in got.items() if k.startswith("attribution_")]
    for i in range(len(f_x)):
        for u, index in enumerate(got["output_index"][i]):
            at = (i, *index)
            total = sum(float(np.sum(a[i, u])) for a in attributions)
            scale = max(abs(f_x[at]), abs(f_b[at]))
            np.testing.assert_allclose(got["instance_output"][i, u], f_x[at], rtol=1e-5,
                                       atol=rounding * scale)
            np.testing.assert_allclose(got["baseline_output"][i, u], f_b[at], rtol=1e-4,
                                       atol=rounding * scale + 1e-7)
            change = f_x[at] - f_b[at]
            assert abs(total - change) <= rtol * abs(change) + rounding * scale + 1e-7, (
                f"xai_explain attributions sum to {total}, f(x) - f(baseline) = {change}")
            want = stored.explanations[i].attributions[u]
            np.testing.assert_allclose(total, sum(float(np.sum(v)) for v in
                                                  want.feature_attributions.values()),
                                       rtol=1e-4, atol=1e-6 * scale + 1e-9)


def check_served(path, instances, stored):
    """One `:explain` request to a real server equals `explain`."""
    rows = json_instances(instances)
    with ThreadServer(path, model_name=SERVED_MODEL) as server:
        status, body, _ = request(server.port, "POST", f"/v1/models/{SERVED_MODEL}:explain",
                                  {"instances": rows}, timeout=300)
    assert status == 200, body
    want = stored.to_dict()
    assert len(body["explanations"]) == len(want["explanations"])
    for served, local in zip(body["explanations"], want["explanations"]):
        for s, w in zip(served["attributions"], local["attributions"]):
            assert s["featureAttributions"].keys() == w["featureAttributions"].keys()
            for key, value in w["featureAttributions"].items():
                np.testing.assert_allclose(s["featureAttributions"][key], value, rtol=1e-5,
                                           atol=1e-7)
    assert_same_values(body["predictions"], want["predictions"])


def assert_same_values(got, want, where="predictions"):
    """Equal JSON structures, numbers within float32 rounding."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), (where, got, want)
        for key in want:
            assert_same_values(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list) and want and isinstance(want[0], (dict, list, str)):
        assert isinstance(got, list) and len(got) == len(want), (where, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_values(g, w, f"{where}[{i}]")
    elif isinstance(want, str):
        assert got == want, (where, got, want)
    else:
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                                   rtol=1e-5, atol=1e-7, err_msg=where)


def json_instances(instances):
    """TF Serving JSON rows: strings as text, other bytes as {"b64": ...}."""
    count = len(next(iter(instances.values())))
    return [{key: _json_value(np.asarray(value)[i]) for key, value in instances.items()}
            for i in range(count)]


def _json_value(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value] if value.dtype == object else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _quiet(fn, *args, **kwargs):
    """The explainer's quality warnings are judged by the completeness checks instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)
