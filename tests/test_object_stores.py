"""Exports on real object-store servers, through fsspec: `s3://` against moto's S3
server, `gs://` against gcp-storage-emulator. Both run on 127.0.0.1 (free port)
for this module; clients are pointed at them the way users point theirs at a
MinIO or an emulator (`AWS_ENDPOINT_URL`, `STORAGE_EMULATOR_HOST`). Nothing is
mocked: the bytes go over HTTP to a server that speaks the protocol.

Covered (docs/destinations.md): export by the callback, replace, versions and
keep, a replace killed at every storage call and repaired, `validate`,
`explain`, `serve` and the local copy they load from.
"""

import contextlib
import os
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

# gcsfs asks Google's gRPC control plane for a bucket's layout (60 s time-outs
# against an emulator, which has none). Set before gcsfs is first imported.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import fsspec  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from xai_callback import DestinationError, ExplainableExporter, XaiExportCallback  # noqa: E402
from xai_callback.contract.validation import validate  # noqa: E402
from xai_callback.explain import explain  # noqa: E402
from xai_callback.names import PROVENANCE_FILE, extra_path  # noqa: E402
from xai_callback.publish import object_stores, placement, staging, storage, writers  # noqa: E402
from xai_callback.publish.cleanup import clean_stale  # noqa: E402
from xai_callback.publish.destination import Destination  # noqa: E402
from xai_callback.publish.local_copy import local_copy  # noqa: E402
from xai_callback.publish.provenance import read_provenance  # noqa: E402
from xai_callback.publish.store_placement import copy_files  # noqa: E402

from explain_checks import assert_complete, units  # noqa: E402
from faults import Faults, Killed, drop_locks  # noqa: E402
from models import csv_lines, mlp, parse_csv, tabular_data  # noqa: E402
from serve_helpers import ThreadServer, request  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

