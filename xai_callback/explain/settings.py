"""Vertex v1 explanation metadata/parameters JSON -> the settings an explanation runs with.

Reads the dict form (camelCase, UPPERCASE enums) that the export stores in
`assets.extra/`; Python keyword overrides (`step_count=...`) are translated to
the same JSON paths first, so file settings and overrides go through one parser.
"""

import copy
import dataclasses

from xai_callback.errors import SpecError
from xai_callback.explain.base import method_classes
from xai_callback.explain.errors import MethodNotSupportedError
from xai_callback.spec.metadata import attributed_fields

DEFAULT_PARAMETERS = {"integratedGradientsAttribution": {"stepCount": 50}}
GENERAL_OVERRIDES = ("top_k", "output_indices", "output_key")
# Spellings users type for the registered method names.
METHOD_ALIASES = {
    "ig": "integrated-gradients",
    "shapley": "sampled-shapley",
    "smooth-grad": "smoothgrad",
}


@dataclasses.dataclass(frozen=True)
class Feature:
    """One metadata input: a friendly name for one attributed `xai_model` input.

    `tensor_key` is the tensor attributions are taken on: `encodedTensorName`
    when set (with `encodedBaselines`), else `inputTensorName` (with
    `inputBaselines`).
    """

    name: str
    tensor_key: str
    baselines: list
    modality: str = "numeric"
    visualization: dict = None
    index_feature_mapping: list = None
    encoding: str = "IDENTITY"
    group_name: str = None


@dataclasses.dataclass(frozen=True)
class Output:
    """The metadata output: which tensor is explained and how indices are named."""

    name: str
    tensor_key: str
    index_display_names: list = None
    display_name_key: str = None


@dataclasses.dataclass(frozen=True)
class Settings:
    features: tuple
    output: Output
    method: object
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


def resolve_settings(metadata, parameters, method=None, **overrides):
    """Parses metadata and parameters, with overrides applied.

    Example:

    ```python
    settings = resolve_settings(metadata, parameters, method="sampled-shapley", path_count=20)
    settings.method.describe()  # 'sampled-shapley(pathCount=20)'
    ```

    Args:
        metadata: Vertex `ExplanationMetadata` as a dict.
        parameters: Vertex `ExplanationParameters` as a dict (None: IG, 50 steps).
        method: a registered method name overriding the parameters' method.
        **overrides: `top_k`, `output_indices`, `output_key`, and the chosen
            method's settings (e.g. `step_count`, `path_count`, `noise_sigma`,
            `feature_noise_sigma`, `noisy_sample_count`); None values are ignored.

    Raises:
        SpecError: a setting breaks a rule; `MethodNotSupportedError` for
            methods not available locally; `TypeError` for unknown overrides.
    """
    parameters = copy.deepcopy(parameters if parameters is not None else DEFAULT_PARAMETERS)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    general = {k: overrides.pop(k) for k in GENERAL_OVERRIDES if k in overrides}
    return Settings(
        features=_features(metadata),
        output=_output(metadata, general.get("output_key")),
        method=_method(parameters, method, overrides),
        top_k=int(general.get("top_k", parameters.get("topK", 1))),
        output_indices=general.get("output_indices", parameters.get("outputIndices")),
    )


def method_class(name):
    """The registered method class called `name` (or an alias)."""
    wanted = METHOD_ALIASES.get(name.lower().replace("_", "-"), name.lower().replace("_", "-"))
    for cls in method_classes():
        if wanted in (cls.name, cls.parameters_key.lower()):
            return cls
    known = [cls.name for cls in method_classes()]
    raise MethodNotSupportedError(f"Unknown explanation method {name!r}; choose one of {known}.")


def _features(metadata):
    inputs = metadata.get("inputs") or {}
    if not inputs:
        raise SpecError("The explanation metadata lists no `inputs`: nothing to explain.")
    features, seen = [], {}
    for name, entry in inputs.items():
        if not entry.get("inputTensorName"):
            raise SpecError(f"Metadata input '{name}' has no inputTensorName.")
        tensor_field, baselines_field = attributed_fields(entry)
        key = entry[tensor_field]
        baselines = entry.get(baselines_field)
        if key in seen:
            raise SpecError(
                f"Metadata inputs '{seen[key]}' and '{name}' both attribute to tensor '{key}'; "
                "one feature per xai_model input is supported (use groupName to report "
                "several tensors as one feature)."
            )
        seen[key] = name
        features.append(Feature(
            name=name,
            tensor_key=key,
            baselines=list(baselines or [0]),
            modality=str(entry.get("modality", "numeric")).lower(),
            visualization=entry.get("visualization"),
            index_feature_mapping=entry.get("indexFeatureMapping"),
            encoding=str(entry.get("encoding") or "IDENTITY").upper(),
            group_name=entry.get("groupName"),
        ))
    return tuple(features)


def _output(metadata, output_key):
    outputs = metadata.get("outputs") or {}
    if len(outputs) > 1:
        raise SpecError(
            f"The explanation metadata has {len(outputs)} outputs {sorted(outputs)}; "
            "Vertex allows exactly one."
        )
    if not outputs:
        if output_key is None:
            raise SpecError(
                "The explanation metadata names no output and the model has several: "
                "pass output_key= (the xai_model output to explain)."
            )
        return Output(name=output_key, tensor_key=output_key)
    name, entry = next(iter(outputs.items()))
    return Output(
        name=name,
        tensor_key=output_key or entry.get("outputTensorName") or name,
        index_display_names=entry.get("indexDisplayNameMapping"),
        display_name_key=entry.get("displayNameMappingKey"),
    )


def _method(parameters, method, overrides):
    """The method instance: from the parameters, or `method`, plus overrides."""
    in_file = sorted(k for k in parameters if k.endswith("Attribution"))
    if len(in_file) > 1:
        raise SpecError(
            f"The explanation parameters set {len(in_file)} methods {in_file}; exactly "
            "one is allowed (Google's client would silently keep the last)."
        )
    if not in_file and "examples" in parameters and method is None:
        known = sorted({c.name for c in method_classes()})
        raise MethodNotSupportedError(
            "The parameters ask for example-based explanations ('examples': nearest training "
            "examples from a Vertex index), which are not computed locally; pass method= one "
            f"of {known} for attributions instead.")
    file_key = in_file[0] if in_file else "integratedGradientsAttribution"
    file_config = parameters.get(file_key) or {}
    if method is not None:
        cls = method_class(method)
        config = copy.deepcopy(file_config) if cls.parameters_key == file_key else {}
    else:
        candidates = [c for c in method_classes() if c.parameters_key == file_key]
        if not candidates:
            known = sorted({c.name for c in method_classes()})
            raise MethodNotSupportedError(
                f"The parameters ask for {file_key}, which is not implemented locally; "
                f"pass method= one of {known}."
            )
        config = file_config
        cls = next((c for c in candidates if c.accepts(config)), candidates[0])
    for option, value in overrides.items():
        if option not in cls.override_paths:
            raise TypeError(
                f"Option {option}={value!r} does not apply to method '{cls.name}' "
                f"(it takes {sorted(cls.override_paths) + list(GENERAL_OVERRIDES)})."
            )
        *parents, leaf = cls.override_paths[option]
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return cls.from_config(config)
