"""What `validate`'s rules read from an export, gathered once (`read_export`).

The signatures, the sample (given, or stored in `assets.extra/`), the
tolerances the export was verified with, the metadata and parameters (stored,
else the defaults, else why neither), and a batch of explained-signature
inputs made on first use (`explained_batch`).
"""

from dataclasses import dataclass

import tensorflow as tf

from xai_callback.contract.checks import explained_inputs_from_sample
from xai_callback.errors import SpecError
from xai_callback.names import (
    FEATURES_FILE,
    SAMPLE_FILE,
    SERVING_DEFAULT,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    XAI_PREPROCESS,
    extra_path,
)
from xai_callback.publish import storage
from xai_callback.publish.provenance import read_provenance, verified_tolerances
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL
from xai_callback.signatures.samples import generate_sample
from xai_callback.signatures.specs import explained_signature_name, signature_io
from xai_callback.signatures.tensor_io import decode_tensor_dict
from xai_callback.spec.explanation_spec import ExplanationSpec

# Errors of running a signature on a sample (wrong keys, dtypes, shapes).
RUN_ERRORS = (tf.errors.OpError, TypeError, ValueError)


@dataclass
class ExportUnderTest:
    """What the rules read, gathered once."""

    export_dir: str
    signatures: object
    loaded: object  # keeps the signatures' variables alive
    explained: str = None  # name of the explained signature, if it exists
    inputs: dict = None
    outputs: dict = None
    sample: dict = None  # serving_default inputs
    sample_source: str = None
    sample_error: str = None
    metadata: dict = None
    metadata_source: str = None
    metadata_error: str = None
    parameters: dict = None
    parameters_source: str = None
    parameters_error: str = None
    tolerances: dict = None  # rtol/atol of the output comparisons
    tolerances_source: str = None
    model_inputs: tuple = None  # (batch, source) of the explained signature: `explained_batch`


def read_export(export_dir, loaded, sample=None):
    """An `ExportUnderTest` of a loaded export (`sample`: a given serving_default batch)."""
    export = ExportUnderTest(export_dir, loaded.signatures, loaded)
    _read_signature_io(export)
    _read_sample(export, sample)
    _read_tolerances(export)
    _read_explanation(export)
    return export


def _read_signature_io(export):
    name = explained_signature_name(export.signatures)
    if name in export.signatures:
        export.explained = name
        export.inputs, export.outputs = signature_io(export.signatures[name])


def _read_sample(export, sample):
    if sample is not None:
        export.sample_source = "the given sample"
        specs = (signature_io(export.signatures[SERVING_DEFAULT])[0]
                 if SERVING_DEFAULT in export.signatures else {})
        export.sample = {k: tf.convert_to_tensor(v, dtype=specs[k].dtype if k in specs else None)
                         for k, v in sample.items()}
        _refuse_empty_sample(export)
        return
    path = extra_path(export.export_dir, SAMPLE_FILE)
    if not storage.exists(path):
        return
    export.sample_source = f"the stored sample ({path})"
    try:
        export.sample = decode_tensor_dict(storage.read_json(path))
    except (ValueError, KeyError, TypeError, tf.errors.OpError) as e:
        export.sample_error = f"cannot decode {path}: {e}"
    _refuse_empty_sample(export)


def _refuse_empty_sample(export):
    """A sample without rows verifies nothing: a failed rule, not a crash."""
    empty = [f"{key!r} has shape {tuple(value.shape)}" for key, value in (export.sample or {}).items()
             if value.shape.rank and value.shape[0] == 0]
    if empty:
        export.sample_error = (f"{export.sample_source} has no rows ({', '.join(empty)}): nothing can be "
                               "verified on it; pass a sample with at least one row")
        export.sample = None


def _read_tolerances(export):
    """The tolerances the export was verified with, else the exporter's defaults."""
    try:
        recorded = verified_tolerances(read_provenance(export.export_dir))
    except ValueError:  # an unreadable provenance file: not one of ours to trust
        recorded = None
    if recorded:
        export.tolerances, export.tolerances_source = recorded, "as the export was verified"
    else:
        export.tolerances = {"rtol": DEFAULT_RTOL, "atol": DEFAULT_ATOL}
        export.tolerances_source = "the defaults"


def _read_explanation(export):
    default = ExplanationSpec()

    def default_metadata():
        if export.inputs is None:
            raise SpecError("the export has no explained signature to derive them from")
        return default.to_vertex(export.inputs, export.outputs)[0]

    export.metadata, export.metadata_source, export.metadata_error = _read_json_or_default(
        export, VERTEX_METADATA_FILE, default_metadata,
        "the default metadata (every input a numeric feature, zero baseline, the single output)")
    export.parameters, export.parameters_source, export.parameters_error = _read_json_or_default(
        export, VERTEX_PARAMETERS_FILE, default.parameters_json,
        "the default parameters (integrated gradients, 50 steps)")


def _read_json_or_default(export, filename, make_default, default_text):
    """`(value, source, error)`: the stored JSON, else the default, else why not."""
    path = extra_path(export.export_dir, filename)
    if storage.exists(path):
        try:
            return storage.read_json(path), f"from {path}", None
        except ValueError as e:  # json.JSONDecodeError
            return None, f"from {path}", f"{path} is not valid JSON: {e}"
    source = f"no {filename} in the export, so checked {default_text}"
    try:
        return make_default(), source, None
    except SpecError as e:
        return None, source, f"{source}, which do not apply: {e}"


def read_features(export):
    path = extra_path(export.export_dir, FEATURES_FILE)
    return storage.read_json(path) if storage.exists(path) else None


def explained_batch(export):
    """`(batch, source)` of explained-signature inputs, made once for the rules that run it."""
    if export.model_inputs is None:
        export.model_inputs = _read_model_inputs(export)
    return export.model_inputs


def _read_model_inputs(export):
    """A batch of explained-signature inputs: from the sample, else generated."""
    if export.sample is not None:
        try:
            inputs = explained_inputs_from_sample(export.signatures, export.sample)
        except RUN_ERRORS:
            inputs = None  # serving_identity reports it; probe on a generated batch instead
        if inputs is not None:
            through = f" through {XAI_PREPROCESS}" if XAI_PREPROCESS in export.signatures else ""
            return inputs, export.sample_source + through
    return (generate_sample(export.inputs, owner=export.explained),
            "a generated batch (uniform floats in [0, 1))")
