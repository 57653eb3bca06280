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

import itertools
import math

import numpy as np
import tensorflow as tf

from xai_callback.explain.base import AttributionAlgorithm, MethodResult, positive_int
from xai_callback.explain.engine import gather_instances, run_chunks, start_points
from xai_callback.explain.errors import MethodNotSupportedError

DEFAULT_PATH_COUNT = 10
MAX_PATH_COUNT = 50  # Vertex's limit
# Each path costs (players + 1) model rows; beyond this, integrated gradients.
MAX_PLAYERS = 10_000


class SampledShapley(AttributionAlgorithm):
    """Sampled Shapley with permutations drawn from `seed`.

    Example:

    ```python
    explain(export_dir, instances, method="sampled-shapley", path_count=20)
    ```

    Args:
        path_count: number of random permutations (Vertex `pathCount`).
    """

    name = "sampled-shapley"
    parameters_key = "sampledShapleyAttribution"
    override_paths = {"path_count": ("pathCount",)}
    needs_gradients = False

    def __init__(self, path_count=DEFAULT_PATH_COUNT):
        self.path_count = positive_int(path_count, "pathCount")

    @classmethod
    def from_config(cls, config):
        return cls(config.get("pathCount", DEFAULT_PATH_COUNT))

    def describe(self):
        return f"{self.name}(pathCount={self.path_count})"

    def check_inputs(self, problem):
        players = problem.player_maps()[1]
        if players > MAX_PLAYERS:
            raise MethodNotSupportedError(
                f"sampled-shapley has {players} players (limit {MAX_PLAYERS}) in the attributed "
                f"inputs {problem.attributed_keys}, i.e. {players + 1} model rows per path. Use "
                "method='integrated-gradients' for inputs this large (e.g. images), or "
                "granularity='raw' with encodings that make each feature one player."
            )

    def precision_advice(self, worst_error):
        if self.path_count < MAX_PATH_COUNT:
            at_max = worst_error * math.sqrt(self.path_count / MAX_PATH_COUNT)
            return (f"raise pathCount (path_count=, --paths; now {self.path_count}): this "
                    f"sampling error falls as 1/sqrt(pathCount), to about {at_max:.3f} at "
                    f"{MAX_PATH_COUNT}")
        return (f"pathCount is already Vertex's maximum ({MAX_PATH_COUNT}), so more paths are "
                "not possible: this is the spread of the attributions over feature orders "
                "(features interact), while their sum is exact; read each attribution as "
                "uncertain by about that share")

    def attribute(self, problem):
        maps, players = problem.player_maps()
        units, num_baselines = problem.num_units, problem.num_baselines
        rank, exact = _ranks(units, players, self.path_count, np.random.default_rng(problem.seed))
        paths = rank.shape[1]
        per_path = players + 1
        values = np.zeros(units * num_baselines * paths * per_path, np.float64)

        def consume(start, stop, result):
            values[start:stop] = result

        state = {
            "ranks": rank.reshape(units * paths, players),
            "paths": np.int64(paths),
            "players": maps,
        }
        run_chunks(problem, len(values), _chunk, state, consume)
        values = values.reshape(units, num_baselines, paths, per_path)
        rank = rank[:, None]  # broadcast over baselines
        after = np.take_along_axis(values, rank + 1, axis=-1)
        before = np.take_along_axis(values, rank, axis=-1)
        per_path_attr = (after - before).mean(axis=1)  # [units, paths, players]
        flat = per_path_attr.mean(axis=1)
        # A player's value spread evenly over its elements: any sum over them gives it back.
        counts = np.bincount(np.concatenate([m.ravel() for m in maps.values()]), minlength=players)
        attributions = {
            key: (flat[:, m.ravel()] / counts[m.ravel()]).reshape((units,) + m.shape)
            for key, m in maps.items()
        }
        start_output = values[..., 0].mean(axis=(1, 2))
        error = np.zeros(units) if exact else _relative_standard_error(per_path_attr, flat)
        return MethodResult(attributions, start_output, error)


def _ranks(units, players, path_count, rng):
    """`(rank [units, paths, players], exact)`: when player j switches on each path.

    Every permutation once when there are at most `path_count` of them (exact
    Shapley values), else `path_count` random ones per unit.
    """
    if math.factorial(players) <= path_count:
        orders = np.array(list(itertools.permutations(range(players))), np.int64).reshape(-1, players)
        return np.broadcast_to(orders.argsort(axis=-1), (units,) + orders.shape).copy(), True
    return np.argsort(rng.random((units, path_count, players)), axis=-1).argsort(axis=-1), False


def _chunk(evaluate, state, start, stop):
    """Graph code of rows `start..stop-1`: the output of each row's coalition."""
    # Rows are ordered (unit, baseline, path, switched count).
    paths = state["paths"]
    per_path = tf.shape(state["ranks"], out_type=tf.int64)[1] + 1
    num_baselines = tf.shape(next(iter(state["baselines"].values())), out_type=tf.int64)[0]
    row = tf.range(start, stop)
    switched = row % per_path
    path = (row // per_path) % paths
    baseline = (row // (per_path * paths)) % num_baselines
    unit = row // (per_path * paths * num_baselines)
    instance = tf.gather(state["unit_instance"], unit)
    rows = gather_instances(state, instance)
    row_rank = tf.gather(state["ranks"], unit * paths + path)
    for key, b in start_points(state, rows, instance, baseline).items():
        x = rows[key]
        element_rank = tf.gather(row_rank, tf.reshape(state["players"][key], [-1]), axis=1)
        on = tf.reshape(element_rank < switched[:, None], tf.shape(x))
        rows[key] = tf.where(on, x, b)
    return evaluate(rows, unit)[0]


def _relative_standard_error(per_path_attr, attributions):
    """L2 norm over players of the standard error of the mean over paths, over the
    L2 norm of the attributions."""
    paths = per_path_attr.shape[1]
    if paths < 2:
        return np.full(per_path_attr.shape[0], np.nan)
    variance = per_path_attr.var(axis=1, ddof=1) / paths
    size = np.sqrt((attributions ** 2).sum(axis=-1))
    return np.sqrt(variance.sum(axis=-1)) / (size + 1e-12)
