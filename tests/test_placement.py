"""Versioned exports, keep=N, clean-up limits and path safety, on real exports."""

import os

import numpy as np
import pytest
import tensorflow as tf

from xai_callback import DestinationError, ExplainableExporter, XaiExportCallback, export_explainable_model
from xai_callback.publish import placement, storage, writers
from xai_callback.publish.cleanup import clean_stale
from xai_callback.publish.destination import Destination
from xai_callback.publish.ranking import Ranking, versions_to_keep
from xai_callback.publish.staging import staging
from xai_callback.publish.provenance import read_provenance

from fit_helpers import InjectMonitor
from models import tabular_data, trained_mlp


@pytest.fixture(scope="module")
def trained():
    return trained_mlp(epochs=1)


@pytest.fixture(scope="module")
def exporter(trained):
    """One traced exporter reused by the tests (its options are set per test)."""
    return ExplainableExporter(trained[0], verify=False).prepare()


def export_with(exporter, path, **options):
    for name, value in {**dict(versioned=True, keep=None, overwrite=False), **options}.items():
        setattr(exporter, name, value)
    return exporter.export(str(path))


def numeric(path):
    return sorted(int(n) for n in os.listdir(path) if n.isdigit())


def temp_name(kind, token="abcdef1234567890", prefix=""):
    """A temporary of a writer that left no marker (so is gone)."""
    return f"{prefix}.xai-{kind}-{token}"


def live_writer(parent, prefix=""):
    """A writer marker locked by this process (held as a live writer's would be)."""
    return writers.Writer(str(parent), prefix)


