"""What every attribution algorithm shares: the problem, the result, the base class.

Each method builds "rows": model inputs on a path from a baseline to an
instance (interpolation steps for integrated gradients, feature coalitions for
Shapley), and sends the rows of all instances, outputs, baselines and steps
through the model with the batched engine (`explain/engine.py`) in a few large
calls of at most `max_rows_per_call` rows, so the per-call overhead of a
SavedModel signature is paid a handful of times, not once per step. A method
is graph code (`start`, `chunk`, `finish`): the Python explainer and the
`xai_explain` signature run the same code. A method that needs host code
(XRAI's segmentation, blurred baselines) sets `in_graph = False` and
implements `run_on_host` around graph methods.

A method is one module of this package with one `AttributionAlgorithm`
subclass bound to its settings class of `xai_callback.spec.methods` (`SPEC`)
and to the names it computes (`names`); defining the subclass registers it.
"""

import dataclasses

import numpy as np

from xai_callback.errors import MethodNotSupportedError
from xai_callback.spec.options import PYTHON_SPELLING

# Default chunk size: at most this many input values (summed over all input
# tensors) per call, i.e. 4 MB of float32 inputs; activations are a multiple.
# Larger chunks bought no speed on CPU in benchmarks/bench_explain.py.
MAX_VALUES_PER_CALL = 2**20
MAX_ROWS_PER_CALL = 8192
# `approximationError` above this makes `explain` warn (the service's advice).
APPROXIMATION_ERROR_WARNING = 0.05

_REGISTRY = {}  # method name -> AttributionAlgorithm subclass


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
        modalities: `{key: "numeric" | "image"}` of the attributed inputs.
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
    modalities: dict = dataclasses.field(default_factory=dict)
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
            return int(self.max_rows_per_call)  # checked by the explainer
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
    """Base class of attribution algorithms.

    A subclass binds its settings class of `xai_callback.spec.methods`
    (`SPEC`) and the method names of `spec.methods.METHOD_NAMES` it computes
    (`names`), takes the settings object in `__init__`, and implements the
    graph code run by `engine.run` / `engine.run_in_graph`: `rows_per_item`,
    `total_rows`, `chunk`, `finish` and optionally `start` and `bind`. Settings
    a request varies (counts, sigmas) are read from `state` (`settings_state`),
    not baked into the graph, and left out of `cache_key`.

    Example:

    ```python
    class MyMethod(AttributionAlgorithm):
        SPEC = spec.methods.MyMethod          # its fields, defaults and limits
        names = ("my-method",)

        def rows_per_item(self, state): ...        # rows of one work item (an int)
        def total_rows(self, state): ...           # graph: rows of all items
        def chunk(self, evaluate, state, start, stop): ...  # {"rows": ..., "items": ...}
        def finish(self, state, rows, items): ...  # {"attributions", "baseline_output", ...}
    ```

    Args:
        spec: the method's settings (an instance of `SPEC`).
        spelling: how messages name options (`spec.options.Spelling`;
            default None: as Python keywords).
    """

    SPEC = None
    names = ()
    # What lowers the approximation error, for the warning (see `precision_advice`).
    precision_hint = None
    needs_gradients = True
    # False: `run_on_host` runs it (host code around graph methods), so no
    # SavedModel signature can (see `spec.methods.AttributionMethod.IN_GRAPH`).
    in_graph = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls.names:
            _REGISTRY[name] = cls

    def __init__(self, spec, spelling=None):
        self.spec = spec
        self.spelling = spelling or PYTHON_SPELLING

    @property
    def name(self):
        """The method's name (its first of `names`), e.g. in `describe()`."""
        return self.names[0]

    def bind(self, problem):
        """This method with what its graph code needs to know of `problem` statically."""
        return self

    def cache_key(self):
        """What the traced graph code depends on besides tensor signatures and `settings_state`:
        its Python constants (by default every setting, `describe()`)."""
        return self.describe()

    def settings_state(self):
        """`{name: numpy scalar or {key: scalar}}`: the settings the graph code reads from
        `state` (the engine adds them before `start`), leaving them out of `cache_key`.

        A request may set a new count each time; as tensors rather than constants
        of the traced functions, one trace serves every value.
        """
        return {}

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

    def run_on_host(self, problem, run):
        """Host code of a method with `in_graph = False`: its result (numpy), from
        `run(problem, graph_method)` calls of the engine."""
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
                    f"{dtype.name}, which has none. Use {self.spelling('method', 'sampled-shapley')}, "
                    "or export a model whose explained inputs are decoded floats "
                    "(decode ids/strings in xai_preprocess)."
                )

    def describe(self):
        """Settings in force, e.g. `integrated-gradients(stepCount=50)`."""
        return self.name

    def precision_advice(self, worst_error):
        """What to do about an `approximationError` of `worst_error`, for the warning."""
        return self.precision_hint


def registered():
    """`{method name: AttributionAlgorithm subclass}` of the algorithms defined so far."""
    return dict(_REGISTRY)


def default_rows_per_call(inputs):
    """Rows per call so one call's inputs hold ~`MAX_VALUES_PER_CALL` values.

    `inputs` are tensors or specs; a dimension unknown before the call counts 64.
    """
    values_per_row = sum(max(1, int(np.prod([64 if d is None else d for d in t.shape[1:]])))
                         for t in inputs.values())
    return int(np.clip(MAX_VALUES_PER_CALL // values_per_row, 1, MAX_ROWS_PER_CALL))
