"""Sampled Shapley values (Castro et al., 2009; Vertex's `sampledShapleyAttribution`).

Players are what the explanation reports (`granularity.FeatureLayout`): at
`granularity="raw"` a whole category, embedding, token row or group is one
player, a numeric input one per element; at `"encoded"` every scalar element
of the attributed inputs is one. Each of `pathCount` random permutations
switches the players one by one from the baseline to the instance; a player's
attribution is the mean output change when it is switched. When there are no
more distinct permutations than `pathCount` (players! <= pathCount), each is
taken once and the values are exact. Needs only forward passes, so it also
explains models without useful gradients (trees, rounding, lookups). Exact for
additive models, whatever the permutations; completeness holds on every path
by construction, so the attributions always sum to f(x) - f(baseline).

`approximationError` is therefore not a completeness gap but the sampling
uncertainty of the attributions: the standard error of each player's mean over
the paths, as an L2 norm over players, relative to the L2 norm of the
attributions themselves ("the attributions are known to within this share").
It falls as `1/sqrt(pathCount)`, is 0 for exact runs and additive models, and
is NaN for a single sampled path. It stays high when features interact
strongly (each order gives a different split); Vertex allows at most 50 paths,
and at 50 the warning says so instead of advising more.
"""

import copy
import itertools
import math

import numpy as np
import tensorflow as tf

from xai_callback.errors import MethodNotSupportedError
from xai_callback.explain.engine import gather_instances, num_baselines, num_units, start_points
from xai_callback.explain.methods.algorithm import AttributionAlgorithm
from xai_callback.spec import methods as spec
from xai_callback.spec.limits import VERTEX_LIMITS

MAX_PATH_COUNT = VERTEX_LIMITS.max_path_count
# Each path costs (players + 1) model rows; beyond this, integrated gradients.
MAX_PLAYERS = 10_000
# Stream of the stateless random orders (SmoothGrad's noise uses others).
ORDER_STREAM = 1


