"""Checks of Vertex metadata/parameters JSON against the explained signature.

`inputs` / `outputs` are `{key: tf.TensorSpec}` of the RELOADED explained
signature (`xai_model`, or `serving_default` when it is the only one). The
same functions run when an export is written (`ExplanationSpec.build`) and
when any export is checked (`validate`), so both apply identical rules.
Messages name the Vertex field and, in brackets, the `Feature` argument.
"""

import numpy as np

from xai_callback.errors import SpecError
from xai_callback.spec import enums
from xai_callback.spec.baselines import baseline_shape, fits_example, normalize_baselines
from xai_callback.spec.feature import Feature
from xai_callback.spec.fields import Shown, describe
from xai_callback.spec.metadata import attributed_fields
from xai_callback.spec.methods import BY_VERTEX_KEY, check_one_method
from xai_callback.signatures.specs import describe_spec

# Vertex field -> Feature argument, for messages a user of either can follow.
_ARGUMENT = {key: attr for attr, key in Feature.VERTEX_FIELDS.items()}
_TENSOR_NAME_FIELDS = ("inputTensorName", "encodedTensorName", "indicesTensorName",
                       "denseShapeTensorName")


def check_all(metadata, parameters, inputs, outputs):
    """Every cross-check, in the order a user would fix them."""
    check_names(metadata, inputs, outputs)
    check_noise_sigma_names(metadata, parameters)
    check_output_indices_fit(metadata, parameters, outputs)
    check_baselines(metadata, inputs)
    check_method_inputs(metadata, parameters, inputs)


def example_shape(spec):
    """Shape of one example (batch dimension dropped); None if rank unknown."""
    return None if spec.shape.rank is None else spec.shape.as_list()[1:]


def _where(name):
    return f"feature {name!r}"


def _field(field):
    return f"{field} ({_ARGUMENT[field]})" if field in _ARGUMENT else field


def check_names(metadata, inputs, outputs):
    """Tensor names are signature keys; class/feature name lists fit the shapes."""
    for name, body in metadata["inputs"].items():
        for field in _TENSOR_NAME_FIELDS:
            key = body.get(field)
            if (key is not None or field == "inputTensorName") and key not in inputs:
                raise SpecError(describe(
                    _where(name), _field(field), key,
                    f"expected an input key of the explained signature: {sorted(inputs)}"))
        mapping = body.get("indexFeatureMapping")
        shape = example_shape(inputs[body["inputTensorName"]])
        if mapping is not None and shape and shape[-1] is not None and len(mapping) != shape[-1]:
            raise SpecError(describe(
                _where(name), _field("indexFeatureMapping"), Shown(f"{len(mapping)} names"),
                f"expected one name per index of the last axis of input "
                f"{body['inputTensorName']!r} ({describe_spec(inputs[body['inputTensorName']])})"))
    (name, body), = metadata["outputs"].items()
    key = body.get("outputTensorName")
    if key not in outputs:
        raise SpecError(describe(
            f"metadata output {name!r}", "outputTensorName (Output.key)", key,
            f"expected an output key of the explained signature: {sorted(outputs)}"))
    mapping = body.get("indexDisplayNameMapping")
    if mapping is not None:
        shape = example_shape(outputs[key])
        got = baseline_shape(mapping)
        if shape is not None and (len(got) != len(shape) or any(
                want is not None and g != want for g, want in zip(got, shape))):
            raise SpecError(describe(
                f"metadata output {name!r}",
                "indexDisplayNameMapping (Output.index_display_name_mapping)",
                Shown(f"names of shape {got}"),
                f"expected the shape of one example of output {key!r}: {shape}"))


def check_noise_sigma_names(metadata, parameters):
    """SmoothGrad's per-feature sigmas name features of the metadata."""
    for key in BY_VERTEX_KEY:
        sigmas = (parameters.get(key) or {}).get("smoothGradConfig", {}).get("featureNoiseSigma")
        for entry in (sigmas or {}).get("noiseSigma", []):
            if entry.get("name") not in metadata["inputs"]:
                raise SpecError(describe(
                    f"parameters {key}.smoothGradConfig", "featureNoiseSigma name",
                    entry.get("name"), f"expected a feature name: {sorted(metadata['inputs'])}"))


def check_output_indices_fit(metadata, parameters, outputs):
    """outputIndices index one example of the explained output."""
    indices = parameters.get("outputIndices")
    if indices is None:
        return
    (_, body), = metadata["outputs"].items()
    key = body["outputTensorName"]
    shape = example_shape(outputs[key])
    if shape is None:
        return
    field = "outputIndices (output_indices)"
    index_rows = np.asarray(indices).reshape(len(indices), -1)
    if not shape or index_rows.shape[1] != len(shape):
        raise SpecError(describe(
            "parameters", field, indices,
            f"expected indices of rank {len(shape)} to index one example of output {key!r} "
            f"(shape per example {shape})"))
    for row in index_rows:
        if any(dim is not None and i >= dim for i, dim in zip(row, shape)):
            raise SpecError(describe(
                "parameters", field, indices,
                f"index {row.tolist()} is out of range for output {key!r} "
                f"(shape per example {shape})"))


def check_baselines(metadata, inputs):
    """1-10 finite baselines, each a scalar or one example's shape, right kind.

    Baselines of a tensor name that is not a signature key are left to
    `check_names`.
    """
    for name, body in metadata["inputs"].items():
        for field, tensor_field in (("inputBaselines", "inputTensorName"),
                                    ("encodedBaselines", "encodedTensorName")):
            baselines = normalize_baselines(_where(name), _field(field), body.get(field))
            spec = inputs.get(body.get(tensor_field))
            if baselines is None or spec is None:
                continue
            shape = example_shape(spec)
            for i, baseline in enumerate(baselines):
                where, label = _where(name), f"{_field(field)}[{i}]"
                got = baseline_shape(baseline)
                if not fits_example(got, shape):
                    raise SpecError(describe(
                        where, label, Shown(f"a baseline of shape {got}"),
                        f"expected a scalar or one example's shape {shape} of input "
                        f"{body[tensor_field]!r} ({describe_spec(spec)}), without the batch "
                        "dimension"))
                is_text = np.asarray(baseline).dtype.kind == "U"
                if is_text != (spec.dtype == "string"):
                    raise SpecError(describe(
                        where, label, baseline,
                        f"input {body[tensor_field]!r} is {spec.dtype.name}: expected "
                        f"{'strings' if spec.dtype == 'string' else 'numbers'}"))


def check_method_inputs(metadata, parameters, inputs):
    """XRAI explains images only; gradient methods need floating inputs."""
    method = BY_VERTEX_KEY[check_one_method(parameters)]
    for name, body in metadata["inputs"].items():
        if method.IMAGES_ONLY and body.get("modality", enums.NUMERIC) != enums.IMAGE:
            raise SpecError(describe(
                _where(name), "modality", body.get("modality", enums.NUMERIC),
                f"{method.__name__} explains image inputs only: set modality 'image', or use "
                "IntegratedGradients or SampledShapley"))
        if not method.GRADIENT_BASED:
            continue
        field = attributed_fields(body)[0]
        spec = inputs.get(body.get(field))
        if spec is not None and not spec.dtype.is_floating:
            raise SpecError(describe(
                _where(name), _field(field), body[field],
                f"that input is {describe_spec(spec)}, but {method.__name__} takes gradients "
                "and needs a floating input: use SampledShapley(), or move the "
                "non-differentiable step (lookup, embedding, one-hot) into xai_preprocess so "
                "xai_model takes the floating encoded tensor (or name it in encodedTensorName)"))
