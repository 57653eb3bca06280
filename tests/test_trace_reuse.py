"""One trace serves every count: settings a request may vary are tensors of the traced graph code.

A server takes stepCount, pathCount, noisySampleCount, noiseSigma, topK and
outputIndices from each request; were any of them a constant of the traced
functions, every new value would trace again (~200 ms, ~1-2 MB kept).
"""

import numpy as np
import pytest

import explain_exports as ex
from explain_checks import assert_same_response, quiet
from xai_callback.explain import load_explainer

CSV = ["5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3", "5.9,3.0,4.2,1.5"]
METADATA = {
    "inputs": {"iris": {"inputTensorName": "features", "encoding": "BAG_OF_FEATURES",
                        "inputBaselines": [[5.8, 3.0, 3.8, 1.2], [4.0, 2.0, 1.0, 0.1]],
                        "indexFeatureMapping": ["sl", "sw", "pl", "pw"]}},
    "outputs": {"species": {"outputTensorName": "probabilities"}},
}

# (method, the settings varied request by request); 4 players: at most 23 paths are sampled.
VARIED = {
    "step_count": ("integrated-gradients", [{"step_count": n} for n in (3, 7, 20, 50, 64)]),
    "path_count": ("sampled-shapley", [{"path_count": n} for n in (1, 2, 5, 11, 23)]),
    "noisy_sample_count": ("smoothgrad", [{"noisy_sample_count": n, "noise_sigma": 0.1, "step_count": 5}
                                          for n in (1, 2, 3, 5, 8)]),
    "noise_sigma": ("smoothgrad", [{"noise_sigma": s, "noisy_sample_count": 3} for s in (0.01, 0.1, 0.2, 0.5, 1.0)]),
    "step_count_of_smoothgrad": ("smoothgrad", [{"step_count": n, "noise_sigma": 0.1, "noisy_sample_count": 2}
                                                for n in (2, 4, 9, 16, 30)]),
    "top_k": ("integrated-gradients", [{"top_k": k} for k in (1, 2, 3, -1, 1)]),
    "output_indices": ("integrated-gradients", [{"output_indices": i} for i in
                                                ([[0]], [[2]], [[1], [0]], [[0], [1], [2]], [[2], [2]])]),
}


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    return ex.csv_export(tmp_path_factory.mktemp("csv") / "1", metadata=METADATA,
                         parameters={"integratedGradientsAttribution": {"stepCount": 50}})


@pytest.mark.parametrize("varied", sorted(VARIED))
def test_new_settings_trace_nothing_and_equal_fresh_explainers(csv_dir, varied):
    method, settings = VARIED[varied]
    explainer = load_explainer(csv_dir, validate=False)
    responses = [quiet(explainer.explain_instances, CSV, method=method, seed=3, **settings[0]).to_dict()]
    traced = set(explainer._compiled)
    for options in settings[1:]:
        responses.append(quiet(explainer.explain_instances, CSV, method=method, seed=3, **options).to_dict())
        new = set(explainer._compiled) - traced
        assert not new, f"{varied}={list(options.values())} traced again: {sorted(map(str, new))}"
    for options, response in zip(settings, responses):
        fresh = load_explainer(csv_dir, validate=False)
        assert_same_response(response, quiet(fresh.explain_instances, CSV, method=method, seed=3,
                                             **options).to_dict())


def test_three_methods_with_varied_settings_are_traced_once(csv_dir):
    """Requests alternating three methods with varied counts, topK and seeds: every compiled
    function of the first round is kept and serves the later ones (none dropped, none traced again)."""
    explainer = load_explainer(csv_dir, validate=False)
    first = None
    for r in range(4):
        for method, options in (("integrated-gradients", {"step_count": 10 + r}),
                                ("sampled-shapley", {"path_count": 3 + r}),
                                ("smoothgrad", {"noisy_sample_count": 2 + r, "noise_sigma": 0.1 * (r + 1)})):
            quiet(explainer.explain_instances, CSV, method=method, top_k=1 + r % 3, seed=r, **options)
        if first is None:
            first = dict(explainer._compiled)
    retraced = [str(key) for key, fn in explainer._compiled.items() if first.get(key) is not fn]
    assert not retraced and len(explainer._compiled) == len(first), retraced


def test_counts_still_change_the_numbers(csv_dir):
    """The counts reach the graph: a traced function given another count computes for that count."""
    explainer = load_explainer(csv_dir, validate=False)
    few, many = (np.array([a.approximation_error for e in quiet(
        explainer.explain_instances, CSV, step_count=n).explanations for a in e.attributions])
        for n in (2, 100))
    assert np.all(many < few), (few, many)
