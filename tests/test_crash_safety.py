"""Exports killed with SIGKILL at many moments leave the previous export intact.

A worker (tests/crash_child.py) imports TensorFlow once and forks one child
per kill; the child SIGKILLs itself at one fault point of `storage` (before
and after every write, rename, delete, fsync and the atomic swap; tests/faults.py
wraps them), or some time after
the staging write began (inside TensorFlow's SavedModel write, reload and
verification). The parent then checks what a reader would see.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from xai_callback import ExplainableExporter, export_explainable_model
from xai_callback.names import PROVENANCE_FILE, extra_path
from xai_callback.publish.provenance import read_provenance

from models import mlp
from subprocess_runs import script_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a hung worker fails instead of stalling CI

CHILD = os.path.join(os.path.dirname(__file__), "crash_child.py")
DELAYS = ["0.1", "0.4", "0.8", "1.5"]
TEMPORARY = re.compile(r"\.xai-(staging|retired|writer)-")


def run_worker(jobs, parallel=2, timeout=240):
    request = json.dumps({"jobs": jobs, "parallel": parallel}) + "\n"
    out = subprocess.run(
        [sys.executable, CHILD], input=request, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])["results"]


@pytest.fixture(scope="module")
def model():
    return mlp(seed=0)


@pytest.fixture(scope="module")
def templates(model, tmp_path_factory):
    """A previous export in each layout, copied for every kill."""
    root = tmp_path_factory.mktemp("templates")
    versioned = root / "versioned"
    export_explainable_model(model, str(versioned), versioned=True)
    plain = root / "plain" / "model"
    export_explainable_model(model, str(plain))
    return {"versioned": versioned, "plain": plain}


def copy_template(template, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, target, symlinks=True)
    return target


def created(path):
    return read_provenance(str(path))["created_utc"], read_provenance(str(path)).get("training")


def fault_number(result):
    return int(result["fault"].split(":")[0])


def assert_loads(path):
    loaded = tf.saved_model.load(str(path))
    assert "xai_model" in loaded.signatures
    assert os.path.exists(extra_path(str(path), PROVENANCE_FILE))


@pytest.fixture(scope="module")
def kill_runs(templates, tmp_path_factory):
    """Measures the fault points of a full export, then kills at each of them."""
    root = tmp_path_factory.mktemp("kills")
    started = time.monotonic()
    layouts = {"versioned": dict(versioned=True, keep=1), "plain": dict(versioned=False)}
    probes = []
    for name, options in layouts.items():
        target = copy_template(templates[name], root / "probe" / name / "model")
        probes.append({"dir": str(target), "fault": None, **options})
    measured = {name: r for name, r in zip(layouts, run_worker(probes))}
    jobs = []
    for name, options in layouts.items():
        trace = measured[name]["trace"]
        begin = trace.index("begin") + 1
        faults = [str(n) for n in range(1, len(trace) + 1)] + [f"{begin}:{d}" for d in DELAYS]
        for fault in faults:
            target = copy_template(templates[name], root / name / fault.replace(":", "_") / "model")
            jobs.append({"dir": str(target), "fault": fault, "layout": name, **options})
    results = run_worker(jobs)
    for job, result in zip(jobs, results):
        result["layout"] = job["layout"]
    return {"measured": measured, "results": results, "seconds": time.monotonic() - started}


def test_kills_hit_at_least_20_distinct_moments(kill_runs):
    killed = [r for r in kill_runs["results"] if r["killed"]]
    operations = set(kill_runs["measured"]["versioned"]["trace"]) | set(kill_runs["measured"]["plain"]["trace"])
    print(f"\n{len(killed)} kills of {len(kill_runs['results'])} jobs in {kill_runs['seconds']:.0f} s; "
          f"operations: {sorted(operations)}")
    assert len(killed) >= 20
    assert {"begin", "write_text", "claim_rename", "rename", "exchange", "rmtree", "makedirs", "sync_tree",
            "sync_dir"} <= operations
    # Kills timed after the staging write began land inside TensorFlow's write.
    assert any(r["killed"] and ":" in r["fault"] for r in kill_runs["results"])


def test_versioned_kill_leaves_previous_version_and_no_partial_version(kill_runs, templates):
    previous = created(templates["versioned"] / "1")
    for result in kill_runs["results"]:
        if result["layout"] != "versioned":
            continue
        export_dir = result["dir"]
        numeric = sorted(n for n in os.listdir(export_dir) if n.isdigit())
        assert numeric in (["1"], ["2"], ["1", "2"]), (result, numeric)
        for name in numeric:
            assert_loads(os.path.join(export_dir, name))
        if "1" in numeric:
            assert created(os.path.join(export_dir, "1")) == previous
        elif result["killed"] and ":" not in result["fault"]:  # keep=1 retires 1 after claiming 2
            trace = kill_runs["measured"]["versioned"]["trace"]
            claims = [i + 1 for i, op in enumerate(trace) if op == "claim_rename"]
            assert fault_number(result) > claims[1], result  # 2 was in place before 1 went


def test_plain_kill_leaves_a_complete_export_at_export_dir(kill_runs, templates):
    previous = created(templates["plain"])
    for result in kill_runs["results"]:
        if result["layout"] != "plain":
            continue
        assert_loads(result["dir"])  # old or new, never absent or partial
        if result["killed"] and ":" not in result["fault"] and created(result["dir"]) != previous:
            swap = kill_runs["measured"]["plain"]["trace"].index("exchange") + 1
            assert fault_number(result) > swap, result  # new only once swapped


def test_next_export_cleans_stale_temporaries(kill_runs, model):
    # Clean-up does not depend on verification; skipping it keeps this quick.
    exporter = ExplainableExporter(model, verify=False).prepare()
    cleaned = 0
    for result in kill_runs["results"]:
        versioned = result["layout"] == "versioned"
        export_dir = result["dir"]
        where = export_dir if versioned else os.path.dirname(export_dir)
        if not [n for n in os.listdir(where) if TEMPORARY.search(n)]:
            continue
        exporter.versioned = versioned
        exporter.export(export_dir)
        assert not [n for n in os.listdir(where) if TEMPORARY.search(n)], result
        cleaned += 1
    assert cleaned >= 10  # the kills did leave temporaries to clean


def test_two_processes_exporting_at_once_get_distinct_complete_versions(tmp_path):
    export_dir = tmp_path / "shared"
    start = time.time() + 1.0  # both children exist (forked) well before this
    jobs = [{"dir": str(export_dir), "fault": None, "versioned": True, "rounds": 3, "start_at": start}
            for _ in range(2)]
    results = run_worker(jobs, parallel=2)
    assert all(r["rc"] == 0 and "error" not in r for r in results), results
    versions = sorted(int(n) for n in os.listdir(export_dir) if n.isdigit())
    assert versions == list(range(1, 7))
    writers = set()
    for number in versions:
        assert_loads(export_dir / str(number))
        training = read_provenance(str(export_dir / str(number)))["training"]
        writers.add((training["writer"], training["round"]))
    assert len(writers) == 6  # every export of both processes, none overwritten
    assert not [n for n in os.listdir(export_dir) if TEMPORARY.search(n)]


def test_no_environment_variable_can_kill_an_export(tmp_path):
    """Fault injection lives in the tests (tests/faults.py), not in the package."""
    script = (
        "import sys; from xai_callback import export_explainable_model; from models import mlp; "
        "export_explainable_model(mlp(), sys.argv[1], verify=False); print('exported')"
    )
    # The variable that made the package SIGKILL itself at its first fault point.
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model")], capture_output=True, text=True,
        timeout=240, env=script_env(XAI_CALLBACK_FAULT_INJECT="1"),
    )
    assert done.returncode == 0 and "exported" in done.stdout, (done.returncode, done.stderr[-2000:])