class SampledShapley(AttributionAlgorithm):
    """Sampled Shapley with permutations drawn from `seed`.

    Example:

    ```python
    explain(export_dir, instances, method="sampled-shapley", path_count=20)
    ```

    Args:
        spec: `spec.methods.SampledShapley`: `path_count`, the number of
            random permutations (Vertex `pathCount`).
        spelling: how messages name options.
    """

    SPEC = spec.SampledShapley
    names = ("sampled-shapley",)
    needs_gradients = False

    def __init__(self, spec, spelling=None):
        super().__init__(spec, spelling)
        self.path_count = spec.path_count
        self.maps, self.players, self.orders = None, None, None

    def describe(self):
        return f"{self.name}(pathCount={self.path_count})"

    def check_inputs(self, problem):
        players = problem.player_maps()[1]
        if players > MAX_PLAYERS:
            raise MethodNotSupportedError(
                f"sampled-shapley has {players} players (limit {MAX_PLAYERS}) in the attributed "
                f"inputs {problem.attributed_keys}, i.e. {players + 1} model rows per path. Use "
                f"{self.spelling('method', 'integrated-gradients')} for inputs this large (e.g. "
                f"images), or {self.spelling('granularity', 'raw')} with encodings that make each "
                "feature one player."
            )

    def precision_advice(self, worst_error):
        if self.path_count < MAX_PATH_COUNT:
            at_max = worst_error * math.sqrt(self.path_count / MAX_PATH_COUNT)
            return (f"raise pathCount ({self.spelling('path_count')}; now "
                    f"{self.path_count}): this sampling error falls as 1/sqrt(pathCount), to "
                    f"about {at_max:.3f} at {MAX_PATH_COUNT}, Vertex AI's maximum")
        where = ("already Vertex's maximum" if self.path_count == MAX_PATH_COUNT
                 else f"{self.path_count}, past Vertex's maximum")
        return (f"pathCount is {where} ({MAX_PATH_COUNT}): this is the spread of the "
                "attributions over feature orders (features interact), while their sum is "
                "exact; read each attribution as uncertain by about that share (more paths, "
                "allowed locally, narrow it as 1/sqrt(pathCount))")

    def bind(self, problem):
        """The players of `problem` and, when there are at most `path_count` orders of
        them, every order (exact values)."""
        bound = copy.copy(self)
        bound.maps, bound.players = problem.player_maps()
        if math.factorial(bound.players) <= self.path_count:
            orders = np.array(list(itertools.permutations(range(bound.players))), np.int64)
            bound.orders = orders.reshape(-1, bound.players).argsort(axis=-1)
        return bound

    def cache_key(self):
        # The number of paths is a tensor of `state`; the players and every-order runs are structure.
        layout = sorted((k, m.shape, m.tobytes()) for k, m in self.maps.items())
        return (self.name, self.players, self.orders is not None, repr(layout))

    def settings_state(self):
        return {"paths": np.int64(self.paths)}

    @property
    def paths(self):
        """How many paths are taken: `path_count`, or every order when there are fewer."""
        return len(self.orders) if self.orders is not None else self.path_count

    # Rows are ordered (unit, baseline, path, switched count); a work item is
    # one path, i.e. `players + 1` rows.

    def start(self, state):
        units = tf.shape(state["unit_instance"], out_type=tf.int64)[0]
        if self.orders is not None:
            rank = tf.tile(tf.constant(self.orders)[None], tf.stack([units, 1, 1]))
        else:
            # rank[u, p, j]: when player j switches to the instance on path p of unit u.
            draws = tf.random.stateless_uniform(
                tf.stack([units, state["paths"], self.players]), seed=tf.stack([state["seed"], ORDER_STREAM]))
            rank = tf.argsort(tf.argsort(draws, axis=-1), axis=-1)
        return {**state, "ranks": tf.reshape(tf.cast(rank, tf.int64), [-1, self.players]),
                "players": {key: tf.constant(m) for key, m in self.maps.items()}}

    def rows_per_item(self, state):
        return self.players + 1

    def total_rows(self, state):
        return num_units(state) * num_baselines(state) * self.paths * (self.players + 1)

    def chunk(self, evaluate, state, start, stop):
        """Rows `start..stop-1`: the output of each row's coalition."""
        paths, per_path = state["paths"], self.players + 1
        per_unit = num_baselines(state)
        row = tf.range(start, stop)
        switched = row % per_path
        path = (row // per_path) % paths
        baseline = (row // (per_path * paths)) % per_unit
        unit = row // (per_path * paths * per_unit)
        instance = tf.gather(state["unit_instance"], unit)
        rows = gather_instances(state, instance)
        row_rank = tf.gather(state["ranks"], unit * paths + path)
        for key, b in start_points(state, rows, instance, baseline).items():
            x = rows[key]
            element_rank = tf.gather(row_rank, tf.reshape(state["players"][key], [-1]), axis=1)
            on = tf.reshape(element_rank < switched[:, None], tf.shape(x))
            rows[key] = tf.where(on, x, b)
        return {"rows": {"values": evaluate(rows, unit)[0]}, "items": {}}

    def finish(self, state, rows, items):
        units = tf.shape(state["unit_instance"], out_type=tf.int64)[0]
        paths, players = state["paths"], self.players
        values = tf.reshape(tf.cast(rows["values"], tf.float64),
                            tf.stack([units, num_baselines(state), paths, players + 1]))
        rank = tf.reshape(state["ranks"], tf.stack([-1, 1, paths, players]))
        rank = tf.broadcast_to(rank, tf.concat(
            [tf.shape(values, out_type=tf.int64)[:3], tf.constant([players], tf.int64)], 0))
        after = tf.gather(values, rank + 1, batch_dims=3)
        before = tf.gather(values, rank, batch_dims=3)
        per_path_attr = tf.reduce_mean(after - before, axis=1)  # [units, paths, players]
        flat = tf.reduce_mean(per_path_attr, axis=1)
        # A player's value spread evenly over its elements: any sum over them gives it back.
        counts = np.bincount(np.concatenate([m.ravel() for m in self.maps.values()]),
                             minlength=players).astype(np.float64)
        attributions = {}
        for key, m in self.maps.items():
            spread = tf.gather(flat, m.ravel(), axis=1) / counts[m.ravel()]
            attributions[key] = tf.reshape(spread, tf.concat([[units], tf.constant(m.shape, tf.int64)], 0))
        if self.orders is not None:
            error = tf.zeros([units], tf.float64)
        else:
            error = _relative_standard_error(per_path_attr, flat, paths)
        return {"attributions": attributions,
                "baseline_output": tf.reduce_mean(values[..., 0], axis=[1, 2]),
                "approximation_error": error}


def _relative_standard_error(per_path_attr, attributions, paths):
    """L2 norm over players of the standard error of the mean over paths, over the
    L2 norm of the attributions (NaN for a single path)."""
    paths = tf.cast(paths, tf.float64)
    variance = tf.math.reduce_variance(per_path_attr, axis=1) * (paths / (paths - 1)) / paths
    size = tf.sqrt(tf.reduce_sum(attributions ** 2, axis=-1))
    error = tf.sqrt(tf.reduce_sum(variance, axis=-1)) / (size + 1e-12)
    return tf.where(paths < 2, tf.constant(np.nan, tf.float64), error)
