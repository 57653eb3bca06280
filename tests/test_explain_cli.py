"""`xai-callback explain` and the plots: exit codes, JSON output, PNG files."""

import base64
import json

import numpy as np
import pytest

import explain_exports as ex
from explain_exports import run_cli
from xai_callback.explain import explain
from xai_callback.explain.plot import pixel_heat, plot_explanations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CSV_METADATA = {
    "inputs": {"iris": {"inputTensorName": "features", "inputBaselines": [[5.8, 3.0, 3.8, 1.2]],
                        "encoding": "BAG_OF_FEATURES", "indexFeatureMapping": ["sl", "sw", "pl", "pw"]}},
    "outputs": {"species": {"outputTensorName": "probabilities", "indexDisplayNameMapping": ex.CLASSES}},
}


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    return ex.csv_export(tmp_path_factory.mktemp("csv") / "1", CSV_METADATA,
                         {"integratedGradientsAttribution": {"stepCount": 30}})


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    metadata = {"inputs": {"picture": {"inputTensorName": "image", "modality": "image",
                                       "visualization": {"type": "OUTLINES", "polarity": "BOTH"}}},
                "outputs": {"scores": {"outputTensorName": "scores"}}}
    return ex.image_export(tmp_path_factory.mktemp("image") / "1", metadata)


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "instances.jsonl"
    path.write_text('"5.1,3.5,1.4,0.2"\n\n"6.7,3.0,5.2,2.3"\n')
    return path


def test_json_lines_to_output_file_and_plot(csv_dir, jsonl, tmp_path):
    out, plot = tmp_path / "response.json", tmp_path / "plot.png"
    assert run_cli(csv_dir, "--instances", jsonl, "--output", out, "--plot", plot, "--steps", 60) == 0
    body = json.loads(out.read_text())
    assert len(body["explanations"]) == 2 and len(body["predictions"]) == 2
    attribution = body["explanations"][0]["attributions"][0]
    assert attribution["outputDisplayName"] in ex.CLASSES
    assert len(attribution["featureAttributions"]["iris"]) == 4
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_request_body_and_shapley_to_stdout(csv_dir, tmp_path, capsys):
    body = tmp_path / "request.json"
    body.write_text(json.dumps({"instances": ["5.1,3.5,1.4,0.2"]}))
    assert run_cli(csv_dir, "--instances", body, "--method", "sampled-shapley", "--paths", 3) == 0
    response = json.loads(capsys.readouterr().out)
    attribution = response["explanations"][0]["attributions"][0]
    total = sum(attribution["featureAttributions"]["iris"])
    # Shapley is complete on every path
    assert total == pytest.approx(attribution["instanceOutputValue"] - attribution["baselineOutputValue"],
                                  abs=1e-5)


def test_low_steps_warn_on_stderr(csv_dir, jsonl, capsys):
    assert run_cli(csv_dir, "--instances", jsonl, "--steps", 1) == 0
    assert "warning: approximationError" in capsys.readouterr().err


def test_progress_bar_goes_to_stderr_not_the_json(csv_dir, tmp_path, capsys):
    many = tmp_path / "many.jsonl"
    many.write_text("\n".join(json.dumps(f"{5 + i / 100},3.0,4.0,1.0") for i in range(64)))
    assert run_cli(csv_dir, "--instances", many, "--steps", 99, "--max-rows-per-call", 1000) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["explanations"]) == 64
    assert "6400/6400" in captured.err


def test_image_plot_honours_outlines(image_dir, tmp_path):
    instances = tmp_path / "images.jsonl"
    instances.write_text("\n".join(json.dumps({"b64": base64.b64encode(ex.png_bytes(s)).decode()})
                                   for s in range(2)))
    plot = tmp_path / "heat.png"
    assert run_cli(image_dir, "--instances", instances, "--steps", 5, "--plot", plot) == 0
    assert plot.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("content, named", [
    ('"1,2,3,4"\nnot json\n', "line 2"),
    ("", "no instances"),
])
def test_unreadable_instances_exit_2(csv_dir, tmp_path, capsys, content, named):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert run_cli(csv_dir, "--instances", path) == 2
    assert named in capsys.readouterr().err


def test_instances_not_matching_signature_exit_2(csv_dir, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"features": [1, 2, 3, 4]}))
    assert run_cli(csv_dir, "--instances", path) == 2
    assert "csv_line" in capsys.readouterr().err


def test_option_of_other_method_exit_2(csv_dir, jsonl, capsys):
    assert run_cli(csv_dir, "--instances", jsonl, "--paths", 4) == 2
    err = capsys.readouterr().err
    # Named as the command line spells it (not the Python keyword).
    assert "--paths 4" in err and "--steps" in err and "path_count" not in err


