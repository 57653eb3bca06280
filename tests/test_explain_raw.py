"""Explanations per raw feature and per token on Keras models split by hand.

Real Keras preprocessing layers (StringLookup, IntegerLookup, CategoryEncoding,
Normalization, Embedding, HashedCrossing, TextVectorization), trained briefly,
exported through the engine with `preprocess_fn`/`model_fn` as the split of
SPLIT_CONTRACT.md (see `split_exports.py`).
"""

import itertools
import json
import math
import numpy as np
import pytest
import tensorflow as tf

import split_exports as se
from explain_checks import assert_complete, quiet, units
from xai_callback import SampledShapley, validate
from xai_callback.errors import ExportVerificationError, SpecError
from xai_callback.explain import Explainer, explain, load_explainer
from xai_callback.explain.errors import BaselineError
from xai_callback.explain.instances import instances_to_tensors

PETS = [
    {"Type": "Cat", "Age": 3, "Breed": "Husky", "Fee": 100.0, "PhotoAmt": 2.0},
    {"Type": "Dog", "Age": 12, "Breed": "Tabby", "Fee": 0.0, "PhotoAmt": 5.0},
    {"Type": "Dog", "Age": 1, "Breed": "Unknown", "Fee": 150.0, "PhotoAmt": 0.0},
]
TEXTS = ["the movie was great", "bad plot and long acting", "great"]


@pytest.fixture(scope="module")
def petfinder(tmp_path_factory):
    return se.petfinder_split_export(tmp_path_factory.mktemp("pets") / "1")


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    return se.petfinder_split_export(tmp_path_factory.mktemp("wide") / "1", wide=True)


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return se.text_split_export(tmp_path_factory.mktemp("text") / "1")


# --- tabular: one attribution per raw feature --------------------------------------

def test_petfinder_split_by_hand_validates(petfinder):
    report = validate(petfinder[0])
    assert report.ok, str(report)
    assert report["baselines_run"].status == "PASS"


def test_one_attribution_per_raw_feature_summing_slots(petfinder):
    path, model, _ = petfinder
    raw = explain(path, PETS)
    encoded = explain(path, PETS, granularity="encoded")
    for a_raw, a_enc in zip(units(raw), units(encoded)):
        assert set(a_raw.feature_attributions) == {"Type", "Age", "Breed", "Fee", "PhotoAmt"}
        for name in ("Type", "Age", "Breed"):  # one-hot slots / embedding cells summed
            assert np.ndim(a_raw.feature_attributions[name]) == 0
            assert a_raw.feature_attributions[name] == pytest.approx(
                float(np.sum(a_enc.feature_attributions[name])), rel=1e-9, abs=1e-12)
        np.testing.assert_array_equal(a_raw.feature_attributions["Fee"], a_enc.feature_attributions["Fee"])
    # encoded granularity is per element, as before: one example of each tensor
    shapes = {k: np.shape(v) for k, v in units(encoded)[0].feature_attributions.items()}
    assert shapes == {"Type": (3,), "Age": (6,), "Breed": (1, se.EMBEDDING), "Fee": (1,), "PhotoAmt": (1,)}
    assert_complete(raw)
    predictions = model.predict(
        {k: tf.constant([[p[k]] for p in PETS], model.input[k].dtype) for k in PETS[0]}, verbose=0)
    np.testing.assert_allclose(np.ravel(raw.predictions), predictions.ravel(), rtol=1e-5, atol=1e-6)
    # what was explained, in raw units
    assert raw.explanations[2].inputs["Breed"] == b"Unknown" and raw.explanations[0].inputs["Age"] == 3
    body = json.loads(raw.to_json())["explanations"][0]
    assert isinstance(body["attributions"][0]["featureAttributions"]["Type"], float)
    assert "tokens" not in body


def test_inputs_as_users_pass_them_give_the_same_explanation(petfinder):
    path = petfinder[0]
    rows = explain(path, PETS)
    columns = explain(path, {k: np.array([p[k] for p in PETS]) for k in PETS[0]})  # [batch] for [None, 1]
    one = explain(path, PETS[1])  # a dict of scalars: one instance

    def ages(response):
        return [float(a.feature_attributions["Age"]) for a in units(response)]

    assert ages(columns) == pytest.approx(ages(rows), rel=1e-6)
    assert ages(one) == pytest.approx(ages(rows)[1:2], rel=1e-6)


