"""Checks the explanation tests share: completeness, units, quiet runs."""

import warnings

import numpy as np


def units(response):
    """Every `Attribution` of a response, instance by instance."""
    return [a for e in response.explanations for a in e.attributions]


def quiet(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` without the explainer's quality warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def assert_complete(response, exact=False):
    """Sum over reported attributions == f(x) - f(baseline), within the reported error
    (or 1e-5 when `exact`, as sampled Shapley is on every path)."""
    for a in units(response):
        change = a.instance_output_value - a.baseline_output_value
        total = sum(float(np.sum(v)) for v in a.feature_attributions.values())
        allowed = 1e-5 if exact else a.approximation_error * abs(change) * 1.001 + 1e-6
        assert abs(total - change) <= allowed, (total, change, a.approximation_error)


def assert_same_response(got, want, rtol=1e-5, atol=1e-6, path="response"):
    """Two response dicts equal in structure and text, their numbers within a tolerance.

    Floats computed in a different order (threads, batches) may differ in the
    last bits; everything else (keys, names, indices, lengths) must be equal.
    """
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), (path, got, want)
        for key in want:
            # A relative error of small differences: last-bit changes of the outputs move it ~1e-5.
            key_atol = max(atol, 1e-4) if key == "approximationError" else atol
            assert_same_response(got[key], want[key], rtol, key_atol, f"{path}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), (path, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_response(g, w, rtol, atol, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, (int, float)) and np.isclose(got, want, rtol=rtol, atol=atol), (path, got, want)
    else:
        assert got == want, (path, got, want)
