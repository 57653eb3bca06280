"""`xai-callback batch-explain` and `compare-importance`: exit codes, refusals before the pipeline,
the multi-process DirectRunner, and Beam staying out of the core."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("apache_beam")

from batch_exports import read_lines, serialize_examples, write_jsonl  # noqa: E402
from models import tabular_data, trained_mlp  # noqa: E402
from subprocess_runs import script_env  # noqa: E402
from xai_callback import cli, export_explainable_model  # noqa: E402
from xai_callback.batch import batch_explain, compare_importance  # noqa: E402
from xai_callback.errors import ExportVerificationError  # noqa: E402
from xai_callback.names import VERTEX_METADATA_FILE, extra_path  # noqa: E402
from xai_callback.publish import storage  # noqa: E402

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "bad_inputs.md")
SUBPROCESS_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """`(with xai_explain, without, instances file)` of a trained MLP."""
    root = tmp_path_factory.mktemp("mlp")
    model, _ = trained_mlp()
    x, _ = tabular_data(48)
    with_signature, without = str(root / "sig"), str(root / "nosig")
    export_explainable_model(model, with_signature, explain_signature=True)
    export_explainable_model(model, without)
    instances = write_jsonl(root / "in.jsonl", [{"feats": row.tolist()} for row in x], ['{"feats": [1, 2]}'])
    return with_signature, without, instances


def _with_old_results(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "prediction.results-00000-of-00001").write_text("{}\n")
    return dict(output_dir=str(out))


def _txt_input(tmp_path):
    (tmp_path / "in.txt").write_text("[1, 2, 3, 4]\n")
    return dict(input_pattern=str(tmp_path / "in.txt"))


def _tfrecord_input(tmp_path):
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(tmp_path / "in.tfrecord")) as writer:
        writer.write(serialize_examples(np.zeros((1, 4), np.float32))[0])
    return dict(input_pattern=str(tmp_path / "in.tfrecord"))


# (id, kwargs or a function of tmp_path giving them, error, fragments of the message)
CASES = [
    ("batch-no-input-file", dict(input_pattern="/nonexistent/day-*.jsonl"), ValueError,
     ["No input file matches", "/nonexistent/day-*.jsonl"]),
    ("batch-unknown-extension", _txt_input, ValueError, ["in.txt", "input_format"]),
    ("batch-unknown-format", dict(input_format_name="parquet"), ValueError, ["'parquet'", "jsonl"]),
    ("batch-size-zero", dict(batch_size=0), ValueError, ["batch_size", "0"]),
    ("batch-size-string", dict(batch_size="8"), TypeError, ["batch_size='8'"]),
    ("batch-output-has-results", _with_old_results, ValueError, ["prediction.results-00000-of-00001",
                                                                 "overwrite"]),
    ("batch-tfrecord-not-parsed", _tfrecord_input, ValueError, ["TFRecord", "'feats': 'float32[None, 4]'"]),
    ("batch-signature-route-with-settings", dict(route="signature", step_count=10), ValueError,
     ["route='signature'", "stored method"]),
    ("batch-signature-route-without-signature", dict(route="signature", export="nosig"), ValueError,
     ["route='signature'", "no 'xai_explain'"]),
    ("batch-unknown-route", dict(route="fast"), ValueError, ["'fast'", "python"]),
    ("batch-unknown-setting", dict(steps=10), ValueError, ["['steps']", "step_count"]),
    ("batch-unknown-method", dict(method="lime"), ValueError, ["lime"]),
    ("batch-unknown-pipeline-option", dict(pipeline_options=["--runnr=DirectRunner"]), ValueError,
     ["--runnr"]),
    ("batch-pipeline-options-string", dict(pipeline_options="--runner=DirectRunner"), TypeError,
     ["'--runner=DirectRunner'"]),
    ("batch-plot-without-importance", dict(plot=True, importance=False), ValueError, ["importance=True"]),
    ("batch-no-export", dict(export="/nonexistent/export"), ExportVerificationError,
     ["/nonexistent/export"]),
]


@pytest.mark.parametrize("make, error, fragments", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_bad_arguments_are_refused_before_the_pipeline_runs(exports, tmp_path, make, error, fragments):
    with_signature, without, instances = exports
    kwargs = dict(input_pattern=instances, output_dir=str(tmp_path / "out"))
    kwargs.update(make(tmp_path) if callable(make) else make)
    export = kwargs.pop("export", "sig")
    export_dir = {"sig": with_signature, "nosig": without}.get(export, export)
    with pytest.raises(error) as info:
        batch_explain(export_dir, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    written = [n for n in os.listdir(tmp_path / "out")] if (tmp_path / "out").exists() else []
    assert written in ([], ["prediction.results-00000-of-00001"])  # nothing new written


def test_every_case_is_in_docs_bad_inputs():
    doc = open(DOC).read()
    section = doc.split("## Batch explanations", 1)[1]
    ids = {line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}
    from test_batch_logger import LOGGER_CASES

    expected = {c[0] for c in CASES} | set(LOGGER_CASES) | {"compare-threshold-out-of-range"}
    assert ids == expected, (sorted(ids - expected), sorted(expected - ids))


def test_compare_threshold_out_of_range():
    importance = {"features": {"a": {"meanAbsAttribution": 1.0, "share": 1.0}}}
    with pytest.raises(ValueError, match=r"threshold.*received 2"):
        compare_importance(importance, importance, threshold=2)


def _importance(shares):
    return {"format": 1, "features": {name: {"meanAbsAttribution": 2 * share, "share": share}
                                      for name, share in shares.items()}}


def test_compare_importance_reports_share_changes_and_gates_on_the_threshold(tmp_path, capsys):
    before = _importance({"age": 0.6, "fee": 0.3, "type": 0.1})
    after = _importance({"age": 0.35, "fee": 0.4, "type": 0.15, "color": 0.1})
    report = compare_importance(before, after, threshold=0.2)
    assert report["drifted"] == ["age"]
    assert list(report["features"])[:2] == ["age", "fee"]
    assert report["features"]["age"]["shareChange"] == pytest.approx(-0.25)
    assert report["features"]["color"]["present"] == "after"
    assert report["totalVariation"] == pytest.approx((0.25 + 0.1 + 0.05 + 0.1) / 2)

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(before))
    b.write_text(json.dumps(after))
    assert cli.main(["compare-importance", str(a), str(b), "--threshold", "0.2",
                     "--output", str(tmp_path / "report.json")]) == 1
    assert "age" in capsys.readouterr().out
    assert json.loads((tmp_path / "report.json").read_text())["drifted"] == ["age"]
    assert cli.main(["compare-importance", str(a), str(b), "--threshold", "0.3"]) == 0
    (tmp_path / "c.json").write_text('{"predictions": []}')
    assert cli.main(["compare-importance", str(a), str(tmp_path / "c.json")]) == 2
    assert "not a feature importance file" in capsys.readouterr().err
    assert cli.main(["compare-importance", str(a), str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_cli_exit_codes(exports, tmp_path, capsys):
    with_signature, _, instances = exports
    out = str(tmp_path / "out")
    assert cli.main(["batch-explain", with_signature, "--input", instances, "--output", out,
                     "--batch-size", "8", "--direct_num_workers=1"]) == 0
    err = capsys.readouterr().err
    assert "48 instances explained, 1 failed (route: signature)" in err
    assert len(read_lines(out + "/prediction.results-*")) == 48
    # The same data gives the same importance: no drift.
    assert cli.main(["compare-importance", out + "/importance.json", out + "/importance.json"]) == 0

    assert cli.main(["batch-explain", with_signature, "--input", instances[:-6] + "-*.jsonl", "--output",
                     str(tmp_path / "o2")]) == 2
    assert "No input file matches" in capsys.readouterr().err
    assert cli.main(["batch-explain", with_signature, "--input", instances, "--output",
                     str(tmp_path / "o3"), "--top_k=3"]) == 2
    assert "--top_k" in capsys.readouterr().err

    # An export that breaks the contract: exit 1, as `explain`.
    broken = str(tmp_path / "broken")
    shutil.copytree(with_signature, broken)
    metadata = storage.read_json(extra_path(broken, VERTEX_METADATA_FILE))
    next(iter(metadata["inputs"].values()))["inputTensorName"] = "nothing"
    storage.write_json(extra_path(broken, VERTEX_METADATA_FILE), metadata)
    assert cli.main(["batch-explain", broken, "--input", instances, "--output", str(tmp_path / "o4")]) == 1
    assert "not explanation-ready" in capsys.readouterr().err


@pytest.mark.slow
def test_two_worker_processes_give_the_results_of_one(exports, tmp_path):
    with_signature, _, instances = exports
    one = batch_explain(with_signature, instances, str(tmp_path / "one"), batch_size=8)
    command = [sys.executable, "-m", "xai_callback.cli", "batch-explain", with_signature, "--input", instances,
               "--output", str(tmp_path / "two"), "--batch-size", "8",
               "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    done = subprocess.run(command, env=script_env(), timeout=SUBPROCESS_TIMEOUT_S,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "48 instances explained, 1 failed" in done.stdout
    by_instance = {json.dumps(r["instance"]): r for r in read_lines(str(tmp_path / "one" / "prediction.results-*"))}
    two = read_lines(str(tmp_path / "two" / "prediction.results-*"))
    assert len(two) == one.explained == 48
    for record in two:
        want = by_instance[json.dumps(record["instance"])]
        np.testing.assert_allclose(
            record["explanation"]["attributions"][0]["featureAttributions"]["feats"],
            want["explanation"]["attributions"][0]["featureAttributions"]["feats"], rtol=1e-5, atol=1e-7)
    assert len(read_lines(str(tmp_path / "two" / "prediction.errors_stats-*"))) == 1
    importance = json.load(open(tmp_path / "two" / "importance.json"))
    assert importance["features"]["feats"]["meanAbsAttribution"] == pytest.approx(
        one.importance["features"]["feats"]["meanAbsAttribution"], rel=1e-5)


@pytest.mark.slow
def test_the_core_and_compare_importance_do_not_import_beam():
    code = ("import sys, xai_callback, xai_callback.batch; "
            "from xai_callback.batch import compare_importance, importance_of; "
            "from xai_callback import AttributionLogger; "
            "from xai_callback.cli import build_parser; build_parser(); "
            "print('beam' if 'apache_beam' in sys.modules else 'no beam')")
    done = subprocess.run([sys.executable, "-c", code], env=script_env(), timeout=120,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert done.stdout.strip().splitlines()[-1] == "no beam", done.stderr[-3000:]