def test_sampled_shapley_players_are_whole_raw_features(petfinder):
    """Exact Shapley (4 players: 24 orders <= 50 paths) equals the values over raw-feature coalitions."""
    path = petfinder[0]
    explainer = load_explainer(path)
    explainer.metadata = json.loads(json.dumps(explainer.metadata))
    del explainer.metadata["inputs"]["PhotoAmt"]  # carried: 4 players
    response = explainer.explain_instances(PETS[:2], method="sampled-shapley", path_count=50)
    assert_complete(response, exact=True)
    model_inputs = explainer.preprocess_fn(**instances_to_tensors(PETS[:2], explainer.instance_specs))
    names = ["Type", "Age", "Breed", "Fee"]
    baseline = {n: np.broadcast_to(np.asarray(explainer.metadata["inputs"][n].get(
        "encodedBaselines", explainer.metadata["inputs"][n].get("inputBaselines"))[0], np.float32),
        model_inputs[n].shape[1:]) for n in names}

    def value(i, coalition):
        rows = {k: v[i:i + 1] for k, v in model_inputs.items()}
        rows.update({n: tf.constant(baseline[n][None]) for n in names if n not in coalition})
        return float(explainer.model_fn(**rows)["score"][0, 0])

    for i, a in enumerate(units(response)):
        for name in names:
            others = [n for n in names if n != name]
            exact = sum(
                math.factorial(len(s)) * math.factorial(len(names) - len(s) - 1) / math.factorial(len(names))
                * (value(i, set(s) | {name}) - value(i, set(s)))
                for r in range(len(others) + 1) for s in itertools.combinations(others, r))
            assert float(np.sum(a.feature_attributions[name])) == pytest.approx(exact, abs=1e-5)
        assert a.approximation_error == 0.0  # every order taken: exact


def test_shapley_and_ig_on_raw_features(petfinder):
    shapley = quiet(explain, petfinder[0], PETS, method="sampled-shapley", path_count=20)
    ig = explain(petfinder[0], PETS)
    assert_complete(shapley, exact=True)  # complete on every path
    for s, g in zip(units(shapley), units(ig)):
        assert set(s.feature_attributions) == set(g.feature_attributions)
        assert np.ndim(s.feature_attributions["Type"]) == 0


def test_groups_and_crosses(wide):
    path = wide[0]
    raw = explain(path, PETS)
    encoded = explain(path, PETS, granularity="encoded")
    for a_raw, a_enc in zip(units(raw), units(encoded)):
        # one-hot and embedding of Breed are one group; the cross is its own feature
        assert set(a_raw.feature_attributions) == {"Type", "Age", "Fee", "PhotoAmt", "Breed", "Type_X_Age"}
        members = [float(np.sum(a_enc.feature_attributions[n])) for n in ("Breed", "Breed_embedding")]
        assert a_raw.feature_attributions["Breed"] == pytest.approx(sum(members), rel=1e-9, abs=1e-12)
        assert np.ndim(a_raw.feature_attributions["Type_X_Age"]) == 0
    assert_complete(raw)
    assert raw.explanations[0].inputs["Type_X_Age"].tolist() == [b"Cat", 3]
    shapley = quiet(explain, path, PETS[:1], method="sampled-shapley", path_count=10)
    assert_complete(shapley, exact=True)
    assert set(units(shapley)[0].feature_attributions) == set(units(raw)[0].feature_attributions)


def test_group_name_of_another_feature_is_refused(petfinder):
    explainer = load_explainer(petfinder[0])
    explainer.metadata = json.loads(json.dumps(explainer.metadata))
    explainer.metadata["inputs"]["Age"]["groupName"] = "Type"
    with pytest.raises(SpecError, match=r"groupName 'Type'.*\['Age'\].*another input"):
        explainer.explain_instances(PETS)


def test_unknown_granularity_is_refused(petfinder):
    with pytest.raises(ValueError, match=r"granularity.*'tokens'"):
        explain(petfinder[0], PETS, granularity="tokens")


# --- text: one attribution per token -------------------------------------------------

def test_one_attribution_per_token_with_strings(text):
    path, model = text[:2]
    response = explain(path, TEXTS)
    assert validate(path).ok
    for explanation, sentence in zip(response.explanations, TEXTS):
        words = [w if w in se.WORDS else "[UNK]" for w in sentence.split()]
        tokens = explanation.tokens["text"]
        assert tokens == words + [""] * (se.TEXT_LENGTH - len(words))
        per_token = explanation.attributions[0].feature_attributions["text"]
        assert per_token.shape == (se.TEXT_LENGTH,)
        assert np.all(per_token[len(words):] == 0.0)  # padding: exactly zero
        assert np.all(per_token[: len(words)] != 0.0)
    assert_complete(response)
    body = json.loads(response.to_json())["explanations"][0]
    assert body["tokens"]["text"][:4] == ["the", "movie", "was", "great"]
    assert len(body["attributions"][0]["featureAttributions"]["text"]) == se.TEXT_LENGTH
    np.testing.assert_allclose(np.ravel(response.predictions),
                               model.predict(tf.constant(TEXTS)[:, None], verbose=0).ravel(), rtol=1e-5)


def test_shapley_players_are_tokens(text):
    response = quiet(explain, text[0], TEXTS, method="sampled-shapley", path_count=10)
    assert_complete(response, exact=True)
    for explanation, sentence in zip(response.explanations, TEXTS):
        per_token = explanation.attributions[0].feature_attributions["text"]
        count = len(sentence.split())
        assert np.all(per_token[count:] == 0.0) and np.all(per_token[:count] != 0.0)


