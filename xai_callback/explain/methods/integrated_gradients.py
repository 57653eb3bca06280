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

from xai_callback.explain.engine import (
    broadcast_rows,
    gather_instances,
    num_baselines,
    num_units,
    relative_gap,
    start_deltas,
    start_points,
    summed,
)
from xai_callback.explain.methods.algorithm import AttributionAlgorithm
from xai_callback.spec import methods as spec


class IntegratedGradients(AttributionAlgorithm):
    """Integrated gradients with the trapezoid rule.

    Example:

    ```python
    explain(export_dir, instances, method="integrated-gradients", step_count=100)
    ```

    Args:
        spec: `spec.methods.IntegratedGradients` (or `XRAI`): `step_count`,
            the number of trapezoid intervals (Vertex `stepCount`).
        spelling: how messages name options.
    """

    SPEC = spec.IntegratedGradients
    names = ("integrated-gradients",)

    def __init__(self, spec, spelling=None):
        super().__init__(spec, spelling)
        self.step_count = spec.step_count

    def precision_advice(self, worst_error):
        return (f"raise stepCount ({self.spelling('step_count')}); if that does not lower "
                "it, the model may not be differentiable: try "
                f"{self.spelling('method', 'sampled-shapley')}")

    def describe(self):
        return f"{self.name}(stepCount={self.step_count})"

    def cache_key(self):
        return self.name  # stepCount is a tensor of `state`

    def settings_state(self):
        return {"step_count": np.int64(self.step_count)}

    # Rows are ordered (unit, baseline, step), step fastest; a work item is
    # one (unit, baseline) pair, whose weighted gradients are summed over its
    # steps inside the chunk, then multiplied by `x - baseline` in float64.

    def rows_per_item(self, state):
        return self.step_count + 1

    def total_rows(self, state):
        return num_units(state) * num_baselines(state) * (self.step_count + 1)

    def chunk(self, evaluate, state, start, stop):
        """Rows `start..stop-1`: their outputs, and weighted gradients summed per pair."""
        steps = state["step_count"] + 1
        per_unit = num_baselines(state)
        row = tf.range(start, stop)
        pair, step = row // steps, row % steps
        alphas, weights = trapezoid(step, state["step_count"])
        unit = pair // per_unit
        instance = tf.gather(state["unit_instance"], unit)
        rows = gather_instances(state, instance)
        for key, b in start_points(state, rows, instance, pair % per_unit).items():
            x = rows[key]
            alpha = broadcast_rows(tf.cast(alphas, x.dtype), x)
            rows[key] = b + alpha * (x - b)
        values, grads = evaluate(rows, unit, watch=list(state["baselines"]))
        first = start // steps
        pairs = (stop - 1) // steps - first + 1
        sums = {}
        for key, grad in grads.items():
            weight = broadcast_rows(tf.cast(weights, grad.dtype), grad)
            sums[key] = tf.math.unsorted_segment_sum(grad * weight, pair - first, pairs)
        return {"rows": {"values": values}, "items": {"sums": sums}}

    def finish(self, state, rows, items):
        return path_result(*integrated(state, rows, items))


def trapezoid(step, step_count):
    """`(alpha, weight)` float64 of each row's point `step` (0..step_count) on the path.

    Bit for bit numpy's `linspace(0, 1, step_count + 1)` and the trapezoid
    weights `1 / step_count` (half at both ends), computed from tensors so one
    trace serves every stepCount.
    """
    width = 1.0 / tf.cast(step_count, tf.float64)
    last = tf.equal(step, step_count)
    alpha = tf.where(last, tf.constant(1.0, tf.float64), tf.cast(step, tf.float64) * width)
    weight = tf.where(last | tf.equal(step, 0), 0.5 * width, width)
    return alpha, weight


def path_result(attributions, end_output, start_output):
    """The method result of path attributions: the error is how far they
    miss completeness (their sum against f(instance) - f(baseline))."""
    gap = summed(attributions) - (end_output - start_output)
    return {"attributions": attributions, "baseline_output": start_output,
            "approximation_error": relative_gap(gap, end_output, start_output)}


def integrated(state, rows, items):
    """`(attributions {key: [units, *example]}, f(x) [units], f(baseline) [units])`, float64,
    averaged over baselines, from the per-pair gradient sums and the row outputs."""
    units = tf.shape(state["unit_instance"], out_type=tf.int64)[0]
    attributions = {}
    for key, sums in items["sums"].items():
        delta = start_deltas(state, key)
        sums = tf.reshape(tf.cast(sums, tf.float64), tf.shape(delta, out_type=tf.int64))
        attributions[key] = tf.reduce_mean(sums * delta, axis=1)
    values = tf.reshape(tf.cast(rows["values"], tf.float64),
                        tf.stack([units, num_baselines(state), state["step_count"] + 1]))
    return (attributions, tf.reduce_mean(values[:, :, -1], axis=1),
            tf.reduce_mean(values[:, :, 0], axis=1))
