"""Exports under tf.distribute: MirroredStrategy and MultiWorkerMirroredStrategy.

Both need settings made before TensorFlow starts (logical devices, TF_CONFIG),
so training runs in subprocesses (distribute_script.py) with hard timeouts; a
hung collective fails the test instead of stalling CI.
"""

import importlib.util
import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from subprocess_runs import free_ports, parse_result, run_script, script_command, script_env
from xai_callback.publish import storage
from xai_callback.names import (
    ASSETS_EXTRA,
    PROVENANCE_FILE,
    SAMPLE_FILE,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    extra_path,
)
from xai_callback.signatures.specs import signature_io

pytestmark = pytest.mark.slow  # own processes or servers: skipped by `make test-fast`

TIMEOUT_S = 300
WORKERS = 2


# -- MirroredStrategy -----------------------------------------------------------


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("mirrored")
    result = run_script("distribute_script.py", "mirrored", out_dir, timeout=TIMEOUT_S)
    arrays = dict(np.load(os.path.join(out_dir, "mirrored.npz")))
    loaded = {name: tf.saved_model.load(result[name]) for name in ("mirrored", "single")}
    return result, arrays, loaded


def test_mirrored_training_really_used_two_replicas(mirrored):
    result, _, _ = mirrored
    assert result["replicas"] == 2
    assert result["variable_type"] == "MirroredVariable"


def test_mirrored_export_equals_single_device_export(mirrored):
    result, arrays, loaded = mirrored
    a, b = loaded["mirrored"], loaded["single"]
    assert sorted(a.signatures) == sorted(b.signatures) == ["serving_default", "xai_model"]
    for name in a.signatures:
        assert repr(signature_io(a.signatures[name])) == repr(signature_io(b.signatures[name]))
    assert [v.name for v in a.variables] == [v.name for v in b.variables]
    for va, vb in zip(a.variables, b.variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    x = tf.constant(arrays["x"])
    for name in a.signatures:
        got_a = a.signatures[name](feats=x)["score"].numpy()
        got_b = b.signatures[name](feats=x)["score"].numpy()
        np.testing.assert_array_equal(got_a, got_b)
        np.testing.assert_allclose(got_a, arrays["expected"], rtol=1e-6, atol=1e-7)


def test_mirrored_export_writes_the_same_files_and_metadata(mirrored):
    result, _, _ = mirrored
    mirrored_dir, single_dir = result["mirrored"], result["single"]
    assert sorted(storage.listdir(mirrored_dir)) == sorted(storage.listdir(single_dir))
    assert sorted(storage.listdir(f"{mirrored_dir}/{ASSETS_EXTRA}")) == sorted(
        storage.listdir(f"{single_dir}/{ASSETS_EXTRA}"))
    for name in (VERTEX_METADATA_FILE, VERTEX_PARAMETERS_FILE, SAMPLE_FILE):
        assert storage.read_json(extra_path(mirrored_dir, name)) == storage.read_json(extra_path(single_dir, name))
    record = storage.read_json(extra_path(mirrored_dir, PROVENANCE_FILE))
    assert record["training"]["epoch"] == result["best_epoch"] + 1


# -- MultiWorkerMirroredStrategy ----------------------------------------------------


def _start_workers(out_dir):
    ports = free_ports(WORKERS)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(WORKERS):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            script_command("distribute_script.py", "worker", out_dir),
            env=script_env(TF_CONFIG=tf_config, TF_USE_LEGACY_KERAS=1),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    return processes


def _wait_all(processes, timeout):
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        logs = "\n\n".join((p.communicate()[0] or "")[-3000:] for p in processes)
        pytest.fail(f"multi-worker training did not finish in {timeout}s (hung collective?):\n{logs}")
    for process, output in zip(processes, outputs):
        if process.returncode != 0:
            pytest.fail(f"a worker exited with {process.returncode}:\n{output[-6000:]}")
    return [parse_result(output, f"worker {i}") for i, output in enumerate(outputs)]


@pytest.fixture(scope="module")
def multi_worker(tmp_path_factory):
    if importlib.util.find_spec("tf_keras") is None:
        pytest.skip("tf-keras (xai-callback[legacy]) is needed: Keras 3 fit does not run "
                    "under MultiWorkerMirroredStrategy")
    out_dir = tmp_path_factory.mktemp("multi_worker")
    results = sorted(_wait_all(_start_workers(out_dir), TIMEOUT_S), key=lambda r: r["task"])
    arrays = [dict(np.load(os.path.join(out_dir, f"worker{r['task']}.npz"))) for r in results]
    return str(out_dir), results, arrays


def test_only_the_chief_export_remains(multi_worker):
    out_dir, results, _ = multi_worker
    chief, other = results
    assert chief["is_chief"] and not other["is_chief"]
    export_dir = os.path.join(out_dir, "export")
    assert chief["write_dir"] == export_dir
    assert other["write_dir"] == os.path.join(out_dir, "workertemp_1", "export")
    assert not other["write_dir_exists_after_fit"]
    # Nothing but the export and the scripts' own arrays: no worker or staging dirs.
    assert sorted(os.listdir(out_dir)) == ["export", "worker0.npz", "worker1.npz"]


def test_every_worker_took_part_in_the_save(multi_worker):
    _, results, _ = multi_worker
    for result in results:
        # Each worker reloaded its own written copy (the chief's, or its temporary one).
        assert result["exported_signatures"] == ["serving_default", "xai_model"]


def test_best_epoch_decisions_agree_across_workers(multi_worker):
    _, results, arrays = multi_worker
    assert results[0]["val_auc"] == results[1]["val_auc"]  # logs are aggregated
    assert results[0]["best_epoch"] == results[1]["best_epoch"] == int(np.argmax(results[0]["val_auc"]))
    assert results[0]["best_value"] == results[1]["best_value"]
    for w0, w1 in zip(*(sorted(a for a in worker if a.startswith("w")) for worker in arrays)):
        np.testing.assert_array_equal(arrays[0][w0], arrays[1][w1])


def test_chief_export_holds_the_best_weights(multi_worker):
    out_dir, results, arrays = multi_worker
    loaded = tf.saved_model.load(os.path.join(out_dir, "export"))
    assert sorted(loaded.signatures) == ["serving_default", "xai_model"]
    saved = [v.numpy() for v in loaded.variables]
    best = [arrays[0][k] for k in arrays[0] if k.startswith("w")]
    for weight in best:
        assert any(s.shape == weight.shape and np.array_equal(s, weight) for s in saved)
    x = tf.constant(arrays[0]["x_val"])
    got = loaded.signatures["serving_default"](feats=x)["score"].numpy()
    np.testing.assert_allclose(got, arrays[0]["best_predictions"], rtol=1e-5, atol=1e-6)
    record = storage.read_json(extra_path(os.path.join(out_dir, "export"), PROVENANCE_FILE))
    assert record["training"]["epoch"] == results[0]["best_epoch"] + 1
