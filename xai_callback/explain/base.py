"""Shared base of the attribution methods: the problem, the result, the base class.

Each method builds "rows": model inputs on a path from a baseline to an
instance (interpolation steps for integrated gradients, feature coalitions for
Shapley), and sends the rows of all instances, outputs, baselines and steps
through the model with the batched engine (`engine.py`) in a few large calls
of at most `max_rows_per_call` rows, so the per-call overhead of a SavedModel
signature is paid a handful of times, not once per step. A method is graph
code only (`start`, `chunk`, `finish`): the Python explainer and the
`xai_explain` signature run the same code.

A method is one module with one `AttributionAlgorithm` subclass; defining the
subclass registers it (see `method_classes`).
"""

import dataclasses

import numpy as np

from xai_callback.errors import SpecError
from xai_callback.explain.errors import MethodNotSupportedError

# Default chunk size: at most this many input values (summed over all input
# tensors) per call, i.e. 4 MB of float32 inputs; activations are a multiple.
# Larger chunks bought no speed on CPU in benchmarks/bench_explain.py.
MAX_VALUES_PER_CALL = 2**20
MAX_ROWS_PER_CALL = 8192
# `approximationError` above this makes `explain` warn (the service's advice).
APPROXIMATION_ERROR_WARNING = 0.05

_REGISTRY = []


@dataclasses.dataclass
class Problem:
    """What to attribute, shared by all methods.

    Attributes:
        model_fn: `model_fn(**inputs) -> {key: tensor}`.
        output_key: the explained output tensor.
        inputs: `{key: tf.Tensor}` model inputs of the instances (batch first).
        baselines: `{key: array or tensor}` for each attributed input, shape
            `[num_baselines, *example_shape]`; unattributed inputs keep their
            instance values.
        unit_instance: `[num_units]` int, the instance of each unit (a unit is
            one instance and one explained output element).
        unit_mask: `[num_units, *output_example_shape]` one-hot float mask
            selecting the explained output element.
        feature_names: `{key: feature name}` of the attributed inputs.
        frozen: `{key: bool [instances, *example_shape]}` positions of
            attributed inputs that keep the instance's value on every path
            (token padding), so their attribution is exactly 0.
        players: `({key: int array of one example's shape}, count)`: the
            sampled Shapley player of each element; None: every element is
            one (see `granularity.FeatureLayout.player_maps`).
        max_rows_per_call: chunk size in rows; None -> `default_rows_per_call`.
        seed: seed of the random numbers a method draws.
        progress: optional `progress(rows_done, rows_total)`.
        compiled: the engine's compiled functions (each method's start,
            chunk and finish); the explainer passes the same dict to every
            call so traces are reused.
    """

    model_fn: object
    output_key: str
    inputs: dict
    baselines: dict
    unit_instance: object
    unit_mask: object
    feature_names: dict
    frozen: dict = dataclasses.field(default_factory=dict)
    players: tuple = None
    max_rows_per_call: int = None
    seed: int = 0
    progress: object = None
    compiled: dict = dataclasses.field(default_factory=dict)

    @property
    def attributed_keys(self):
        return list(self.baselines)

    def player_maps(self):
        """`({key: int array of one example's shape}, number of players)`."""
        if self.players is not None:
            return self.players
        maps, total = {}, 0
        for key, base in self.baselines.items():
            shape = tuple(base.shape[1:])
            size = int(np.prod(shape))
            maps[key] = np.arange(total, total + size, dtype=np.int64).reshape(shape)
            total += size
        return maps, total

    def rows_per_call(self):
        if self.max_rows_per_call is not None:
            if int(self.max_rows_per_call) < 1:
                raise ValueError(
                    f"max_rows_per_call must be >= 1; received {self.max_rows_per_call!r}."
                )
            return int(self.max_rows_per_call)
        return default_rows_per_call(self.inputs)


