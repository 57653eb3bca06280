"""Sampled Shapley values (Castro et al., 2009; Vertex's `sampledShapleyAttribution`).

Players are the scalar elements of the attributed inputs. Each of `pathCount`
random permutations switches the players one by one from the baseline to the
instance; a player's attribution is the mean output change when it is
switched. Needs only forward passes, so it also explains models without useful
gradients (trees, rounding, lookups). Exact for additive models, whatever the
permutations; completeness holds on every path by construction.

`approximationError` is the sampling error instead: the standard error of the
attributions over the paths (L2 over players) relative to `|f(x) - f(baseline)|`;
it needs `pathCount >= 2` (NaN with a single path) and falls as
`1/sqrt(pathCount)`.
"""

import numpy as np
import tensorflow as tf

from xai_callback.explain.base import AttributionAlgorithm, MethodResult, positive_int, relative_gap
from xai_callback.explain.engine import gather_instances, run_chunks
from xai_callback.explain.errors import MethodNotSupportedError

DEFAULT_PATH_COUNT = 10
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
    precision_advice = "raise pathCount (path_count=, --paths)"
    needs_gradients = False

    def __init__(self, path_count=DEFAULT_PATH_COUNT):
        self.path_count = positive_int(path_count, "pathCount")

    @classmethod
    def from_config(cls, config):
        return cls(config.get("pathCount", DEFAULT_PATH_COUNT))

    def describe(self):
        return f"{self.name}(pathCount={self.path_count})"

    def check_inputs(self, problem):
        players = _player_layout(problem)[-1]
        if players > MAX_PLAYERS:
            raise MethodNotSupportedError(
                f"sampled-shapley treats each input element as a player; the "
                f"attributed inputs {problem.attributed_keys} have {players} elements "
                f"(limit {MAX_PLAYERS}), i.e. {players + 1} model rows per path. Use "
                "method='integrated-gradients' for inputs this large (e.g. images)."
            )

    def attribute(self, problem):
        offsets, players = _player_layout(problem)
        units, num_baselines, paths = problem.num_units, problem.num_baselines, self.path_count
        per_path = players + 1
        rng = np.random.default_rng(problem.seed)
        # rank[u, p, j]: when player j switches to the instance on path p of unit u.
        rank = np.argsort(rng.random((units, paths, players)), axis=-1).argsort(axis=-1)
        values = np.zeros(units * num_baselines * paths * per_path, np.float64)

        def consume(start, stop, result):
            values[start:stop] = result

        state = {
            "ranks": rank.reshape(units * paths, players),
            "paths": np.int64(paths),
            "first_player": {key: np.int64(begin) for key, (begin, _) in offsets.items()},
        }
        run_chunks(problem, len(values), _chunk, state, consume)
        values = values.reshape(units, num_baselines, paths, per_path)
        rank = rank[:, None]  # broadcast over baselines
        after = np.take_along_axis(values, rank + 1, axis=-1)
        before = np.take_along_axis(values, rank, axis=-1)
        per_path_attr = (after - before).mean(axis=1)  # [units, paths, players]
        flat = per_path_attr.mean(axis=1)
        attributions = {
            key: flat[:, begin:end].reshape((units,) + tuple(problem.baselines[key].shape[1:]))
            for key, (begin, end) in offsets.items()
        }
        start_output = values[..., 0].mean(axis=(1, 2))
        end_output = values[..., -1].mean(axis=(1, 2))
        return MethodResult(
            attributions, start_output, relative_gap(_standard_error(per_path_attr), end_output, start_output)
        )


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
    rows = gather_instances(state, tf.gather(state["unit_instance"], unit))
    row_rank = tf.gather(state["ranks"], unit * paths + path)
    for key, base in state["baselines"].items():
        x, begin = rows[key], state["first_player"][key]
        size = int(np.prod(x.shape[1:]))
        on = tf.reshape(row_rank[:, begin : begin + size] < switched[:, None], tf.shape(x))
        rows[key] = tf.where(on, x, tf.gather(base, baseline))
    return evaluate(rows, unit)[0]


def _standard_error(per_path_attr):
    """L2 norm over players of the standard error of the mean over paths."""
    paths = per_path_attr.shape[1]
    if paths < 2:
        return np.full(per_path_attr.shape[0], np.nan)
    variance = per_path_attr.var(axis=1, ddof=1) / paths
    return np.sqrt(variance.sum(axis=-1))


def _player_layout(problem):
    """`({key: (first, end) player index}, number of players)`."""
    offsets, total = {}, 0
    for key, base in problem.baselines.items():
        size = int(np.prod(base.shape[1:]))
        offsets[key] = (total, total + size)
        total += size
    return offsets, total
