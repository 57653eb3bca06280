"""Destinations users really have: mount points, object stores, files of others
in `export_dir`, other writers, power loss. Real exports throughout; faults are
injected by wrapping the storage functions (tests/faults.py) or with real
mounts and processes."""

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import DestinationError, ExplainableExporter, ExportFailedError, XaiExportCallback
from xai_callback.publish import placement, storage, writers
from xai_callback.names import PROVENANCE_FILE
from xai_callback.publish.provenance import read_provenance

from faults import Faults, Killed
from models import N_FEATURES, mlp, tabular_data
from subprocess_runs import script_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # writers in other processes, mounts

WARMUP = "assets.extra/tf_serving_warmup_requests"


@pytest.fixture(scope="module")
def model():
    return mlp(seed=0)


@pytest.fixture(scope="module")
def exporter(model):
    return ExplainableExporter(model, verify=False).prepare()


def export_with(exporter, path, versioned=False, training_info=None):
    exporter.versioned = versioned
    return exporter.export(str(path), training_info=training_info)


def created(path):
    return read_provenance(str(path))["created_utc"], (read_provenance(str(path)).get("training") or {}).get("n")


def loads(path):
    return "xai_model" in tf.saved_model.load(str(path)).signatures


# -- mount points ------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}; needs root / CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_mount_point_export_dir_is_refused_at_construction(tmp_path):
    with tmpfs(tmp_path / "volume") as volume:
        for given in (str(volume), str(volume) + "/"):
            with pytest.raises(DestinationError) as info:
                XaiExportCallback(given)
            message = str(info.value)
            assert f"export_dir={given!r} is a mount point" in message
            assert "versioned=True" in message and f"{str(volume) + '/model'!r}" in message
        # What the message proposes works: a folder inside it, or versions inside it.
        x, y = tabular_data(rows=32)
        inside = str(volume / "model")
        mlp().fit(x, y, epochs=1, verbose=0, callbacks=[XaiExportCallback(inside)])
        mlp().fit(x, y, epochs=1, verbose=0, callbacks=[XaiExportCallback(inside)])  # a replace
        versioned = XaiExportCallback(str(volume), versioned=True)
        mlp().fit(x, y, epochs=1, verbose=0, callbacks=[versioned])
        assert loads(inside) and placement.published_versions(str(volume)) == [1]
        assert sorted(os.listdir(volume)) == ["1", "model"]


def test_mount_point_inside_export_dir_is_refused(exporter, tmp_path):
    export_dir = tmp_path / "model"
    export_with(exporter, export_dir)
    with tmpfs(export_dir / "checkpoints") as volume:
        (volume / "ckpt").write_text("precious")
        with pytest.raises(DestinationError, match="has a mount point inside it"):
            XaiExportCallback(str(export_dir))
        with pytest.raises(DestinationError, match="has a mount point inside it"):
            export_with(exporter, export_dir)
        assert (volume / "ckpt").read_text() == "precious"


