"""`ExplanationSpec`: what to explain and how, turned into Vertex JSON."""

from xai_callback.errors import SpecError
from xai_callback.spec import crosscheck, methods
from xai_callback.spec.base import SpecObject
from xai_callback.spec.feature import Feature
from xai_callback.spec.fields import check_known_keys, describe, type_error
from xai_callback.spec.metadata import features_from_metadata, output_from_metadata
from xai_callback.spec.output import Output
from xai_callback.spec.parameters import (
    OUTPUT_INDICES,
    PARAMETER_KEYS,
    TOP_K,
    check_output_indices,
    check_top_k,
)


class ExplanationSpec(SpecObject):
    """The explanation metadata and parameters an export is written with.

    Example:
        ExplanationSpec(
            features=[Feature("age", baselines=[30.0]), Feature("income")],
            output=Output("probs", index_display_name_mapping=["no", "yes"]),
            method=SampledShapley(path_count=20),
        )

    Args:
        features: list of `Feature` (or configs) (default None: every input of
            the explained signature, named by its key, zero baseline).
        output: `Output`, its config, or an output key (default None: the
            signature's only output, or the exporter's `output_key`).
        method: an attribution method, its name or config (default None:
            `IntegratedGradients(step_count=50)`). Exactly one.
        top_k: explain the top k outputs, >= 1 or -1 for all (default None:
            the service's default, 1).
        output_indices: explain these output indices (list of ints, or of
            index lists for outputs of rank > 1) (default None: the argmax).
    """

    def __init__(self, features=None, output=None, method=None, top_k=None, output_indices=None):
        where = "ExplanationSpec"
        self.features = _coerce_features(features)
        if isinstance(output, str):
            output = Output(key=output)
        self.output = Output.coerce(output, where, "output")
        self.method = methods.get(method)
        self.top_k = check_top_k(where, "top_k", top_k)
        self.output_indices = check_output_indices(where, "output_indices", output_indices)
        if self.features is not None:
            # Rules that need only the declared features fail here, early,
            # rather than at the end of training.
            partial = {"inputs": _inputs_json(self.features)}
            crosscheck.check_method_inputs(partial, self.parameters_json(), inputs={})
            crosscheck.check_noise_sigma_names(partial, self.parameters_json())

    def get_config(self):
        return {
            "features": None if self.features is None else [f.get_config() for f in self.features],
            "output": None if self.output is None else self.output.get_config(),
            "method": methods.serialize(self.method),
            "top_k": self.top_k,
            "output_indices": self.output_indices,
        }

    @classmethod
    def coerce(cls, value, where="ExplanationSpec", field="spec"):
        """An `ExplanationSpec` from None (all defaults), a config dict or a spec."""
        if value is None:
            return cls()
        return super().coerce(value, where, field)

    @classmethod
    def from_vertex(cls, metadata, parameters):
        """The spec that `build` turns back into these Vertex JSON dicts."""
        check_known_keys("parameters", parameters, PARAMETER_KEYS)
        return cls(
            features=features_from_metadata(metadata),
            output=output_from_metadata(metadata),
            method={k: v for k, v in parameters.items() if k in methods.BY_VERTEX_KEY},
            top_k=parameters.get(TOP_K),
            output_indices=parameters.get(OUTPUT_INDICES),
        )

    def parameters_json(self):
        """Vertex ExplanationParameters JSON (needs no signature)."""
        parameters = self.method.to_parameters()
        if self.top_k is not None:
            parameters[TOP_K] = self.top_k
        if self.output_indices is not None:
            parameters[OUTPUT_INDICES] = self.output_indices
        return parameters

    def to_vertex(self, inputs, outputs, output_key=None, defaults=None):
        """Vertex JSON with the defaults filled in from the signature, unchecked."""
        features = self.features
        if features is None:
            features = defaults if defaults is not None else default_features(inputs)
        output = (self.output or Output()).resolve(outputs, output_key)
        metadata = {"inputs": _inputs_json(features),
                    "outputs": {output.name: output.to_vertex()}}
        return metadata, self.parameters_json()

    def build(self, inputs, outputs, output_key=None, defaults=None):
        """`(metadata, parameters)`: Vertex v1 JSON, cross-checked against the signature.

        Args:
            inputs, outputs: `{key: tf.TensorSpec}` of the reloaded explained
                signature (`xai_model`, or `serving_default` when alone).
            output_key: the output to explain when `output` names none.
            defaults: the `Feature`s to use when the spec lists none (the
                exporter derives them from the model's preprocessing layers);
                None: every input numeric with a zero baseline.

        Raises:
            SpecError: naming the field and value that do not fit the signature.
        """
        metadata, parameters = self.to_vertex(inputs, outputs, output_key, defaults)
        crosscheck.check_all(metadata, parameters, inputs, outputs)
        return metadata, parameters


def default_features(inputs):
    """One numeric feature per input key, with a zero baseline of its kind."""
    return [Feature(name=key, baselines=_zero_baseline(spec)) for key, spec in inputs.items()]


def _zero_baseline(spec):
    if spec.dtype.is_floating:
        return [0.0]
    if spec.dtype.is_integer or spec.dtype.is_bool:
        return [0]
    return None  # strings: the service's own default


def _inputs_json(features):
    return {f.name: f.to_vertex() for f in features}


def _coerce_features(features):
    where = "ExplanationSpec"
    if features is None:
        return None
    if isinstance(features, (Feature, dict, str)) or not hasattr(features, "__iter__"):
        raise type_error(where, "features", features, "expected a list of Feature (or configs)")
    coerced = [Feature.coerce(f, where, f"features[{i}]") for i, f in enumerate(features)]
    if not coerced:
        raise SpecError(describe(where, "features", features,
                                 "expected at least one Feature, or None for the defaults"))
    names = [f.name for f in coerced]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SpecError(describe(where, "features", duplicates,
                                 "feature names must be unique (attributions are keyed by them)"))
    return coerced
