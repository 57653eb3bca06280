"""batch-explain on the DirectRunner: Vertex's batch layout, the same JSON as `explain`, bad rows kept apart.

Real trained exports (tests/batch_exports.py), real Beam pipelines; each result
line is checked against `xai_callback.explain` on the same instance.
"""

import base64
import json
import os

import numpy as np
import pytest

pytest.importorskip("apache_beam")
# Tutorial models trained and exported, then Beam pipelines: the full suite runs them, `make test-fast` does not.
pytestmark = pytest.mark.slow

from batch_exports import (  # noqa: E402
    image_export,
    petfinder_export,
    petfinder_instances,
    read_lines,
    serialize_examples,
    text_export,
    tf_example_export,
    write_csv,
    write_jsonl,
)
from xai_callback.batch import batch_explain  # noqa: E402
from xai_callback.explain import explain  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6
# approximationError is a ratio of float32 round-off when the gap is tiny: xai_explain and the
# Python explainer sum in different orders (1e-6 vs 2e-5 is the same "exact").
APPROXIMATION_ATOL = 1e-3
BAD_LINES = ['{"Type": "Dog", "Age": ', "[1, 2, 3]"]


@pytest.fixture(scope="module")
def pet(tmp_path_factory):
    return petfinder_export(tmp_path_factory.mktemp("pet") / "export")


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return text_export(tmp_path_factory.mktemp("text") / "export")


