"""The settings an explanation runs with, built from the typed spec (`xai_callback.spec`).

The export stores Vertex v1 JSON (camelCase, UPPERCASE enums) in
`assets.extra/`; it is read by the spec's own parsers (`spec.metadata`,
`spec.methods`), and keyword options (`step_count=...`, `method=...`) are
applied to the typed method by `spec.options.method_with_options`, within
the `Limits` the caller chooses: local ones by default (`explain --step-count
300` is fine locally), Vertex AI's or a server's own when asked.

Example:

```python
settings = settings_from_vertex(metadata, parameters, {"method": "sampled-shapley",
                                                       "path_count": 20})
settings.method              # spec.methods.SampledShapley(path_count=20)
```
"""

import dataclasses

from xai_callback.errors import SpecError
from xai_callback.spec import methods
from xai_callback.spec.fields import check_known_keys
from xai_callback.spec.limits import LOCAL_LIMITS, coerce_limits
from xai_callback.spec.metadata import METADATA_KEYS, features_from_metadata, output_from_metadata
from xai_callback.spec.options import PYTHON_SPELLING, method_with_options
from xai_callback.spec.output import Output
from xai_callback.spec.parameters import OUTPUT_INDICES, PARAMETER_KEYS, TOP_K, check_output_indices, check_top_k

# The parameters of an export that has none: integrated gradients, the spec's defaults.
DEFAULT_PARAMETERS = methods.IntegratedGradients().to_parameters()
# Options about what is explained rather than how (every method takes them).
GENERAL_OPTIONS = ("top_k", "output_indices", "output_key")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What an explanation computes.

    Attributes:
        features: the metadata's `spec.Feature`s, in its order (each is
            attributed on its `tensor_key` with its `attributed_baselines`).
        output: the explained `spec.Output`, `key` and `name` filled in.
        method: the `spec.methods.AttributionMethod` to run, options applied.
        top_k: explain the k largest outputs of each instance (-1: all).
        output_indices: explain these output indices instead (or None).
    """

    features: tuple
    output: Output
    method: methods.AttributionMethod
    top_k: int = 1
    output_indices: list = None


def default_metadata(input_keys, output_keys):
    """Metadata used when an export has none: every input a numeric feature
    named by its key with baseline 0; the output when there is exactly one."""
    outputs = {}
    if len(output_keys) == 1:
        key = next(iter(output_keys))
        outputs = {key: {"outputTensorName": key}}
    return {
        "inputs": {
            key: {"inputTensorName": key, "inputBaselines": [0], "modality": "numeric"}
            for key in sorted(input_keys)
        },
        "outputs": outputs,
    }


def settings_from_vertex(metadata, parameters=None, overrides=None, limits=LOCAL_LIMITS,
                         spelling=PYTHON_SPELLING):
    """The `Settings` of Vertex metadata and parameters, with keyword overrides.

    Example:

    ```python
    settings_from_vertex(metadata, parameters, {"step_count": 300})      # local limits
    settings_from_vertex(metadata, parameters, {"step_count": 300},
                         limits=VERTEX_LIMITS)                          # SpecError: 1 to 100
    ```

    Args:
        metadata: Vertex `ExplanationMetadata` as a dict.
        parameters: Vertex `ExplanationParameters` as a dict (None:
            `DEFAULT_PARAMETERS`, integrated gradients with 50 steps).
        overrides: `{option: value}`: `method` (a name of
            `spec.methods.METHOD_NAMES`), the method's options (`step_count`,
            `path_count`, `noise_sigma`, `feature_noise_sigma`,
            `noisy_sample_count`, `max_blur_sigma`), `top_k`,
            `output_indices`, `output_key`; None values are ignored.
        limits: a `spec.limits.Limits` the counts must keep (default:
            `LOCAL_LIMITS`, no cap; `VERTEX_LIMITS`: Vertex AI's; None: Vertex AI's).
        spelling: how messages name the options (`spec.options.Spelling`).

    Raises:
        SpecError: a setting breaks a rule (`MethodNotSupportedError`: a
            method not computed locally); TypeError: an unknown option, or
            one of another method.
    """
    limits = coerce_limits(limits)
    parameters = parameters if parameters is not None else DEFAULT_PARAMETERS
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    general = {k: overrides.pop(k) for k in GENERAL_OPTIONS if k in overrides}
    name = overrides.pop("method", None)
    check_known_keys("parameters", parameters, PARAMETER_KEYS)
    stored = (methods.method_from_parameters(parameters, limits=limits)
              if methods.method_keys(parameters) else methods.IntegratedGradients(limits=limits))
    top_k = general.get("top_k", parameters.get(TOP_K))
    return Settings(
        features=_features(metadata),
        output=_output(metadata, general.get("output_key"), spelling),
        method=method_with_options(stored, name, overrides, limits, spelling),
        top_k=1 if top_k is None else check_top_k("parameters", spelling.name("top_k"), top_k),
        output_indices=check_output_indices("parameters", spelling.name("output_indices"),
                                            general.get("output_indices",
                                                        parameters.get(OUTPUT_INDICES))),
    )


def _features(metadata):
    """The metadata's features, each attributed on a tensor of its own."""
    check_known_keys("metadata", metadata, METADATA_KEYS)
    if not metadata.get("inputs"):
        raise SpecError("The explanation metadata lists no `inputs`: nothing to explain.")
    features, seen = features_from_metadata(metadata), {}
    for feature in features:
        if feature.tensor_key in seen:
            raise SpecError(
                f"Metadata inputs '{seen[feature.tensor_key]}' and '{feature.name}' both attribute "
                f"to tensor '{feature.tensor_key}'; one feature per xai_model input is supported "
                "(use groupName to report several tensors as one feature).")
        seen[feature.tensor_key] = feature.name
    return tuple(features)


def _output(metadata, output_key, spelling):
    """The explained output; `output_key` (the option) names its tensor when given."""
    if not metadata.get("outputs"):
        if output_key is None:
            raise SpecError(
                "The explanation metadata names no output and the model has several: "
                f"pass {spelling('output_key')} (the xai_model output to explain).")
        return Output(key=output_key, name=output_key)
    output = output_from_metadata(metadata)
    config = output.get_config()
    config.update(key=output_key or output.key or output.name, name=output.name)
    return Output(**config)