def failing_serving_fn(vocabulary, model_ref):
    """A serving function that reads a file at run time (gone by train end)."""
    def serve(feats):
        size = tf.strings.length(tf.io.read_file(str(vocabulary)))
        return {"score": model_ref[0](feats, training=False) + 0.0 * tf.cast(size, tf.float32)}

    return (serve, [tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")])


def test_fallback_weights_stay_on_the_mounted_volume(tmp_path):
    vocabulary = tmp_path / "vocabulary.txt"
    vocabulary.write_text("a\n")
    model = mlp(seed=3)
    x, y = tabular_data(rows=32)

    class DeleteVocabulary(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            vocabulary.unlink()

    with tmpfs(tmp_path / "volume") as volume:
        callback = XaiExportCallback(str(volume), versioned=True,
                                     serving_fn=failing_serving_fn(vocabulary, [model]))
        with pytest.raises(ExportFailedError) as info:
            model.fit(x, y, epochs=1, verbose=0, callbacks=[DeleteVocabulary(), callback])
        # On the volume (kept when the container goes), not in the container's own folder.
        assert os.path.dirname(info.value.fallback_path) == str(volume)
        assert placement.published_versions(str(volume)) == []
        restored = mlp(seed=9)
        restored.load_weights(info.value.fallback_path)
        for got, want in zip(restored.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(got, want)


# -- files of others in export_dir -------------------------------------------------


def add_foreign_files(root):
    storage.write_text(f"{root}/{WARMUP}", "warmup records")
    storage.makedirs(f"{root}/checkpoints/step_7")
    storage.write_text(f"{root}/checkpoints/step_7/weights.h5", "checkpoint")


def foreign_files_survive(root):
    return (storage.read_text(f"{root}/{WARMUP}") == "warmup records"
            and storage.read_text(f"{root}/checkpoints/step_7/weights.h5") == "checkpoint")


@pytest.mark.parametrize("where", ["local", "ram"])
def test_replace_deletes_only_what_the_previous_export_wrote(exporter, tmp_path, where):
    root = str(tmp_path) if where == "local" else f"ram://xai_dest/{uuid.uuid4().hex[:8]}"
    export_dir = f"{root}/model"
    export_with(exporter, export_dir, training_info={"n": 1})
    listed = read_provenance(export_dir)["files"]
    assert set(listed) == set(storage.list_files(export_dir))  # every file it wrote, no more
    assert {"saved_model.pb", f"assets.extra/{PROVENANCE_FILE}", "assets.extra/xai_callback_complete.json"} <= set(listed)
    add_foreign_files(export_dir)
    export_with(exporter, export_dir, training_info={"n": 2})
    assert created(export_dir)[1] == 2 and loads(export_dir)
    assert foreign_files_survive(export_dir)
    assert storage.listdir(root) == ["model"]  # no staging or retired copies left
    assert WARMUP not in read_provenance(export_dir)["files"]


# -- object stores: a replace killed at every step never loses both exports ---------


def ram_dir():
    return f"ram://xai_dest/{uuid.uuid4().hex[:8]}"


def staged_export(exporter, export_dir, versioned, n):
    """A verified staging copy, ready for `placement.publish`."""
    staging = placement.begin(export_dir, versioned=versioned)
    exporter._write(staging, {"n": n})
    return staging


def kill_publish_at(at, exporter, export_dir, versioned, monkeypatch):
    """Publishes export n=2 over n=1, the process 'dying' at fault point `at`."""
    staging = staged_export(exporter, export_dir, versioned, n=2)
    with monkeypatch.context() as patch:
        faults = Faults(at=at, action="die").install(patch) if at else Faults().install(patch)
        try:
            placement.publish(staging, export_dir, versioned=versioned)
            placement.end(staging)
        except Killed:
            pass  # no clean-up runs after a kill
    return faults


def test_object_store_replace_killed_at_each_step_is_repaired(exporter, monkeypatch):
    template = ram_dir() + "/model"
    export_with(exporter, template, training_info={"n": 1})
    add_foreign_files(template)
    measured = ram_dir() + "/model"
    placement.copy_files(template, measured)
    points = kill_publish_at(None, exporter, measured, False, monkeypatch).count
    assert points >= 30
    states = set()
    for at in range(1, points + 1):
        export_dir = ram_dir() + "/model"
        placement.copy_files(template, export_dir)
        faults = kill_publish_at(at, exporter, export_dir, False, monkeypatch)
        assert faults.dead, at
        parent = placement.split_path(export_dir)[0]
        retired = [n for n in storage.listdir(parent) if ".xai-retired-" in n]
        complete_copies = [n for n in retired if placement.is_complete(f"{parent}/{n}")]
        # Never without a loadable export unless a complete retired copy is kept.
        assert placement.is_complete(export_dir) or complete_copies, (at, faults.trace[-3:])
        states.add((placement.is_complete(export_dir), bool(complete_copies)))
        # The killed writer is gone: its marker's own timestamp says when it started.
        monkeypatch.setattr(writers, "STALE_SECONDS", -1)
        placement.clean_stale(export_dir)
        monkeypatch.undo()
        assert placement.is_complete(export_dir) and loads(export_dir), at
        assert created(export_dir)[1] in (1, 2) and foreign_files_survive(export_dir), at
        assert storage.listdir(parent) == ["model"], (at, storage.listdir(parent))
    assert (False, True) in states  # some kills did leave export_dir incomplete: restored


def test_restore_never_deletes_the_only_complete_copy_while_a_writer_may_live(exporter, monkeypatch):
    export_dir = ram_dir() + "/model"
    export_with(exporter, export_dir, training_info={"n": 1})
    trace = kill_publish_at(None, exporter, ram_dir() + "/model", False, monkeypatch).trace
    at = trace.index("copy_file") + 2 * len([t for t in trace if t == "remove"])  # inside the deletion
    kill_publish_at(at, exporter, export_dir, False, monkeypatch)
    assert not placement.is_complete(export_dir)
    placement.clean_stale(export_dir)  # the writer's marker is fresh: it may still be copying
    parent = placement.split_path(export_dir)[0]
    assert any(".xai-retired-" in n and placement.is_complete(f"{parent}/{n}") for n in storage.listdir(parent))
    # A new export puts a complete one in place, and a later clean-up restores nothing over it.
    export_with(exporter, export_dir, training_info={"n": 3})
    assert created(export_dir)[1] == 3
    monkeypatch.setattr(writers, "STALE_SECONDS", -1)
    placement.clean_stale(export_dir)
    assert created(export_dir)[1] == 3 and storage.listdir(parent) == ["model"]


def test_versioned_object_store_version_visible_only_when_complete(exporter, monkeypatch):
    template = ram_dir()
    export_with(exporter, template, versioned=True, training_info={"n": 1})
    measured = ram_dir()
    placement.copy_files(template, measured)
    points = kill_publish_at(None, exporter, measured, True, monkeypatch).count
    for at in range(1, points + 1):
        base = ram_dir()
        placement.copy_files(template, base)
        kill_publish_at(at, exporter, base, True, monkeypatch)
        published = placement.published_versions(base)
        assert published in ([1], [1, 2]), at
        for number in published:
            assert loads(f"{base}/{number}")
        monkeypatch.setattr(writers, "STALE_SECONDS", -1)
        placement.clean_stale(base, versioned=True)
        monkeypatch.undo()
        # Partial copies are gone; every numeric directory left is complete.
        assert sorted(placement.version_names(base)) == placement.published_versions(base) == published, at


class Unavailable(Exception):
    pass


def test_versioned_object_store_error_is_not_taken_for_a_lost_race(exporter, monkeypatch):
    base = ram_dir()
    export_with(exporter, base, versioned=True)
    staging = staged_export(exporter, base, True, n=2)
    calls = []

    def broken_after_two(src, dst):  # the bucket becomes unavailable mid-copy
        calls.append(dst)
        if len(calls) > 2:
            raise tf.errors.UnavailableError(None, None, f"unavailable: {dst}")
        storage.gfile.copy(src, dst, overwrite=True)

    monkeypatch.setattr(storage, "copy_file", broken_after_two)
    with pytest.raises(tf.errors.UnavailableError):
        placement.publish(staging, base, versioned=True)
    monkeypatch.undo()
    placement.end(staging)
    assert len(calls) == 3  # one attempt, not a retry under the next numbers
    assert sorted(placement.version_names(base)) == placement.published_versions(base) == [1]


def test_published_versions_lists_complete_versions_only(exporter, tmp_path):
    base = tmp_path / "base"
    export_with(exporter, base, versioned=True)
    export_with(exporter, base, versioned=True)
    (base / "7").mkdir()  # a folder someone is still writing: no saved_model.pb
    (base / "5").mkdir()
    shutil.copy(base / "1" / "saved_model.pb", base / "5")  # someone else's, complete
    shutil.copytree(base / "2", base / "9")
    os.unlink(base / "9" / "assets.extra" / "xai_callback_complete.json")  # ours, copy unfinished
    assert placement.published_versions(str(base)) == [1, 2, 5]
    assert placement.published_versions(str(tmp_path / "missing")) == []


# -- other writers ---------------------------------------------------------------------

HOLD_SCRIPT = """
import sys
from xai_callback.publish import placement
staging = placement.begin(sys.argv[1], versioned=True)
open(staging + "-proof", "w").close()
import os; os.makedirs(staging); open(os.path.join(staging, "half.bin"), "w").close()
print("PID", os.getpid(), "STAGING", staging, flush=True)
sys.stdin.read()  # hold until told
"""

CLEAN_SCRIPT = """
import os, sys
from xai_callback.publish import placement
print("PID", os.getpid(), "CLEANED", placement.clean_stale(sys.argv[1], versioned=True), flush=True)
"""


def in_new_pid_namespace(script, *args, **kwargs):
    """Runs Python as pid 1 of a new pid namespace (as in a container)."""
    command = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", script, *args]
    return subprocess.Popen(command, env=script_env(TF_CPP_MIN_LOG_LEVEL="3"), text=True, **kwargs)


def test_live_writer_recognised_by_its_lock_even_with_the_same_pid(tmp_path):
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode:
        pytest.skip("cannot create pid namespaces here (needs unshare and root)")
    base = tmp_path / "base"
    base.mkdir()
    holder = in_new_pid_namespace(HOLD_SCRIPT, str(base), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = holder.stdout.readline()
        assert line.startswith("PID 1 STAGING"), line  # pid 1, like a container's main process
        staging = line.split()[-1]
        cleaner = in_new_pid_namespace(CLEAN_SCRIPT, str(base), stdout=subprocess.PIPE)
        out, _ = cleaner.communicate(timeout=120)
        assert out.startswith("PID 1 CLEANED"), out  # also pid 1, same host name
        assert os.path.isdir(staging), "a live writer's staging was deleted"
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    # The holder is gone without cleaning up: now its temporaries are stale.
    cleaned = placement.clean_stale(str(base), versioned=True)
    assert staging in cleaned and not os.path.exists(staging)


def test_object_store_writer_age_comes_from_its_marker(exporter):
    base = ram_dir()
    storage.makedirs(base)
    now = time.time()
    for token, started in (("a" * 16, now - 60), ("b" * 16, now - 2 * writers.STALE_SECONDS)):
        storage.write_json(writers.marker_path(base, "", token), {"host": "h", "pid": 1, "started": started})
        storage.makedirs(f"{base}/.xai-staging-{token}")
        storage.write_text(f"{base}/.xai-staging-{token}/half.bin", "x")
    placement.clean_stale(base, versioned=True)
    assert sorted(storage.listdir(base)) == [".xai-staging-" + "a" * 16, ".xai-writer-" + "a" * 16]


# -- power loss: fsync before publish and before deleting the old export -------------


def test_everything_is_fsynced_before_publish_and_before_the_old_export_goes(exporter, tmp_path, monkeypatch):
    export_dir = tmp_path / "model"
    export_with(exporter, export_dir)
    events = []
    real_fsync = os.fsync

    def spy_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def spy(name):
        original = getattr(storage, name)

        def wrapper(*args, **kwargs):
            events.append((name, str(args[0])))
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(os, "fsync", spy_fsync)
    for name in ("exchange", "rename", "rmtree"):
        monkeypatch.setattr(storage, name, spy(name))
    export_with(exporter, export_dir)
    monkeypatch.undo()
    swap = next(i for i, (op, _) in enumerate(events) if op in ("exchange", "rename"))
    staging = events[swap][1]
    synced_before = {path for op, path in events[:swap] if op == "fsync"}
    for directory, _, files in os.walk(export_dir):  # the new export, now in place
        relative = os.path.relpath(directory, export_dir)
        assert os.path.normpath(os.path.join(staging, relative)) in synced_before, relative
        for name in files:
            assert os.path.normpath(os.path.join(staging, relative, name)) in synced_before, name
    assert str(tmp_path) in synced_before  # the parent, holding the staging entry
    old_deleted = next(i for i, (op, path) in enumerate(events) if op == "rmtree" and i > swap)
    assert ("fsync", str(tmp_path)) in events[swap:old_deleted]  # the swap is durable first
