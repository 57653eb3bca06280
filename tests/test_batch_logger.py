"""AttributionLogger: the global importance of a held sample in TensorBoard, epoch by epoch.

Real `fit` runs; the event files are read back with TensorFlow's summary
iterator, and the last epoch's numbers are checked against `explain` on an
export of the trained model.
"""

import glob

import numpy as np
import pytest
import tensorflow as tf

from batch_exports import image_data, image_model
from models import tabular_data
from preprocessing_models import text_classifier
from xai_callback import AttributionLogger, export_explainable_model
from xai_callback.batch import importance_of
from xai_callback.explain import explain


def read_events(log_dir):
    """`{tag: {step: value}}`: scalars as floats, images and text as numpy arrays."""
    out = {}
    for path in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                out.setdefault(value.tag, {})[event.step] = float(array) if array.ndim == 0 and \
                    array.dtype.kind == "f" else array
    return out


@pytest.mark.slow  # a real fit per test
def test_scalars_per_feature_each_epoch_equal_explain_on_the_trained_model(tmp_path):
    from models import mlp

    x, y = tabular_data(64)
    model = mlp()
    logger = AttributionLogger(str(tmp_path / "logs"), sample={"feats": x[:16], "label": y[:16]})
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[logger])

    events = read_events(tmp_path / "logs")
    assert sorted(events["xai/importance/feats"]) == [0, 1]
    assert sorted(events["xai/importance/feats[0]"]) == [0, 1]
    assert events["xai/share/feats"][1] == pytest.approx(1.0)
    assert len(logger.seconds) == 2 and sorted(events["xai/seconds"]) == [0, 1]

    # The last epoch's numbers are those of the trained model's export.
    export_explainable_model(model, str(tmp_path / "export"))
    response = explain(str(tmp_path / "export"), {"feats": x[:16]}).to_dict()
    attributions = np.array([e["attributions"][0]["featureAttributions"]["feats"]
                             for e in response["explanations"]])
    assert events["xai/importance/feats"][1] == pytest.approx(np.abs(attributions).sum(axis=1).mean(), rel=1e-4)
    for i in range(4):
        assert events[f"xai/importance/feats[{i}]"][1] == pytest.approx(
            np.abs(attributions[:, i]).mean(), rel=1e-4, abs=1e-7)


@pytest.mark.slow  # a real fit per test
def test_image_model_gets_attribution_maps_and_every_n_epochs_spaces_the_logging(tmp_path):
    x, y = image_data(32)
    model = image_model()
    logger = AttributionLogger(str(tmp_path / "logs"), sample=x[:8], every_n_epochs=2, max_images=2)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[logger])
    events = read_events(tmp_path / "logs")
    assert sorted(events["xai/importance/image"]) == [1]  # epochs 2 only (0-based step 1)
    maps = events["xai/attribution_map/image"][1]  # [width, height, PNG of each image]
    assert maps.shape == (2 + 3,)
    assert [bytes(v) for v in maps[:2]] == [b"8", b"8"]
    assert all(bytes(png).startswith(b"\x89PNG") for png in maps[2:])


@pytest.mark.slow  # a real fit per test
def test_text_model_gets_token_tables_through_the_split(tmp_path):
    model, data = text_classifier(rows=64)
    logger = AttributionLogger(str(tmp_path / "logs"), sample={"text": data["text"][:16]})
    dataset = tf.data.Dataset.from_tensor_slices((data["text"], np.zeros(64, "float32"))).batch(32)
    model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[logger])
    events = read_events(tmp_path / "logs")
    table = bytes(events["xai/tokens/text"][0].item()).decode()
    assert table.startswith("| token | mean abs attribution | count |")
    words = set(" ".join(data["text"][:16, 0]).split())
    listed = {line.split("|")[1].strip() for line in table.splitlines()[2:] if line.startswith("| ")}
    assert listed and listed <= words
    assert "xai/importance/text" in events


def test_importance_of_merges_like_one_pass():
    rng = np.random.default_rng(0)
    explanations = [{"attributions": [{"featureAttributions": {"a": float(v), "b": rng.normal(size=3).tolist()}}],
                     "tokens": {}} for v in rng.normal(size=10)]
    whole = importance_of(explanations, keep_maps=True)
    halves = importance_of(explanations[:4], keep_maps=True).merge(importance_of(explanations[4:], keep_maps=True))
    merged, single = halves.summary(), whole.summary()
    assert list(merged["features"]) == list(single["features"])
    for name, entry in single["features"].items():
        assert merged["features"][name] == pytest.approx(entry)
    assert (merged["instances"], merged["attributions"]) == (10, 10)
    np.testing.assert_allclose(halves.mean_maps()["b"], whole.mean_maps()["b"])
    a = np.mean([abs(e["attributions"][0]["featureAttributions"]["a"]) for e in explanations])
    assert whole.summary()["features"]["a"]["meanAbsAttribution"] == pytest.approx(a)


# (id, arguments, error, fragment of the message); also in docs/bad_inputs.md.
LOGGER_CASES = {
    "logger-no-sample": (dict(sample=None), ValueError, "sample=None"),
    "logger-every-zero": (dict(sample=np.zeros((2, 4)), every_n_epochs=0), ValueError, "every_n_epochs"),
    "logger-every-string": (dict(sample=np.zeros((2, 4)), every_n_epochs="2"), TypeError, "every_n_epochs='2'"),
    "logger-unknown-option": (dict(sample=np.zeros((2, 4)), preprocess=None), TypeError, "['preprocess']"),
    "logger-export-only-option": (dict(sample=np.zeros((2, 4)), verify=True), TypeError, "['verify']"),
}


@pytest.mark.parametrize("kwargs, error, fragment", [pytest.param(*case, id=name)
                                                     for name, case in LOGGER_CASES.items()])
def test_bad_logger_arguments_are_refused_at_construction(kwargs, error, fragment, tmp_path):
    with pytest.raises(error) as info:
        AttributionLogger(str(tmp_path), **kwargs)
    assert fragment in str(info.value)