START_SECONDS = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(command, port):
    """A server process on 127.0.0.1:`port`, up within START_SECONDS, stopped after."""
    log = tempfile.TemporaryFile()  # servers log every request: a pipe nobody reads would fill and stall them
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{command[2]} did not start: {log.read()[-2000:]!r}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def s3_bucket():
    """`s3://BUCKET` on moto's S3 server (fake credentials)."""
    port = free_port()
    with server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port) as url, \
            pytest.MonkeyPatch.context() as patch:
        for name, value in (("AWS_ENDPOINT_URL", url), ("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
            patch.setenv(name, value)
        object_stores.file_system("s3://xai-tests").mkdir("xai-tests")  # a bucket
        yield "s3://xai-tests"


@pytest.fixture(scope="module")
def gs_bucket():
    """`gs://BUCKET` on gcp-storage-emulator (anonymous)."""
    port = free_port()
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
               "--port", str(port), "--in-memory"]
    with server(command, port) as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", url)
        patch.setitem(fsspec.config.conf, "gs", {"token": "anon", "project": "xai-tests"})
        object_stores.file_system("gs://xai-tests").mkdir("xai-tests")
        yield "gs://xai-tests"


@pytest.fixture(scope="module")
def model():
    x, y = tabular_data(rows=64)
    model = mlp(seed=2)
    model.fit(x, y, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def exporter(model):
    return ExplainableExporter(model, verify=False).prepare()


def fresh(bucket):
    return f"{bucket}/{uuid.uuid4().hex[:8]}"


def export_with(exporter, path, versioned=False, keep=None, training_info=None):
    exporter.versioned, exporter.keep = versioned, keep
    return exporter.export(path, training_info=training_info)


def predictions(path, x):
    loaded = tf.saved_model.load(local_copy(path))
    return loaded.signatures["xai_model"](feats=tf.constant(x))["score"].numpy()


def test_callback_exports_to_s3_and_replaces_only_its_files(s3_bucket, model):
    x, y = tabular_data(rows=64)
    base = fresh(s3_bucket)
    export_dir = f"{base}/churn"
    trained = mlp(seed=3)
    callback = XaiExportCallback(export_dir, preprocess_fn=parse_csv, sample={"csv": csv_lines(x[:4])})
    trained.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    np.testing.assert_allclose(predictions(export_dir, x[:5]), trained.predict(x[:5], verbose=0),
                               rtol=1e-5, atol=1e-6)
    record = read_provenance(export_dir)
    assert set(record["files"]) >= set(storage.list_files(export_dir))
    assert storage.listdir(base) == ["churn"]  # no staging, retired copy or writer marker in the store
    storage.write_text(f"{export_dir}/assets.extra/tf_serving_warmup_requests", "warmup")
    trained.fit(x, y, epochs=1, verbose=0, callbacks=[callback])  # a replace
    np.testing.assert_allclose(predictions(export_dir, x[:5]), trained.predict(x[:5], verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert storage.read_text(f"{export_dir}/assets.extra/tf_serving_warmup_requests") == "warmup"
    assert read_provenance(export_dir)["created_utc"] >= record["created_utc"]
    assert storage.listdir(base) == ["churn"]


def test_versions_and_keep_on_s3(s3_bucket, exporter):
    base = fresh(s3_bucket)
    paths = [export_with(exporter, base, versioned=True, keep=2, training_info={"n": n}).path
             for n in range(3)]
    assert paths == [f"{base}/{n}" for n in (1, 2, 3)]
    assert placement.published_versions(base) == [2, 3]
    assert placement.newest_published_version(base) == 3
    assert sorted(storage.listdir(base)) == ["2", "3"]
    assert read_provenance(f"{base}/3")["training"] == {"n": 2}


@pytest.fixture(scope="module")
def written(exporter, tmp_path_factory):
    """One export n=2 written locally, copied into each staging directory."""
    path = str(tmp_path_factory.mktemp("written") / "export")
    exporter._write(path, {"n": 2})
    return path


def kill_publish_at(at, written, export_dir, monkeypatch):
    """Replaces export n=1 by n=2, the process 'dying' at fault point `at` (None: never)."""
    staged = staging.begin(Destination(export_dir))
    shutil.copytree(written, staged.path)
    with monkeypatch.context() as patch:
        faults = Faults(at=at, action="die" if at else None).install(patch)
        try:
            staged.publish()
            staged.close()
        except Killed:
            drop_locks(staged)
    return faults


def test_s3_replace_killed_at_each_storage_call_is_repaired(s3_bucket, exporter, written, monkeypatch):
    template = f"{fresh(s3_bucket)}/model"
    export_with(exporter, template, training_info={"n": 1})
    measured = f"{fresh(s3_bucket)}/model"
    copy_files(template, measured)
    # The fault points of a replace on the store: copies, deletions, markers.
    points = kill_publish_at(None, written, measured, monkeypatch).count
    assert points >= 20
    restored = 0
    for at in range(1, points + 1):
        export_dir = f"{fresh(s3_bucket)}/model"
        copy_files(template, export_dir)
        faults = kill_publish_at(at, written, export_dir, monkeypatch)
        assert faults.dead, at
        parent = placement.split_path(export_dir)[0]
        retired = [n for n in storage.listdir(parent) if ".xai-retired-" in n]
        complete_copy = any(placement.is_complete(f"{parent}/{n}") for n in retired)
        assert placement.is_complete(export_dir) or complete_copy, (at, faults.trace[-3:])
        restored += not placement.is_complete(export_dir)
        monkeypatch.setattr(writers, "STALE_SECONDS", -1)  # the killed writer is gone
        clean_stale(Destination(export_dir))
        monkeypatch.undo()
        assert placement.is_complete(export_dir), at
        assert read_provenance(export_dir)["training"]["n"] in (1, 2), at
        assert storage.listdir(parent) == ["model"], (at, storage.listdir(parent))
        if at % 5 == 1:  # loadable, not only complete by its marker (a load costs ~1 s)
            tf.saved_model.load(local_copy(export_dir))
    assert restored  # some kills did leave export_dir incomplete: restored from the retired copy


def test_validate_explain_and_local_copy_read_s3(s3_bucket, model):
    x, _ = tabular_data(rows=8)
    export_dir = f"{fresh(s3_bucket)}/m"
    exporter = ExplainableExporter(model, preprocess_fn=parse_csv, sample={"csv": csv_lines(x[:4])})
    exporter.export(export_dir)
    report = validate(export_dir)
    assert report.ok, str(report)
    assert not any(r.skipped for r in report.results), str(report)  # the stored sample was read
    response = explain(export_dir, [{"csv": line} for line in csv_lines(x[:2])], step_count=50)
    assert [a.instance_output_value for a in units(response)] == pytest.approx(
        model.predict(x[:2], verbose=0)[:, 0], rel=1e-4, abs=1e-5)
    assert_complete(response)
    # One copy per published export: reused while unchanged, made again after a replace.
    first = local_copy(export_dir)
    assert local_copy(export_dir) == first and os.path.isfile(extra_path(first, PROVENANCE_FILE))
    exporter.export(export_dir)
    second = local_copy(export_dir)
    assert second != first and read_provenance(second)["writer"] == read_provenance(export_dir)["writer"]


def test_serve_reads_versions_from_s3(s3_bucket, exporter, model):
    base = fresh(s3_bucket)
    export_with(exporter, base, versioned=True)
    x, _ = tabular_data(rows=3)
    with ThreadServer(base, poll_seconds=0.2) as served:
        status, body, _ = request(served.port, "POST", "/v1/models/" + base.rsplit("/", 1)[1] + ":predict",
                                  {"instances": x.tolist()})
        assert status == 200, body
        np.testing.assert_allclose(np.array(body["predictions"]).reshape(-1),
                                   model.predict(x, verbose=0).reshape(-1), rtol=1e-5, atol=1e-6)
        status, body, _ = request(served.port, "POST", "/v1/models/" + base.rsplit("/", 1)[1] + ":explain",
                                  {"instances": x[:1].tolist()})
        assert status == 200 and body["explanations"], body
        export_with(exporter, base, versioned=True)  # version 2 appears on the store
        deadline = time.monotonic() + 60
        while served.repository.get(served.repository.name).version != 2:
            assert time.monotonic() < deadline, "version 2 was not picked up from s3://"
            time.sleep(0.2)


def test_missing_bucket_is_refused_before_training(s3_bucket):
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/model"
    with pytest.raises(DestinationError) as info:
        XaiExportCallback(missing)
    assert f"export_dir={missing!r} cannot be written" in str(info.value)


def test_gs_export_versions_validate_and_explain(gs_bucket, model):
    x, _ = tabular_data(rows=8)
    base = fresh(gs_bucket)
    exporter = ExplainableExporter(model, preprocess_fn=parse_csv, sample={"csv": csv_lines(x[:4])},
                                   versioned=True, keep=1)
    for _ in range(2):
        exporter.export(base)
    assert placement.published_versions(base) == [2] and storage.listdir(base) == ["2"]
    assert validate(f"{base}/2").ok
    response = explain(f"{base}/2", [{"csv": line} for line in csv_lines(x[:1])])
    assert response.explanations[0].attributions[0].instance_output_value == pytest.approx(
        float(model.predict(x[:1], verbose=0)[0, 0]), rel=1e-4, abs=1e-5)
    plain = f"{fresh(gs_bucket)}/m"
    exporter.versioned, exporter.keep = False, None
    exporter.export(plain)
    exporter.export(plain)  # a replace
    assert placement.is_complete(plain) and storage.listdir(placement.split_path(plain)[0]) == ["m"]