@dataclasses.dataclass
class MethodResult:
    """Per unit: `attributions` `{key: [num_units, *example]}`, the model
    output at the baselines (averaged over baselines and paths), and the
    approximation error."""

    attributions: dict
    baseline_output: np.ndarray
    approximation_error: np.ndarray


class AttributionAlgorithm:
    """Base class of attribution methods.

    Subclasses set `name` (what users pass as `method=`), `parameters_key`
    (the Vertex `ExplanationParameters` field) and `override_paths` (Python
    keyword -> path in that field's JSON), and implement `from_config` and the
    graph code run by `engine.run` / `engine.run_in_graph`: `rows_per_item`,
    `total_rows`, `chunk`, `finish` and optionally `start` and `bind`.

    Example:

    ```python
    class MyMethod(AttributionAlgorithm):
        name = "my-method"
        parameters_key = "myMethodAttribution"
        override_paths = {"step_count": ("stepCount",)}

        @classmethod
        def from_config(cls, config): ...

        def rows_per_item(self, state): ...        # rows of one work item (an int)
        def total_rows(self, state): ...           # graph: rows of all items
        def chunk(self, evaluate, state, start, stop): ...  # {"rows": ..., "items": ...}
        def finish(self, state, rows, items): ...  # {"attributions", "baseline_output", ...}
    ```
    """

    name = None
    parameters_key = None
    override_paths = {}
    # What lowers the approximation error, for the warning (see `precision_advice`).
    precision_hint = None
    needs_gradients = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY.append(cls)

    @classmethod
    def accepts(cls, config):
        """Whether a parameters entry under `parameters_key` means this method."""
        return True

    @classmethod
    def from_config(cls, config):
        raise NotImplementedError

    def bind(self, problem):
        """This method with what its graph code needs to know of `problem` statically."""
        return self

    def cache_key(self):
        """What the traced graph code depends on besides tensor signatures."""
        return self.describe()

    def start(self, state):
        """Graph code: `state` plus the method's own tensors."""
        return state

    def rows_per_item(self, state):
        raise NotImplementedError

    def total_rows(self, state):
        raise NotImplementedError

    def chunk(self, evaluate, state, start, stop):
        raise NotImplementedError

    def finish(self, state, rows, items):
        raise NotImplementedError

    def check_inputs(self, problem):
        """Refuses inputs the method cannot attribute (gradients need floats)."""
        if not self.needs_gradients:
            return
        for key in problem.attributed_keys:
            dtype = problem.inputs[key].dtype
            if not dtype.is_floating:
                raise MethodNotSupportedError(
                    f"{self.name} needs gradients, but feature "
                    f"'{problem.feature_names[key]}' is model input '{key}' of dtype "
                    f"{dtype.name}, which has none. Use method='sampled-shapley', or "
                    "export a model whose explained inputs are decoded floats "
                    "(decode ids/strings in xai_preprocess)."
                )

    def describe(self):
        """Settings in force, e.g. `integrated-gradients(stepCount=50)`."""
        return self.name

    def precision_advice(self, worst_error):
        """What to do about an `approximationError` of `worst_error`, for the warning."""
        return self.precision_hint


def method_classes():
    """Registered `AttributionAlgorithm` subclasses, in definition order."""
    return list(_REGISTRY)


def default_rows_per_call(inputs):
    """Rows per call so one call's inputs hold ~`MAX_VALUES_PER_CALL` values.

    `inputs` are tensors or specs; a dimension unknown before the call counts 64.
    """
    values_per_row = sum(max(1, int(np.prod([64 if d is None else d for d in t.shape[1:]])))
                         for t in inputs.values())
    return int(np.clip(MAX_VALUES_PER_CALL // values_per_row, 1, MAX_ROWS_PER_CALL))


def positive_int(value, setting):
    """`value` as an int >= 1, or a `SpecError` naming the setting."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number != value or number < 1:
        raise SpecError(f"{setting} must be an integer >= 1; received {value!r}.")
    return number
