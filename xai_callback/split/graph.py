"""Reading and running the graph of a functional model node by node.

The automatic split (`frontier.py`) runs parts of a model's own graph: from its
raw inputs to some intermediate tensors (`xai_preprocess`) and from those to
the outputs (`xai_model`). Keras builds such sub-models itself only by cloning
the nodes (Keras >= 3.1, inputs renamed `<name>CLONE`); running the model's
own nodes keeps weights, masks and names exactly as trained and works on every
Keras 3 release, and on tf-keras (Keras 2), whose nodes `_Node` reads alike.
"""

import keras
import tensorflow as tf

from xai_callback.signatures.keras_models import (
    inlinable_model,
    input_structure,
    is_functional,
    output_structure,
)

# Nested functional models are inlined so their preprocessing layers are seen.
_MAX_NESTING = 8


class Graph:
    """The nodes of a functional model in execution order.

    Nested functional models (a preprocessing model called inside the main
    one) are inlined: their inner nodes take the place of the call, with the
    inner inputs aliased to the outer tensors.

    Attributes:
        model: the functional model (a Sequential's inner functional model).
        inputs: the model's input KerasTensors, in `model.inputs` order.
        outputs: `{output name: KerasTensor}` in the model's output order
            (a dict-output model by its keys, as it returns them).
        steps: list of `Step`, in an order that computes every input first.
    """

    def __init__(self, model):
        self.model = model
        self.inputs = list(model.inputs)
        self.steps = []
        self._producer = {}  # id(tensor) -> Step
        self._alias = {}  # id(inner input or nested call output) -> the tensor it stands for
        self._add_nodes(model, depth=0)
        self.outputs = {name: self.resolve(t) for name, t in output_structure(model).items()}

    def _add_nodes(self, model, depth):
        nodes = [_Node(n) for n in _nodes_in_order(model)]
        calls = [id(n.operation) for n in nodes]
        for node in nodes:
            op = node.operation
            inner = inlinable_model(op)
            # A model called once is inlined; one called several times (shared
            # towers) stays one opaque step, as its inner nodes are shared.
            if inner is not None and depth < _MAX_NESTING and calls.count(id(op)) == 1:
                for inner_input, outer in _call_inputs(node, inner):
                    self._set_alias(inner_input, outer)
                self._add_nodes(inner, depth + 1)
                for outer, inner_output in zip(node.outputs, _flatten(inner.outputs)):
                    self._set_alias(outer, inner_output)
                continue
            step = Step(node, self)
            self.steps.append(step)
            for tensor in node.outputs:
                self._producer[id(tensor)] = step

    def _set_alias(self, tensor, stands_for):
        # A nested model built on the outer model's own Inputs shares them:
        # nothing to alias then.
        stands_for = self.resolve(stands_for)
        if stands_for is not tensor:
            self._alias[id(tensor)] = stands_for

    def resolve(self, tensor):
        """The tensor a (possibly inner or aliased) KerasTensor stands for."""
        while id(tensor) in self._alias:
            tensor = self._alias[id(tensor)]
        return tensor

    def producer(self, tensor):
        """The `Step` that computes `tensor`, or None for a model input."""
        return self._producer.get(id(self.resolve(tensor)))

    def ancestors(self, tensors):
        """Steps needed to compute `tensors` from the model inputs, in order."""
        needed, stack = set(), [self.resolve(t) for t in tensors]
        while stack:
            step = self.producer(stack.pop())
            if step is not None and id(step) not in needed:
                needed.add(id(step))
                stack.extend(step.inputs)
        return [s for s in self.steps if id(s) in needed]

    def raw_ancestors(self, tensor):
        """Model inputs that `tensor` depends on, in `model.inputs` order."""
        found, seen, stack = set(), set(), [self.resolve(tensor)]
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            step = self.producer(t)
            if step is None:
                found.add(id(t))
            else:
                stack.extend(step.inputs)
        return [t for t in self.inputs if id(t) in found]

    def consumers(self, tensor):
        """Steps that take `tensor` as an input."""
        tensor = self.resolve(tensor)
        return [s for s in self.steps if any(t is tensor for t in s.inputs)]

    def run(self, steps, values):
        """Runs `steps` on `values` (`{id(KerasTensor): tensor}`), in place."""
        for step in steps:
            step.run(values)
        return values


class Step:
    """One layer or operation call of the graph."""

    def __init__(self, node, graph):
        self.node = node
        self.operation = node.operation
        self.graph = graph
        self.inputs = [graph.resolve(t) for t in node.inputs]
        self.outputs = list(node.outputs)

    def run(self, values):
        lookup = {id(t): values[id(self.graph.resolve(t))] for t in self.node.inputs}
        args, kwargs = self.node.arguments(lookup)
        # Inference behaviour (Dropout off, BatchNorm moving statistics), as
        # Functional.call(training=False) does.
        if self.node.takes_training:
            kwargs["training"] = False
        results = _flatten(self.operation(*args, **kwargs))
        for tensor, value in zip(self.outputs, results):
            values[id(tensor)] = value

    def __repr__(self):
        return f"Step({type(self.operation).__name__} {getattr(self.operation, 'name', '')!r})"


class _Node:
    """One call node of Keras 3 (`operation`, `arguments`) or tf-keras (`layer`,
    `call_args`), read the same way."""

    def __init__(self, node):
        self.node = node
        self.keras3 = hasattr(node, "operation")
        if self.keras3:
            self.operation = node.operation
            self.inputs = list(node.input_tensors)
            self.outputs = list(node.outputs)
            self.takes_training = getattr(self.operation, "_call_has_training_arg", False)
        else:
            self.operation = node.layer
            self.inputs = list(node.keras_inputs)
            self.outputs = tf.nest.flatten(node.outputs)
            self.takes_training = getattr(self.operation, "_expects_training_arg", False)

    def arguments(self, lookup):
        """`(args, kwargs)` of the call with each KerasTensor replaced by `lookup[id(it)]`."""
        if self.keras3:
            return self.node.arguments.fill_in(lookup)
        node = self.node
        flat = list(node._flat_arguments)
        for tensor, (_, index) in zip(node.keras_inputs, node._keras_inputs_ids_and_indices):
            flat[index] = lookup[id(tensor)]
        args, kwargs = tf.nest.pack_sequence_as((node.call_args, list(node.call_kwargs.values())), flat)
        return list(args), dict(zip(node.call_kwargs.keys(), kwargs))

    @property
    def first_argument(self):
        if self.keras3:
            args = self.node.arguments.args
            return args[0] if args else next(iter(self.node.arguments.kwargs.values()))
        return self.node.call_args[0] if self.node.call_args else next(iter(self.node.call_kwargs.values()))


def graph_of(model):
    """A `Graph` of a functional (or Sequential) model, Keras 3 or tf-keras, else None.

    Subclassed models have no graph to read.
    """
    if isinstance(model, keras.Sequential):
        model = getattr(model, "_functional", None)
    if not is_functional(model):
        return None
    return Graph(model)


def _nodes_in_order(model):
    """The model's call nodes, deepest first (the order Functional.call runs them)."""
    nodes = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        nodes.extend(n for n in model._nodes_by_depth[depth] if not n.is_input)
    return nodes


def _call_inputs(node, model):
    """`(inner Input, outer argument)` pairs of a nested model call.

    Both structures are flattened alike (dicts by sorted key), as
    Functional.call matches its inputs.
    """
    return list(zip(_flatten(input_structure(model)), _flatten(node.first_argument)))


def _flatten(structure):
    return keras.tree.flatten(structure)