def test_versioned_exports_count_up_and_load(trained, tmp_path):
    model, x = trained
    results = [export_explainable_model(model, str(tmp_path), versioned=True) for _ in range(3)]
    assert [r.path for r in results] == [f"{tmp_path}/{n}" for n in (1, 2, 3)]
    assert numeric(tmp_path) == [1, 2, 3]
    got = tf.saved_model.load(str(tmp_path / "3")).signatures["xai_model"](feats=tf.constant(x[:3]))
    np.testing.assert_allclose(got["score"].numpy(), model.predict(x[:3], verbose=0), rtol=1e-5, atol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["1", "2", "3"]  # no hidden staging left


def test_keep_newest_and_foreign_entries_survive(exporter, tmp_path):
    (tmp_path / "README.txt").write_text("mine")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    (tmp_path / "7").mkdir()  # a foreign version: not ours, never deleted
    (tmp_path / "7" / "saved_model.pb").write_text("foreign")
    (tmp_path / ".xai-staging-not-a-token").mkdir()
    for _ in range(5):
        export_with(exporter, tmp_path, keep=2)
    assert numeric(tmp_path) == [7, 11, 12]
    assert (tmp_path / "README.txt").read_text() == "mine"
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"
    assert (tmp_path / "7" / "saved_model.pb").read_text() == "foreign"
    assert (tmp_path / ".xai-staging-not-a-token").is_dir()


def test_keep_best_uses_recorded_monitor_values(trained, tmp_path):
    model, _ = trained
    x, y = tabular_data(rows=32)
    callback = XaiExportCallback(
        str(tmp_path), monitor="fake", mode="min", save_best_only=True, export_on_improvement=True,
        versioned=True, keep=2, verify=False,
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[InjectMonitor("fake", [0.5, 0.3]), callback])
    callback.reset()  # a fresh start: the second fit exports its own best, though worse
    model.fit(x, y, epochs=2, verbose=0, callbacks=[InjectMonitor("fake", [0.9, 0.8]), callback])
    # The best (0.3, version 2) outlives the newer but worse version 3.
    assert numeric(tmp_path) == [2, 4]
    values = {n: read_provenance(str(tmp_path / str(n)))["training"]["monitor_value"] for n in (2, 4)}
    assert values == {2: pytest.approx(0.3), 4: pytest.approx(0.8)}


def test_versions_to_keep_ranks_and_protects():
    def record(value, monitor="loss", mode="min"):
        return {"training": {"monitor": monitor, "mode": mode, "monitor_value": value}}

    records = {1: record(0.2), 2: record(0.1), 3: record("nan"), 4: record(0.5), 5: record(0.3, monitor="auc")}
    assert versions_to_keep(records, 2) == {4, 5}
    assert versions_to_keep(records, 2, ranking=Ranking("loss", "min")) == {1, 2}
    assert versions_to_keep(records, 2, protect=5, ranking=Ranking("loss", "min")) == {2, 5}
    maximised = {n: record(v, mode="max") for n, v in ((1, 0.2), (2, 0.9), (3, 0.5))}
    assert versions_to_keep(maximised, 1, ranking=Ranking("loss", "max")) == {2}
    # Values recorded under another monitor or direction do not compare.
    assert versions_to_keep(records, 1, ranking=Ranking("loss", "max")) == {5}


def test_claim_moves_on_when_the_number_is_taken(exporter, tmp_path):
    export_with(exporter, tmp_path)
    destination = Destination(str(tmp_path), versioned=True)
    with staging(destination) as staged:
        exporter._write(staged.path, None)
        # As if another writer had claimed 1 between our listing and our rename.
        assert destination.placement.claim(staged, first=1) == 2
    assert numeric(tmp_path) == [1, 2] and not os.path.exists(staged.path)


def test_stale_temporaries_of_dead_writers_are_cleaned(exporter, tmp_path):
    export_dir = tmp_path / "base"
    export_with(exporter, export_dir)
    writer = live_writer(export_dir)
    unlocked = export_dir / ".xai-writer-0123456789abcdef"
    unlocked.write_text('{"host": "x", "pid": 1, "started": 9e99}')  # a dead writer's marker
    stale = [export_dir / temp_name("staging"), export_dir / temp_name("retired"),
             export_dir / temp_name("staging", "0123456789abcdef")]
    live = [export_dir / temp_name("staging", writer.token)]
    try:
        for path in stale + live:
            path.mkdir()
            (path / "partial.bin").write_text("x")
        export_with(exporter, export_dir)
        assert [p.exists() for p in stale] == [False] * 3 and not unlocked.exists()
        assert [p.exists() for p in live] == [True]  # its writer holds the lock
    finally:
        writer.release()


def test_non_versioned_replace_is_a_swap_and_cleans_siblings(exporter, tmp_path):
    export_dir = tmp_path / "model"
    export_with(exporter, export_dir, versioned=False)
    first = read_provenance(str(export_dir))["created_utc"]
    sibling = tmp_path / temp_name("staging", prefix=".model")
    sibling.mkdir()
    other = tmp_path / temp_name("staging", prefix=".other")
    other.mkdir()
    result = export_with(exporter, export_dir, versioned=False)
    assert result.path == str(export_dir)
    assert read_provenance(str(export_dir))["created_utc"] >= first
    assert sorted(os.listdir(tmp_path)) == sorted(["model", other.name])  # only our name's temporaries


def test_crash_between_two_renames_is_recovered(exporter, tmp_path):
    """Without an atomic swap a crash can leave only `.NAME.xai-retired-*`."""
    export_dir = tmp_path / "model"
    export_with(exporter, export_dir, versioned=False)
    created = read_provenance(str(export_dir))["created_utc"]
    retired = tmp_path / temp_name("retired", prefix=".model")
    os.rename(export_dir, retired)
    clean_stale(Destination(str(export_dir)))
    assert read_provenance(str(export_dir))["created_utc"] == created
    assert os.listdir(tmp_path) == ["model"]


def test_two_rename_fallback_when_no_atomic_swap(exporter, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "exchange", lambda a, b: False)
    export_dir = tmp_path / "model"
    export_with(exporter, export_dir, versioned=False)
    export_with(exporter, export_dir, versioned=False)
    assert os.listdir(tmp_path) == ["model"]
    tf.saved_model.load(str(export_dir))


def test_foreign_non_empty_dir_refused_unless_overwrite(exporter, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DestinationError, match=f"export_dir='{tmp_path}' is a non-empty directory"):
        export_with(exporter, tmp_path, versioned=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    export_with(exporter, tmp_path, versioned=False, overwrite=True)
    assert read_provenance(str(tmp_path)) is not None


def test_versioned_refuses_a_savedmodel_dir(exporter, tmp_path):
    export_with(exporter, tmp_path / "m", versioned=False)
    with pytest.raises(DestinationError, match="holds a SavedModel itself"):
        export_with(exporter, tmp_path / "m")


# -- paths outside export_dir are never followed ------------------------------------


def outside_tree(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    return outside


def test_prune_does_not_follow_symlinks_inside_a_version(exporter, tmp_path):
    outside = outside_tree(tmp_path)
    export_dir = tmp_path / "base"
    export_with(exporter, export_dir)
    os.symlink(outside, export_dir / "1" / "assets.extra" / "link")  # planted in our version
    export_with(exporter, export_dir, keep=1)
    assert numeric(export_dir) == [2]
    assert (outside / "precious.txt").read_text() == "keep"  # gfile.rmtree would delete it


def test_symlinked_versions_and_temporaries_are_left_alone(exporter, tmp_path):
    outside = outside_tree(tmp_path)
    foreign_export = tmp_path / "elsewhere"
    export_with(exporter, foreign_export, versioned=False)
    export_dir = tmp_path / "base"
    export_dir.mkdir()
    os.symlink(foreign_export, export_dir / "1")  # looks like one of our versions
    os.symlink(outside, export_dir / temp_name("staging"))
    for _ in range(2):
        export_with(exporter, export_dir, keep=1)
    assert os.path.islink(export_dir / "1") and numeric(export_dir) == [1, 3]
    assert (outside / "precious.txt").read_text() == "keep"
    assert read_provenance(str(foreign_export)) is not None


def test_symlinked_export_dir_is_refused_non_versioned(exporter, tmp_path):
    target = tmp_path / "real"
    export_with(exporter, target, versioned=False)
    os.symlink(target, tmp_path / "link")
    with pytest.raises(DestinationError, match="symbolic link"):
        export_with(exporter, tmp_path / "link", versioned=False)


def test_version_names_are_plain_integers_only(tmp_path):
    for name in ("1", "02", "-3", "4a", "..5", "1.0", " 6"):
        (tmp_path / name).mkdir()
    assert placement.version_names(str(tmp_path)) == {1: "1", 2: "02"}


def test_object_store_versioned_and_partial_copy_cleanup(exporter):
    export_dir = "ram://xai_placement_tests/base"
    export_with(exporter, export_dir)
    # What a copy killed before saved_model.pb leaves: our marker, no model.
    storage.copytree(f"{export_dir}/1/assets.extra", f"{export_dir}/2/assets.extra")
    export_with(exporter, export_dir, keep=1)
    assert sorted(placement.version_names(export_dir)) == [2]
    tf.saved_model.load(f"{export_dir}/2")