def test_registered_in_the_xai_callback_command(csv_dir, jsonl, capsys):
    from xai_callback.cli import main

    assert main(["explain", csv_dir, "--instances", str(jsonl), "--top-k", "2"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [len(e["attributions"]) for e in body["explanations"]] == [2, 2]


def test_missing_export_exit_2(tmp_path, jsonl, capsys):
    assert run_cli(tmp_path / "nowhere", "--instances", jsonl) == 2
    assert "nowhere" in capsys.readouterr().err


def test_invalid_export_exit_1(tmp_path, jsonl, capsys):
    path = ex.csv_export(tmp_path / "1", {"inputs": {"iris": {"inputTensorName": "feature"}},
                                          "outputs": {"p": {"outputTensorName": "probabilities"}}})
    assert run_cli(path, "--instances", jsonl) == 1
    assert "'feature'" in capsys.readouterr().err


def test_pixel_heat_polarity_and_clipping():
    attribution = np.stack([np.linspace(-1, 1, 16).reshape(4, 4)] * 3, axis=-1)
    settings = {"polarity": "POSITIVE", "clipPercentUpperbound": 100, "clipPercentLowerbound": 50}
    heat = pixel_heat(attribution, settings)
    assert heat.min() == 0 and heat.max() == 1
    assert np.count_nonzero(heat) == 8  # the negative half is dropped by polarity
    both = pixel_heat(attribution, {**settings, "polarity": "BOTH"})
    assert both.min() == -1 and np.count_nonzero(both) == 8  # lower half of |values| clipped away


def test_tabular_plot_to_png(csv_dir, tmp_path):
    response = explain(csv_dir, ["5.1,3.5,1.4,0.2"])
    path = plot_explanations(response, tmp_path / "bars.png")
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC


# --- raw features, tokens, noise ---------------------------------------------------

@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    import split_exports as se

    return se.text_split_export(tmp_path_factory.mktemp("text") / "1", epochs=1)[0]


def test_text_plot_shows_each_token_coloured_by_attribution(text_dir, tmp_path):
    from xai_callback.explain.plot import COLOR_MAPS, explanation_figure

    response = explain(text_dir, ["the movie was great"])
    figure = explanation_figure(response)
    (ax,) = figure.axes
    drawn = [t for t in ax.texts if t.get_bbox_patch() is not None]
    assert [t.get_text() for t in drawn] == ["the", "movie", "was", "great"]  # no padding
    values = response.explanations[0].attributions[0].feature_attributions["text"][:4]
    strongest = int(np.argmax(np.abs(values)))
    expected = COLOR_MAPS["PINK_WHITE_GREEN"](0.5 + 0.5 * np.sign(values[strongest]))
    np.testing.assert_allclose(drawn[strongest].get_bbox_patch().get_facecolor(), expected)
    assert "text" in ax.get_title()
    plot = tmp_path / "tokens.png"
    plot_explanations(response, plot)
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_bars_are_labelled_with_raw_names_and_values():
    from matplotlib.figure import Figure

    from xai_callback.explain.plot import draw_bar_chart

    ax = Figure().subplots()
    draw_bar_chart(ax, {"Type": np.float64(0.3), "Fee": np.array([-0.1]), "sex_X_age": np.float64(0.05),
                        "iris": np.array([0.2, -0.01])},
                   {"iris": {"indexFeatureMapping": ["sl", "sw"]}},
                   values={"Type": b"Cat", "Fee": np.float32(100.0), "sex_X_age": np.array(["1", "60"])})
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(["Type = Cat", "Fee = 100", "sex_X_age", "sl", "sw"])


def test_noise_is_not_rescaled_into_a_heat_map(tmp_path):
    import tensorflow as tf

    from xai_callback.explain import Explainer
    from xai_callback.explain.plot import explanation_figure

    metadata = {"inputs": {"image": {"inputTensorName": "image", "modality": "image"}},
                "outputs": {"y": {"outputTensorName": "y"}}}
    blind = Explainer(lambda image: {"y": 1e-14 * tf.reduce_sum(image, axis=[1, 2, 3]) + 1.0}, metadata)
    with pytest.warns(UserWarning, match="does not respond"):
        response = blind.explain({"image": np.random.default_rng(0).random((1, 8, 8, 3), np.float32)})
    (ax,) = explanation_figure(response).axes
    assert "attributions ~0" in ax.get_title()
    overlay = ax.get_images()[-1].get_array()
    assert np.all(np.asarray(overlay)[..., 3] == 0)  # a fully transparent heat layer


def test_granularity_flag(text_dir, tmp_path, capsys):
    instances = tmp_path / "texts.jsonl"
    instances.write_text('"the movie was great"\n')
    assert run_cli(text_dir, "--instances", instances) == 0
    raw = json.loads(capsys.readouterr().out)["explanations"][0]
    assert raw["tokens"]["text"][:4] == ["the", "movie", "was", "great"]
    assert len(raw["attributions"][0]["featureAttributions"]["text"]) == 8
    assert run_cli(text_dir, "--instances", instances, "--granularity", "encoded") == 0
    encoded = json.loads(capsys.readouterr().out)["explanations"][0]
    assert "tokens" not in encoded
    assert np.shape(encoded["attributions"][0]["featureAttributions"]["text"]) == (8, 3)
