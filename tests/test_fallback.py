"""A failed export at train end saves the weights first and says where, and why.

Failures are real: a directory replaced by a file, an immutable directory
(root ignores chmod, not `chattr +i`), a full tmpfs, a function that stops
tracing, a name the file system refuses. Skipped only where the machine
cannot produce the condition.
"""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from xai_callback import DestinationError, ExportFailedError, XaiExportCallback
from xai_callback._keras import weights_file_bytes
from xai_callback.publish.fallback import save_fallback_weights

from models import N_FEATURES, mlp, tabular_data
from subprocess_runs import run_script


@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    """The system temp folder, redirected into the test's directory."""
    folder = tmp_path / "systemp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


class AtEpochEnd(keras.callbacks.Callback):
    def __init__(self, action):
        super().__init__()
        self.action = action

    def on_epoch_end(self, epoch, logs=None):
        self.action(self.model)


def fit_expecting_failure(export_dir, *extra_callbacks, epochs=1, **options):
    model = mlp(seed=3)
    x, y = tabular_data(rows=32)
    callback = XaiExportCallback(str(export_dir), **options)
    with pytest.raises(ExportFailedError) as info:
        model.fit(x, y, epochs=epochs, verbose=0, callbacks=[*extra_callbacks, callback])
    return model, info.value


def assert_weights_kept(error, expected_weights, directory, cause):
    path = error.fallback_path
    assert os.path.dirname(path) == str(directory)
    assert repr(path) in str(error) and cause in str(error)
    restored = mlp(seed=99)
    restored.load_weights(path)
    for got, want in zip(restored.get_weights(), expected_weights):
        np.testing.assert_array_equal(got, want)


def test_directory_replaced_by_a_file_falls_back_to_temp(tmp_path, temp_folder):
    parent = tmp_path / "runs"
    parent.mkdir()

    def replace_with_file(model):
        shutil.rmtree(parent)
        parent.write_text("someone put a file here")

    model, error = fit_expecting_failure(parent / "model", AtEpochEnd(replace_with_file))
    assert_weights_kept(error, model.get_weights(), temp_folder, "which is a file")
    assert parent.read_text() == "someone put a file here"


