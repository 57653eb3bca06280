"""Exports under `tf.distribute`: which worker writes where.

Saving a SavedModel of distributed variables may need collective ops, so in
multi-worker training every worker must run the same export. Following
tf-keras' `distributed_file_utils` convention, the chief writes the real
`export_dir` and every other worker writes to `<parent>/workertemp_<task>/`,
which is removed as soon as its export is done.

Status per strategy (see docs/compatibility.md):
- default and `MirroredStrategy`: supported, tested; `OneDeviceStrategy`:
  same path, untested.
- `MultiWorkerMirroredStrategy`: supported, tested with tf-keras (2 workers
  on one host); Keras 3 `fit` itself does not run under it.
- `TPUStrategy`: not refused, untested.
- `ParameterServerStrategy`: refused (`check_supported`).
"""

import concurrent.futures

import tensorflow as tf

from xai_callback.publish import storage
from xai_callback.names import join
from xai_callback.publish.placement import split_path

WORKER_TEMP_PREFIX = "workertemp_"


def strategy_of(model=None):
    """The strategy `model` was built under, else the current one.

    Keras 3 runs callbacks outside the strategy scope, so the model's own
    strategy is the reliable source (Keras 3 and tf-keras both record it).
    """
    strategy = getattr(model, "distribute_strategy", None) if model is not None else None
    return strategy or tf.distribute.get_strategy()


def is_multi_worker(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return False
    cluster = resolver.cluster_spec().as_dict()
    return sum(len(tasks) for tasks in cluster.values()) > 1


def is_chief(strategy=None):
    """True unless this is a non-chief worker of a multi-worker strategy.

    Example:

    ```python
    if xai_callback.export.distribute.is_chief(model.distribute_strategy):
        print("this worker writes export_dir")
    ```

    Args:
        strategy: a `tf.distribute.Strategy`. Defaults to None: the current one.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return True
    return bool(strategy.extended.should_checkpoint)


def worker_export_dir(export_dir, strategy=None):
    """Where this worker writes an export meant for `export_dir`.

    The chief (or a single-worker run) gets `export_dir` itself; any other
    worker gets `<parent of export_dir>/workertemp_<task id>/<name>`, as
    tf-keras' `distributed_file_utils.write_filepath` does for checkpoints.

    Example:

    ```python
    path = worker_export_dir("gs://bucket/models/churn", strategy)
    # chief: "gs://bucket/models/churn"
    # worker 1: "gs://bucket/models/workertemp_1/churn"
    ```

    Args:
        export_dir: the export's destination.
        strategy: a `tf.distribute.Strategy`. Defaults to None: the current one.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if is_chief(strategy):
        return str(export_dir)
    return join(_worker_temp_root(export_dir, strategy), split_path(export_dir)[1])


def remove_worker_dir(export_dir, strategy=None):
    """Deletes this worker's temporary directory (no-op on the chief)."""
    strategy = strategy or tf.distribute.get_strategy()
    if not is_chief(strategy):
        storage.rmtree(_worker_temp_root(export_dir, strategy))


def outside_strategy_scope(fn, *args):
    """`fn(*args)` where no strategy scope is active.

    tf-keras runs callbacks inside the model's strategy scope, where
    `tf.saved_model.load` creates distributed variables that cannot be called
    outside a replica; the reloaded export is checked as a plain, single-device
    model instead. Strategy scopes are thread-local, so a helper thread has none.
    """
    if not tf.distribute.has_strategy():
        return fn(*args)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def check_supported(strategy):
    """Refuses strategies whose export is known not to work.

    Raises:
        NotImplementedError: for `ParameterServerStrategy`, naming it.
    """
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        raise NotImplementedError(
            f"XaiExportCallback does not support {type(strategy).__name__}: its "
            "variables live on parameter servers and the callback runs on the "
            "coordinator, a setup this package does not test. Save the weights "
            "(model.save_weights), load them into the same model built without a "
            "strategy, and call xai_callback.export_explainable_model on it."
        )


def _worker_temp_root(export_dir, strategy):
    task_id = strategy.cluster_resolver.task_id
    return join(split_path(export_dir)[0], f"{WORKER_TEMP_PREFIX}{task_id}")

