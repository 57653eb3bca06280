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