@contextlib.contextmanager
def unwritable(directory):
    """Root ignores permission bits but not the immutable attribute."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(directory)]).returncode:
        pytest.skip("cannot make a directory unwritable for root here (no chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_permission_denied_falls_back_to_temp(tmp_path, temp_folder):
    # Unwritable before training is refused then (tests/test_destinations.py);
    # here the folder is locked while the model trains.
    parent = tmp_path / "locked"
    parent.mkdir()
    with contextlib.ExitStack() as stack:
        lock = AtEpochEnd(lambda model: stack.enter_context(unwritable(parent)))
        model, error = fit_expecting_failure(parent / "model", lock)
    assert_weights_kept(error, model.get_weights(), temp_folder, "ermission denied" if os.geteuid() else "not permitted")
    assert os.listdir(parent) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs with ~48 KiB left: the weights fit, the SavedModel does not."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        free = shutil.disk_usage(mount).free
        (mount / "filler").write_bytes(b"\0" * (free - 48 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_falls_back_next_to_the_export(small_disk, temp_folder):
    model, error = fit_expecting_failure(small_disk / "model")
    assert_weights_kept(error, model.get_weights(), small_disk, "space")
    assert sorted(os.listdir(small_disk)) == sorted(["filler", os.path.basename(error.fallback_path)])


def test_signature_that_no_longer_runs_keeps_the_best_weights(tmp_path, temp_folder):
    # Signatures are traced once, before training; what can still break by
    # train end is what they read at run time, e.g. a file they depend on.
    vocabulary = tmp_path / "vocabulary.txt"
    vocabulary.write_text("a\nb\n")

    def serve(feats):
        size = tf.strings.length(tf.io.read_file(str(vocabulary)))
        return {"score": model_ref[0](feats, training=False) + 0.0 * tf.cast(size, tf.float32)}

    model_ref, best = [], []

    def values(model):
        epoch = len(best)
        best.append([np.array(w) for w in model.get_weights()])
        if epoch == 1:
            vocabulary.unlink()  # gone by the end of training
        return [0.2, 0.9][epoch]

    class Monitor(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            model_ref.append(self.model)

        def on_epoch_end(self, epoch, logs=None):
            logs["fake"] = values(self.model)

    spec = [tf.TensorSpec([None, N_FEATURES], tf.float32, name="feats")]
    model, error = fit_expecting_failure(
        tmp_path / "model", Monitor(), epochs=2, monitor="fake", mode="min", save_best_only=True,
        serving_fn=(serve, spec),
    )
    # The best epoch's (first) weights are saved; the live model keeps the last.
    assert_weights_kept(error, best[0], tmp_path, "vocabulary.txt")
    for got, want in zip(model.get_weights(), best[1]):
        np.testing.assert_array_equal(got, want)
    assert not os.path.exists(tmp_path / "model")


def test_over_long_name_is_refused_before_training_and_fallback_names_stay_short(tmp_path, temp_folder):
    name = "m" * 240  # fine alone, too long once the staging suffix is added
    # The writability probe creates a file where staging goes: it fails now, not after training.
    with pytest.raises(DestinationError, match="File name too long") as info:
        XaiExportCallback(str(tmp_path / name))
    assert f"export_dir='{tmp_path / name}'" in str(info.value)
    model = mlp(seed=3)
    path = save_fallback_weights(model, str(tmp_path / name), cause="test")
    assert os.path.dirname(path) == str(tmp_path) and len(os.path.basename(path)) < 255
    assert_weights_kept(ExportFailedError(f"{path!r} test", fallback_path=path), model.get_weights(),
                        tmp_path, "test")


def test_nowhere_writable_still_names_the_cause(tmp_path, monkeypatch):
    parent = tmp_path / "runs"
    parent.mkdir()
    blocked_temp = tmp_path / "temp_is_a_file"
    blocked_temp.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked_temp))

    def replace_with_file(model):
        shutil.rmtree(parent)
        parent.write_text("x")

    _, error = fit_expecting_failure(parent / "model", AtEpochEnd(replace_with_file))
    text = str(error)
    assert "could not be saved anywhere" in text and str(parent) in text and str(blocked_temp) in text
    assert "which is a file" in text


@pytest.mark.slow
def test_failed_fallback_write_leaves_no_file_under_the_reported_names(tmp_path):
    """`ulimit -f` below the weights' size: every fallback write fails part-way.

    Before weights were written under a temporary name, truncated
    `.weights.h5` files were left under the very names the error reported.
    """
    runs, temp_folder = tmp_path / "runs", tmp_path / "systemp"
    runs.mkdir()
    temp_folder.mkdir()
    result = run_script("fallback_limit_script.py", runs / "model", temp_folder, 32 * 1024, timeout=300)
    error = result["error"]
    assert error and "could not be saved anywhere" in error and result["fallback_path"] is None, result
    reported = re.findall(r"(/[^:;]+\.weights\.h5): ", error)
    assert {os.path.dirname(p) for p in reported} == {str(runs), str(temp_folder)}, error
    assert not [p for p in reported if os.path.exists(p)], "a truncated file carries a reported name"
    left = [n for folder in (runs, temp_folder) for n in os.listdir(folder) if n.endswith(".h5")]
    assert not left, left


def test_weights_made_in_memory_load_like_save_weights(tmp_path):
    """The Keras internals `weights_file_bytes` uses still make a loadable file."""
    model = mlp(seed=5)
    data = weights_file_bytes(model)
    assert data is not None, "Keras 3's H5IOStore/_save_state changed: fallback writes through h5py again"
    (tmp_path / "m.weights.h5").write_bytes(data)
    restored = mlp(seed=6)
    restored.load_weights(str(tmp_path / "m.weights.h5"))
    for got, want in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)
