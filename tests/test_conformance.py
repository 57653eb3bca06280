"""The conformance suite: the tutorial models of docs/compatibility.md, certified and explained.

Each row trains a model in the shape of a keras.io / tensorflow.org tutorial
with the callback for one epoch on generated data (`conformance_models.py`;
JAX, PyTorch and tf-keras rows in their own processes, `conformance_script.py`,
with hard timeouts), then checks from disk (`conformance_checks.certify`):
`validate`, `explain` with every method its features allow (completeness
checked from the SavedModel's signatures), `xai_explain`, and one `serve`
request. Rows whose fix is under way are `xfail(strict=True)`: when the fix
lands they pass, the suite fails, and the mark goes.

The last test checks that docs/compatibility.md shows the table these rows
produce (`conformance_table.py`).

Run: `pytest -m conformance tests/test_conformance.py` (the fast tier skips it).
"""

import concurrent.futures
import dataclasses
import json
import os
import tempfile

import numpy as np
import pytest

import conformance_models as models
import conformance_table
from conformance_checks import ALL_METHODS, certify
from subprocess_runs import run_script
from xai_callback.explain.precision import FLOAT16_EPSILON

pytestmark = pytest.mark.conformance

TIMEOUT_S = 900  # one process per group: TensorFlow, its backend, a few models
KERAS3 = "Keras 3, TensorFlow"
GRADIENTS = ("integrated-gradients", "smoothgrad")


@dataclasses.dataclass(frozen=True)
class Case:
    """One row: a tutorial model and how it is built and checked.

    Attributes:
        build: `build(export_dir) -> (path, instances)` in this process, or None.
        group: the `conformance_script.py` group that builds it in its own process.
        known_failure: the reason of its `xfail(strict=True)` mark, or None.
        rounding: the outputs' rounding allowed in completeness checks (float16 models).
    """

    name: str
    tutorial: str
    build: object = None
    group: str = None
    route: str = KERAS3
    methods: tuple = ALL_METHODS
    known_failure: str = None
    rounding: float = 1e-4


def fixing(today):
    """The xfail reason of a row of the tutorial table whose fix is under way: what happens today."""
    return f"{today} (a fix under way)"


CASES = [
    Case("jax_mlp", "an MLP on the JAX backend", group="jax", route="Keras 3, JAX (jax2tf)"),
    Case("jax_normalization", "TF basic regression on JAX (adapted Normalization)", group="jax",
         route="Keras 3, JAX (jax2tf)"),
    Case("featurespace", "keras.io structured data with FeatureSpace (preprocess_fn=feature_space)",
         models.featurespace),
    Case("petfinder", "TF structured data with preprocessing layers (PetFinder)", models.petfinder),
    Case("wide_deep", "keras.io wide & deep (one-hot, embedding, hashed cross)", models.wide_deep),
    Case("regression", "TF basic regression (adapted Normalization)", models.regression),
    Case("multi_output", "Keras functional API: two heads, output_key", models.multi_output),
    Case("mixed_precision", "TF mixed precision (mixed_float16)", models.mixed_precision,
         rounding=8 * FLOAT16_EPSILON),
    Case("text_in_model", "TextVectorization -> Embedding -> pooling inside the model",
         models.text_in_model),
    Case("lstm_text", "TF text classification with an RNN (Bidirectional LSTM, mask_zero)",
         models.lstm_text),
    Case("rnn_sequence", "Keras RNN guide: GRU, Bidirectional(LSTM) over a float sequence",
         models.rnn_sequence),
    Case("image_bytes", "PNG bytes decoded by xai_preprocess, a small CNN", models.image_bytes),
    Case("discretization", "a float column -> Discretization -> CategoryEncoding(one_hot)",
         models.discretization),
    Case("mobilenet_v2", "TF transfer learning: MobileNetV2 (alpha 0.35, 96x96, weights=None)",
         models.mobilenet_v2, methods=GRADIENTS),
    Case("torch_mlp", "an MLP on the PyTorch backend", group="torch",
         route="Keras 3, PyTorch (TensorFlow subprocess copy)"),
    Case("tf_keras_mlp", "an MLP on tf-keras", group="tf_keras", route="tf-keras 2 (TF_USE_LEGACY_KERAS=1)"),
    Case("dict_outputs", "dict outputs, IntegerLookup -> CategoryEncoding, output_key",
         models.dict_outputs),
    Case("variable_length_text", "keras.io text classification from scratch (ids Input(None,))",
         models.variable_length_text),
    Case("float_ids_embedding", "Keras functional API multi-input: float32 ids into Embedding",
         models.float_ids_embedding),
    Case("unnamed_input", "an unnamed keras.Input (keras.applications)", models.unnamed_input),
    Case("jax_subprocess_normalization", "TF basic regression on JAX, TensorFlow subprocess route",
         group="jax_subprocess", route="Keras 3, JAX (TensorFlow subprocess copy)",),
    Case("torch_normalization", "TF basic regression on PyTorch (adapted Normalization)",
         group="torch", route="Keras 3, PyTorch (TensorFlow subprocess copy)",),
    Case("tf_keras_petfinder", "TF PetFinder on tf-keras, SampledShapley", group="tf_keras",
         route="tf-keras 2 (TF_USE_LEGACY_KERAS=1)", methods=("sampled-shapley",)),
    Case("tf_keras_featurespace", "keras.io FeatureSpace on tf-keras", group="tf_keras",
         route="tf-keras 2 (TF_USE_LEGACY_KERAS=1)"),
]
GROUP_ENV = {"jax": {"KERAS_BACKEND": "jax"}, "torch": {"KERAS_BACKEND": "torch"},
             "jax_subprocess": {"KERAS_BACKEND": "jax", "XAI_CALLBACK_JAX_ROUTE": "tf_subprocess"},
             "tf_keras": {"TF_USE_LEGACY_KERAS": 1}}