def assert_same_json(got, want, path="$"):
    """Equal JSON, floats within RTOL/ATOL (the batch and explain compute in different batches)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), (path, got, want)
        for key in want:
            assert_same_json(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (path, got, want)
        for i, (a, b) in enumerate(zip(got, want)):
            assert_same_json(a, b, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(got, str):
        atol = APPROXIMATION_ATOL if path.endswith("approximationError") else ATOL
        assert got == pytest.approx(want, rel=RTOL, abs=atol), (path, got, want)
    else:
        assert got == want, (path, got, want)


def assert_explained_like_explain(export_dir, records, **options):
    response = explain(export_dir, [r["instance"] for r in records], **options).to_dict()
    for record, prediction, explanation in zip(records, response["predictions"], response["explanations"]):
        assert_same_json(record["prediction"], prediction)
        assert_same_json(record["explanation"], explanation)


def test_jsonl_results_are_explain_json_and_bad_rows_go_to_errors(pet, tmp_path):
    export_dir, _, data = pet
    good = petfinder_instances(data, 12)
    wrong_type = dict(good[0], Age="old")
    unknown_key = dict(good[1], Colour="Red")
    path = write_jsonl(tmp_path / "in.jsonl", good[:6] + [wrong_type] + good[6:] + [unknown_key], BAD_LINES)
    result = batch_explain(export_dir, path, str(tmp_path / "out"), batch_size=4)

    assert result.route == "signature"  # the export has xai_explain and no setting was given
    assert (result.explained, result.failed) == (12, 4)
    names = sorted(os.listdir(tmp_path / "out"))
    assert any(n.startswith("prediction.results-00000-of-") for n in names), names
    assert any(n.startswith("prediction.errors_stats-00000-of-") for n in names), names
    records = read_lines(str(tmp_path / "out" / "prediction.results-*"))
    assert sorted(json.dumps(r["instance"], sort_keys=True) for r in records) == sorted(
        json.dumps(g, sort_keys=True) for g in good)
    assert all(set(r) == {"instance", "prediction", "explanation"} for r in records)
    assert_explained_like_explain(export_dir, records)

    errors = {json.dumps(e["instance"], sort_keys=True): e["error"]
              for e in read_lines(str(tmp_path / "out" / "prediction.errors_stats-*"))}
    assert len(errors) == 4
    assert all(e["status"] == "INVALID_ARGUMENT" for e in errors.values())
    assert "'old'" in errors[json.dumps(wrong_type, sort_keys=True)]["message"]
    assert "Colour" in errors[json.dumps(unknown_key, sort_keys=True)]["message"]
    assert "not JSON" in errors[json.dumps(BAD_LINES[0])]["message"]
    assert "bare value" in errors[json.dumps([1, 2, 3])]["message"]


def test_settings_other_than_the_stored_ones_use_the_python_explainer(text, tmp_path):
    export_dir, _, data = text
    instances = [{"text": t} for t in data["text"][:6, 0]]
    path = write_jsonl(tmp_path / "in.jsonl", instances)
    result = batch_explain(export_dir, path, str(tmp_path / "out"), step_count=30, batch_size=4)
    assert result.route == "python"
    records = read_lines(str(tmp_path / "out" / "prediction.results-*"))
    assert len(records) == 6
    assert all("tokens" in r["explanation"] for r in records)
    assert_explained_like_explain(export_dir, records, step_count=30)


def test_text_token_importance_is_the_mean_abs_attribution_of_the_results(text, tmp_path):
    export_dir, _, data = text
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in data["text"][:20, 0]])
    result = batch_explain(export_dir, path, str(tmp_path / "out"), batch_size=8)
    assert result.route == "signature"
    records = read_lines(str(tmp_path / "out" / "prediction.results-*"))
    assert_explained_like_explain(export_dir, records)

    # Recomputed here from the result lines, independently of the accumulator.
    sums, tokens = {}, {}
    for record in records:
        attribution = record["explanation"]["attributions"][0]["featureAttributions"]["text"]
        sums["text"] = sums.get("text", 0.0) + float(np.sum(np.abs(attribution)))
        for token, value in zip(record["explanation"]["tokens"]["text"], attribution):
            if token:
                tokens.setdefault(token, []).append(abs(value))
    importance = json.load(open(tmp_path / "out" / "importance.json"))
    assert importance == result.importance
    assert importance["instances"] == 20
    assert importance["features"]["text"]["meanAbsAttribution"] == pytest.approx(sums["text"] / 20)
    assert importance["features"]["text"]["share"] == pytest.approx(1.0)
    assert set(importance["tokens"]["text"]) == set(tokens)
    for token, values in tokens.items():
        entry = importance["tokens"]["text"][token]
        assert entry["count"] == len(values)
        assert entry["meanAbsAttribution"] == pytest.approx(np.mean(values))
    ranked = [e["meanAbsAttribution"] for e in importance["tokens"]["text"].values()]
    assert ranked == sorted(ranked, reverse=True)


def test_csv_with_a_header_and_an_excluded_label_column(pet, tmp_path):
    export_dir, _, data = pet
    instances = petfinder_instances(data, 5)
    columns = list(instances[0]) + ["label"]
    rows = [[instance[c] for c in columns[:-1]] + [i % 2] for i, instance in enumerate(instances)]
    rows.append(["Dog", "Black", "Small", "four", 10.0, 1.0, 0])  # Age is an int64 input
    write_csv(tmp_path / "in-1.csv", columns, rows)
    # A file whose header is not the model's: each of its rows goes to the errors output.
    write_csv(tmp_path / "in-2.csv", ["Type", "Colour"], [["Dog", "Red"], ["Cat", "Blue"]])
    result = batch_explain(export_dir, str(tmp_path / "in-*.csv"), str(tmp_path / "out"),
                           exclude_fields=["label"])
    assert (result.explained, result.failed) == (5, 3)
    records = read_lines(str(tmp_path / "out" / "prediction.results-*"))
    assert sorted(r["instance"]["label"] for r in records) == ["0", "0", "0", "1", "1"]
    for record in records:
        del record["instance"]["label"]
    assert_explained_like_explain(export_dir, records)
    errors = {json.dumps(e["instance"]): e["error"]["message"]
              for e in read_lines(str(tmp_path / "out" / "prediction.errors_stats-*"))}
    (bad_cell,) = [m for m in errors.values() if "'four'" in m]
    assert "'Age'" in bad_cell
    assert "unknown columns ['Colour']" in errors[json.dumps("Dog,Red")]
    assert "missing ['Age'" in errors[json.dumps("Cat,Blue")]


def test_tfrecord_of_tf_examples_for_an_export_that_parses_them(tmp_path):
    import tensorflow as tf

    export_dir, _, x = tf_example_export(tmp_path / "export")
    path = str(tmp_path / "in.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in serialize_examples(x[:6]) + [b"not a tf.Example"]:
            writer.write(record)
    result = batch_explain(export_dir, path, str(tmp_path / "out"))
    assert (result.explained, result.failed, result.route) == (6, 1, "python")
    records = read_lines(str(tmp_path / "out" / "prediction.results-*"))
    assert sorted(base64.b64decode(r["instance"]["b64"]) for r in records) == sorted(serialize_examples(x[:6]))
    assert_explained_like_explain(export_dir, records)


def test_image_export_display_names_and_importance_chart(tmp_path):
    export_dir, _, x = image_export(tmp_path / "export")
    path = write_jsonl(tmp_path / "in.jsonl", [{"image": row.tolist()} for row in x[:8]])
    result = batch_explain(export_dir, path, str(tmp_path / "out"), plot=True, num_shards=2)
    assert result.explained == 8
    assert sorted(n for n in os.listdir(tmp_path / "out") if n.startswith("prediction.results")) == [
        "prediction.results-00000-of-00002", "prediction.results-00001-of-00002"]
    records = read_lines(str(tmp_path / "out" / "prediction.results-*"))
    assert {r["explanation"]["attributions"][0]["outputDisplayName"] for r in records} <= {"a", "b", "c"}
    assert_explained_like_explain(export_dir, records)
    assert list(result.importance["features"]) == ["image"]
    assert open(tmp_path / "out" / "importance.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
