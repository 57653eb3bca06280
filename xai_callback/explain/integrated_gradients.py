"""Integrated gradients (Sundararajan et al., 2017).

`attribution_i = (x_i - b_i) * integral_0^1 dF/dx_i(b + a (x - b)) da`, taken
with the trapezoid rule on `stepCount` intervals (`stepCount + 1` gradient
evaluations). Trapezoid rather than a left/right Riemann sum because it is
exact for linear models (constant gradient) *and* second-order accurate for
smooth ones, and because its end points are `f(baseline)` and `f(x)`, which
give the completeness gap without extra calls. Several baselines are averaged.
"""

import numpy as np
import tensorflow as tf

from xai_callback.explain.base import (
    AttributionAlgorithm,
    MethodResult,
    positive_int,
    relative_gap,
    summed,
)
from xai_callback.explain.engine import broadcast_rows, gather_instances, run_chunks, start_points
from xai_callback.explain.errors import MethodNotSupportedError

DEFAULT_STEP_COUNT = 50


class IntegratedGradients(AttributionAlgorithm):
    """Integrated gradients with the trapezoid rule.

    Example:

    ```python
    explain(export_dir, instances, method="integrated-gradients", step_count=100)
    ```

    Args:
        step_count: number of trapezoid intervals (Vertex `stepCount`).
    """

    name = "integrated-gradients"
    parameters_key = "integratedGradientsAttribution"
    override_paths = {"step_count": ("stepCount",)}
    precision_hint = (
        "raise stepCount (step_count=, --steps); if that does not lower it, the model "
        "may not be differentiable: try method='sampled-shapley'"
    )

    def __init__(self, step_count=DEFAULT_STEP_COUNT):
        self.step_count = positive_int(step_count, "stepCount")

    @classmethod
    def accepts(cls, config):
        return "smoothGradConfig" not in config

    @classmethod
    def from_config(cls, config):
        if "blurBaselineConfig" in config:
            raise MethodNotSupportedError(
                "blurBaselineConfig (blur IG) is not implemented locally; remove it "
                "from the parameters or pass explicit baselines in the metadata."
            )
        return cls(config.get("stepCount", DEFAULT_STEP_COUNT))

    def describe(self):
        return f"{self.name}(stepCount={self.step_count})"

    def attribute(self, problem):
        attributions, end_output, start_output = integrate(problem, self.step_count)
        gap = summed(attributions) - (end_output - start_output)
        return MethodResult(
            attributions, start_output, relative_gap(gap, end_output, start_output)
        )


def integrate(problem, step_count):
    """Batched trapezoid IG for every unit.

    Rows are ordered (unit, baseline, step), step fastest. The weighted
    gradients are summed over the steps of each (unit, baseline) pair inside
    the compiled chunk, then multiplied by `x - baseline` once per pair in
    float64.

    Returns:
        `(attributions {key: [units, *example] float64}, f(x) [units],
        f(baseline) [units] averaged over baselines)`.
    """
    units, num_baselines = problem.num_units, problem.num_baselines
    steps = step_count + 1
    pairs = units * num_baselines
    weights = np.full(steps, 1.0 / step_count)
    weights[[0, -1]] *= 0.5
    pair_sums = {k: np.zeros((pairs,) + v.shape[1:], np.float64) for k, v in problem.baselines.items()}
    values = np.zeros(pairs * steps, np.float64)

    def consume(start, stop, result):
        first = start // steps
        for key, sums in result["sums"].items():
            pair_sums[key][first : first + len(sums)] += sums
        values[start:stop] = result["values"]

    state = {"alphas": np.linspace(0.0, 1.0, steps), "weights": weights}
    run_chunks(problem, pairs * steps, _chunk, state, consume)
    attributions = {}
    for key, sums in pair_sums.items():
        delta = problem.start_deltas(key)
        attributions[key] = (sums.reshape(delta.shape) * delta).mean(axis=1)
    values = values.reshape(units, num_baselines, steps)
    return attributions, values[:, :, -1].mean(axis=1), values[:, :, 0].mean(axis=1)


def _chunk(evaluate, state, start, stop):
    """Graph code of rows `start..stop-1`: their outputs and weighted gradients summed per pair."""
    steps = tf.shape(state["alphas"], out_type=tf.int64)[0]
    num_baselines = tf.shape(next(iter(state["baselines"].values())), out_type=tf.int64)[0]
    row = tf.range(start, stop)
    pair, step = row // steps, row % steps
    unit = pair // num_baselines
    instance = tf.gather(state["unit_instance"], unit)
    rows = gather_instances(state, instance)
    for key, b in start_points(state, rows, instance, pair % num_baselines).items():
        x = rows[key]
        alpha = broadcast_rows(tf.gather(tf.cast(state["alphas"], x.dtype), step), x)
        rows[key] = b + alpha * (x - b)
    values, grads = evaluate(rows, unit, watch=list(state["baselines"]))
    first = start // steps
    pairs = (stop - 1) // steps - first + 1
    sums = {}
    for key, grad in grads.items():
        weight = broadcast_rows(tf.gather(tf.cast(state["weights"], grad.dtype), step), grad)
        sums[key] = tf.math.unsorted_segment_sum(grad * weight, pair - first, pairs)
    return {"values": values, "sums": sums}