def test_encoded_granularity_keeps_embedding_cells(text):
    response = explain(text[0], TEXTS, granularity="encoded")
    assert response.explanations[0].tokens == {}
    cells = response.explanations[0].attributions[0].feature_attributions["text"]
    assert cells.shape == (se.TEXT_LENGTH, se.EMBEDDING)
    raw = explain(text[0], TEXTS)
    np.testing.assert_allclose(cells.sum(axis=-1), raw.explanations[0].attributions[0].feature_attributions["text"])


def test_without_features_file_tokens_are_positions(tmp_path):
    path = se.text_split_export(tmp_path / "1", features_file=False, epochs=1)[0]
    response = explain(path, TEXTS)
    assert response.explanations[0].tokens == {}
    assert response.explanations[0].attributions[0].feature_attributions["text"].shape == (se.TEXT_LENGTH,)
    assert_complete(response)


def test_padding_is_frozen_when_the_model_sees_it(text):
    """A body WITHOUT the mask and a zero baseline: padding rows would move the output;
    they keep the instance's value on every path, so they get exactly 0 and
    completeness still holds (against that baseline with padding kept)."""
    path, _, vectorizer, embedding = text
    dense = tf.keras.layers.Dense(1)
    dense.build((None, se.EMBEDDING))

    def unmasked(text, text_ids):
        return {"score": dense(tf.reduce_mean(text, axis=1))}

    ids = vectorizer(tf.constant(TEXTS)[:, None])
    inputs = {"text": embedding(ids), "text_ids": ids}
    metadata = {"inputs": {"text": {"inputTensorName": "text", "encodedTensorName": "text",
                                    "encoding": "CONCAT_EMBEDDING", "encodedBaselines": [0.0]}},
                "outputs": {"score": {"outputTensorName": "score"}}}
    features = {"format": 1, "features": {"text": {
        "kind": "tokens", "ids_key": "text_ids", "vocabulary": vectorizer.get_vocabulary(), "padding_id": 0}}}
    frozen = Explainer(unmasked, metadata, xai_features=features).explain(inputs, step_count=20)
    loose = Explainer(unmasked, metadata).explain(inputs, step_count=20)
    for f, l, sentence in zip(frozen.explanations, loose.explanations, TEXTS):
        count = len(sentence.split())
        assert np.all(f.attributions[0].feature_attributions["text"][count:] == 0.0)
        assert np.all(l.attributions[0].feature_attributions["text"][count:] != 0.0)
    assert_complete(frozen)


def test_token_ids_that_do_not_fit_are_named(text):
    explainer = load_explainer(text[0])
    explainer.xai_features = {"format": 1, "features": {"text": {
        "kind": "tokens", "ids_key": "token_ids", "vocabulary": ["", "[UNK]"], "padding_id": 0}}}
    with pytest.raises(SpecError, match=r"'text'.*ids_key 'token_ids'.*text_ids"):
        explainer.explain_instances(TEXTS)


# --- baselines that the model cannot process --------------------------------------

@pytest.fixture(scope="module")
def strict_empty_baseline(tmp_path_factory):
    return se.strict_lookup_export(tmp_path_factory.mktemp("strict") / "1", "",
                                   SampledShapley(path_count=4), verify=False)


def test_validate_fails_naming_the_feature_and_baseline(strict_empty_baseline):
    report = validate(strict_empty_baseline)
    assert not report.ok
    result = report["baselines_run"]
    assert result.status == "FAIL"
    assert "feature 'Type'" in result.reason and "baseline ''" in result.reason
    assert "num_oov_indices=0" in result.reason


def test_explain_names_the_feature_and_baseline(strict_empty_baseline):
    with pytest.raises(ExportVerificationError, match=r"baselines_run: feature 'Type': baseline ''"):
        explain(strict_empty_baseline, [{"Type": "Cat", "Fee": 10.0}])
    with pytest.raises(BaselineError, match=r"Baseline '' of feature 'Type' cannot be processed") as info:
        explain(strict_empty_baseline, [{"Type": "Cat", "Fee": 10.0}], validate=False)
    assert info.value.feature == "Type" and info.value.baseline == ""
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_cli_shows_no_traceback(strict_empty_baseline, tmp_path, capsys):
    from xai_callback.cli import main

    instances = tmp_path / "pets.jsonl"
    instances.write_text(json.dumps({"Type": "Cat", "Fee": 10.0}) + "\n")
    assert main(["explain", strict_empty_baseline, "--instances", str(instances)]) == 1
    err = capsys.readouterr().err
    assert "feature 'Type': baseline ''" in err and "Traceback" not in err
    assert main(["validate", strict_empty_baseline]) == 1
    assert "FAIL  baselines_run" in capsys.readouterr().out


def test_string_feature_without_string_baseline(tmp_path):
    with pytest.raises(SpecError, match=r"would not be explained.*'Type' is the string input"):
        se.strict_lookup_export(tmp_path / "0", None, SampledShapley(path_count=4))
    path = se.strict_lookup_export(tmp_path / "1", None, SampledShapley(path_count=4), verify=False)
    assert "feature 'Type'" in validate(path)["baselines_run"].reason
    with pytest.raises(SpecError, match=r"'Type' is the string input 'Type'.*baseline 0 is not a string"):
        explain(path, [{"Type": "Cat", "Fee": 10.0}], validate=False)