RESULTS = {}


def params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.known_failure)] if case.known_failure else []
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="module")
def group_runs(request, tmp_path_factory):
    """`{group: future of its RESULT}`: the groups of the selected rows, started together."""
    selected = {item.callspec.params["case"].group for item in request.session.items
                if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)}
    selected.discard(None)
    pool = concurrent.futures.ThreadPoolExecutor(max(1, len(selected)))

    def run(group):
        return run_script("conformance_script.py", group, tmp_path_factory.mktemp(group),
                          timeout=TIMEOUT_S, **GROUP_ENV[group])

    futures = {group: pool.submit(run, group) for group in sorted(selected)}
    yield futures
    pool.shutdown(wait=True)


def built_in_subprocess(case, group_runs):
    result = group_runs[case.group].result()["cases"][case.name]
    if "error" in result:
        raise AssertionError(f"{case.name} in its {case.group} process: {result['error']}\n"
                             f"{result['traceback']}")
    return result["path"], {k: decode(v) for k, v in result["instances"].items()}


def decode(value):
    if "strings" in value:
        return np.array(value["strings"], object)
    return np.array(value["values"], value["dtype"])


@pytest.mark.parametrize("case", list(params()))
def test_tutorial_model_is_certified_and_explained(case, request, tmp_path_factory):
    RESULTS[case.name] = {"name": case.name, "tutorial": case.tutorial, "route": case.route,
                          "methods": list(case.methods), "outcome": "known failure",
                          "reason": case.known_failure}
    if case.group is not None:
        path, instances = built_in_subprocess(case, request.getfixturevalue("group_runs"))
    else:
        path, instances = case.build(tmp_path_factory.mktemp(case.name) / "export")
    certify(path, instances, case.methods, rounding=case.rounding)
    RESULTS[case.name].update(outcome="passed", reason=None)


def test_compatibility_table_is_the_suites():
    """docs/compatibility.md shows the table of the rows above (run the whole suite)."""
    missing = [case.name for case in CASES if case.name not in RESULTS]
    if missing:
        pytest.skip(f"rows not run in this session: {missing}")
    results = [RESULTS[case.name] for case in CASES]
    table = conformance_table.render(results)
    if conformance_table.documented() != table:
        # Outside pytest's numbered temporary folders, which later runs delete.
        path = os.path.join(tempfile.gettempdir(), "xai_callback_conformance_results.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
        pytest.fail("docs/compatibility.md does not show the suite's table; rewrite it with "
                    f"`python tests/conformance_table.py {path}`. The table:\n{table}")
