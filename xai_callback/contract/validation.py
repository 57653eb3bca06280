"""`validate(export_dir)`: checks any SavedModel against the explanation contract.

One `RuleResult` per contract rule, so a user sees every problem at once
rather than the first. Works on exports this package did not write: without
metadata files the metadata rules check the defaults and say so. Signature
checks come from `verify`, metadata checks from `spec`; this module only
gathers the inputs and turns exceptions into results.
"""

from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from xai_callback.publish import storage
from xai_callback.contract import checks
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL
from xai_callback.signatures.specs import describe_spec, explained_signature_name, signature_io
from xai_callback.errors import ExportVerificationError, SpecError, short_message
from xai_callback.contract.checks import explained_inputs_from_sample
from xai_callback.signatures.samples import generate_sample
from xai_callback.names import (
    FEATURES_FILE,
    SAMPLE_FILE,
    SERVING_DEFAULT,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    XAI_MODEL,
    XAI_PREPROCESS,
    extra_path,
)
from xai_callback.spec import crosscheck
from xai_callback.spec.explanation_spec import ExplanationSpec
from xai_callback.spec.metadata import attributed_fields, check_metadata_fields, output_from_metadata
from xai_callback.publish.provenance import read_provenance, verified_tolerances
from xai_callback.spec.methods import BY_VERTEX_KEY, check_one_method
from xai_callback.spec.parameters import check_parameter_fields
from xai_callback.contract.probe import probe_gradients, zero_gradient_message
from xai_callback.signatures.tensor_io import decode_tensor_dict

# Errors that mean "this rule is broken", as opposed to bugs in this package.
_RULE_ERRORS = (SpecError, TypeError, ExportVerificationError)
# Errors of running a signature on a sample (wrong keys, dtypes, shapes).
RUN_ERRORS = (tf.errors.OpError, TypeError, ValueError)


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one contract rule.

    `skipped` results count as passed (nothing was found wrong) but say in
    `reason` why the rule could not be checked; `warning` results pass too,
    with something the user should look at in `reason`.
    """

    rule: str
    passed: bool
    reason: str
    skipped: bool = False
    warning: bool = False

    @property
    def status(self):
        if self.skipped:
            return "SKIP"
        return ("WARN" if self.warning else "PASS") if self.passed else "FAIL"


class ValidationReport:
    """Results of `validate`, one per rule, in the order of `RULES`."""

    def __init__(self, export_dir, results):
        self.export_dir = export_dir
        self.results = list(results)

    @property
    def ok(self):
        return all(r.passed for r in self.results)

    @property
    def failures(self):
        return [r for r in self.results if not r.passed]

    def __getitem__(self, rule):
        for result in self.results:
            if result.rule == rule:
                return result
        raise KeyError(rule)

    def to_dict(self):
        return {"export_dir": self.export_dir, "ok": self.ok,
                "rules": [{**asdict(r), "status": r.status} for r in self.results]}

    def __str__(self):
        skipped = sum(r.skipped for r in self.results)
        head = (f"{self.export_dir}: explanation-ready, {len(self.results)} rules pass"
                if self.ok else
                f"{self.export_dir}: NOT explanation-ready, {len(self.failures)} of "
                f"{len(self.results)} rules fail")
        if skipped:
            head += f" ({skipped} not checked)"
        warned = sum(r.warning for r in self.results)
        if warned:
            head += f" ({warned} with a warning)"
        width = max(len(r.rule) for r in self.results)
        lines = [f"  {r.status}  {r.rule:<{width}}  {r.reason}" for r in self.results]
        return "\n".join([head, *lines])

    def raise_for_failures(self):
        """Raises `ExportVerificationError` listing the failed rules, if any."""
        if not self.ok:
            raise ExportVerificationError(str(self))


@dataclass
class _Export:
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
    model_inputs: tuple = None  # (batch, source) of the explained signature: `_model_inputs`


def validate(export_dir, sample=None, *, loaded=None):
    """Checks a SavedModel against every rule of the explanation contract.

    Args:
        export_dir: SavedModel directory (local, gs://, ram://, ...).
        sample: optional `{serving_default input key: array}` small batch;
            defaults to the one stored in `assets.extra/xai_sample.json`.
        loaded: `tf.saved_model.load(export_dir)` when the caller has it
            already (it is not loaded again).

    Returns:
        A `ValidationReport`; `report.ok` is True when every rule passes.

    Raises:
        FileNotFoundError: `export_dir` is missing or holds no SavedModel.
    """
    export_dir = str(export_dir)
    if loaded is None:
        require_saved_model(export_dir)
        loaded = tf.saved_model.load(export_dir)
    export = _Export(export_dir, loaded.signatures, loaded)
    _read_signature_io(export)
    _read_sample(export, sample)
    _read_tolerances(export)
    _read_explanation(export)
    results = {}
    for name, rule in RULES:
        results[name] = rule(export, results)
    return ValidationReport(export_dir, results.values())


def require_saved_model(export_dir):
    """Raises FileNotFoundError unless `export_dir` holds a SavedModel."""
    if not storage.exists(export_dir):
        raise FileNotFoundError(f"No such export directory: {export_dir}")
    if not tf.saved_model.contains_saved_model(export_dir):
        raise FileNotFoundError(
            f"{export_dir} is not a SavedModel directory (no saved_model.pb or "
            "saved_model.pbtxt in it).")


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
        return
    path = extra_path(export.export_dir, SAMPLE_FILE)
    if not storage.exists(path):
        return
    export.sample_source = f"the stored sample ({path})"
    try:
        export.sample = decode_tensor_dict(storage.read_json(path))
    except (ValueError, KeyError, TypeError, tf.errors.OpError) as e:
        export.sample_error = f"cannot decode {path}: {e}"


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


def _result(rule, check):
    """Runs `check()` (returns the pass reason) and records how it went."""
    try:
        return RuleResult(rule, True, check())
    except _RULE_ERRORS as e:
        return RuleResult(rule, False, str(e))


def skip(rule, reason):
    return RuleResult(rule, True, f"not checked: {reason}", skipped=True)


def _rule_signature_set(export, done):
    def check():
        checks.check_serving_default_present(export.signatures)
        return f"signatures {sorted(export.signatures.keys())} include '{SERVING_DEFAULT}'"
    return _result("signature_set", check)


def _rule_xai_model(export, done):
    def check():
        checks.check_xai_model_present(export.signatures)
        return f"the service explains '{export.explained}'"
    return _result("xai_model_present", check)


def _rule_preprocess(export, done):
    if XAI_PREPROCESS not in export.signatures:
        return RuleResult("preprocess_feeds_model", True,
                          f"no '{XAI_PREPROCESS}' signature: nothing to match")

    def check():
        checks.check_preprocess_feeds_model(export.signatures)
        return f"'{XAI_PREPROCESS}' outputs equal '{XAI_MODEL}' inputs in keys, dtypes and shapes"
    return _result("preprocess_feeds_model", check)


def _rule_serving_identity(export, done):
    rule = "serving_identity"
    if export.sample_error:
        return RuleResult(rule, False, export.sample_error)
    if export.sample is None:
        return skip(rule, f"no sample stored (assets.extra/{SAMPLE_FILE}) or given")
    if not (done["signature_set"].passed and done["preprocess_feeds_model"].passed
            and export.explained):
        return skip(rule, "the signature rules above fail")

    def check():
        try:
            checks.check_serving_identity(export.signatures, export.sample, **export.tolerances)
        except RUN_ERRORS as e:
            raise ExportVerificationError(
                f"running the signatures on {export.sample_source} failed: "
                f"{type(e).__name__}: {short_message(e)}") from e
        if export.explained == SERVING_DEFAULT:
            return f"serving_default is the explained signature; it runs on {export.sample_source}"
        tolerances = ", ".join(f"{k}={v}" for k, v in export.tolerances.items())
        return (f"serving_default == {export.explained}"
                f"{' o xai_preprocess' if XAI_PREPROCESS in export.signatures else ''} "
                f"on {export.sample_source} ({tolerances}, {export.tolerances_source})")
    return _result(rule, check)


def _rule_metadata_format(export, done):
    if export.metadata is None:
        return RuleResult("metadata_format", False, export.metadata_error)

    def check():
        check_metadata_fields(export.metadata)
        output = output_from_metadata(export.metadata)
        return (f"{len(export.metadata['inputs'])} feature(s), output "
                f"{output.key!r}; {export.metadata_source}")
    return _result("metadata_format", check)


def metadata_blocker(export, done):
    """Why metadata rules cannot run, or None."""
    if export.inputs is None:
        return "the export has no explained signature"
    if not done["metadata_format"].passed:
        return "the metadata does not parse (see metadata_format)"
    return None


def _rule_metadata_names(export, done):
    blocker = metadata_blocker(export, done)
    if blocker:
        return skip("metadata_names", blocker)

    def check():
        crosscheck.check_names(export.metadata, export.inputs, export.outputs)
        return (f"tensor names are keys of '{export.explained}' (inputs "
                f"{sorted(export.inputs)}, outputs {sorted(export.outputs)})")
    return _result("metadata_names", check)


def _rule_parameter_ranges(export, done):
    if export.parameters is None:
        return RuleResult("parameter_ranges", False, export.parameters_error)

    def check():
        check_parameter_fields(export.parameters)
        if not metadata_blocker(export, done) and done["metadata_names"].passed:
            crosscheck.check_noise_sigma_names(export.metadata, export.parameters)
            crosscheck.check_output_indices_fit(export.metadata, export.parameters,
                                                export.outputs)
        return f"counts and options in range; {export.parameters_source}"
    return _result("parameter_ranges", check)


def _rule_one_method(export, done):
    if export.parameters is None:
        return RuleResult("one_method", False, export.parameters_error)
    return _result("one_method", lambda: f"method {check_one_method(export.parameters)}")


def _rule_baselines(export, done):
    blocker = metadata_blocker(export, done)
    if blocker:
        return skip("baselines", blocker)

    def check():
        crosscheck.check_baselines(export.metadata, export.inputs)
        return "1-10 baselines per feature, each a scalar or one example's shape"
    return _result("baselines", check)


def _rule_differentiability(export, done):
    rule = "differentiability"
    blocker = metadata_blocker(export, done)
    if blocker or not done["metadata_names"].passed or not done["one_method"].passed:
        return skip(rule, blocker or "the metadata names or the method are wrong (see above)")
    try:
        crosscheck.check_method_inputs(export.metadata, export.parameters, export.inputs)
        model_inputs, source = _model_inputs(export)
        largest = probe_gradients(export.signatures[export.explained], export.metadata,
                                  export.parameters, model_inputs)
    except SpecError as e:
        return RuleResult(rule, False, str(e))
    except RUN_ERRORS as e:
        # The model would not run on the probe batch: that says nothing about
        # gradients, so the rule is not checked rather than failed.
        return skip(rule, f"running '{export.explained}' on a probe batch failed "
                           f"({type(e).__name__}: {short_message(e)}); store a sample in the "
                           "export or pass `sample=`")
    if not largest:
        method = BY_VERTEX_KEY[check_one_method(export.parameters)].__name__
        return RuleResult(rule, True, f"{method} takes no gradients")
    reason = (f"gradients reach every feature on {source} and the path from the baselines; "
              "max |grad|: " + ", ".join(f"{k}={v:.3g}" for k, v in largest.items()))
    zero = zero_gradient_message(largest, export.metadata, when=f"on {source}")
    # Zero (not None) gradients come from the weights: the export is still valid.
    return RuleResult(rule, True, reason + (f". Note: {zero}" if zero else ""))


def _rule_baselines_run(export, done):
    """Each baseline goes through the export: one a lookup cannot take fails here,
    naming the feature, not inside `explain`."""
    rule = "baselines_run"
    blocker = metadata_blocker(export, done)
    if blocker or not (done["metadata_names"].passed and done["baselines"].passed):
        return skip(rule, blocker or "the metadata names or baselines are wrong (see above)")
    try:
        model_inputs, source = _model_inputs(export)
        first = {k: tf.convert_to_tensor(v)[:1] for k, v in model_inputs.items()}
        raw_first = ({k: tf.convert_to_tensor(v)[:1] for k, v in export.sample.items()}
                     if export.sample is not None else None)
    except (ValueError, *RUN_ERRORS) as e:
        return skip(rule, f"no batch of '{export.explained}' inputs to run them on ({short_message(e)})")
    model = export.signatures[export.explained]
    preprocess = export.signatures.get(XAI_PREPROCESS)
    preprocess_inputs = signature_io(preprocess)[0] if preprocess is not None else {}
    at_baselines = dict(first)
    for name, body in export.metadata["inputs"].items():
        key, baselines = _attributed(body)
        spec = export.inputs[key]
        for baseline in baselines:
            try:
                value = _baseline_tensor(baseline, spec)
            except ValueError as e:
                return RuleResult(rule, False, f"feature {name!r}: baseline {baseline!r}: {e}")
            runs = [(export.explained, model, {**first, key: value})]
            if (raw_first is not None and key in preprocess_inputs
                    and preprocess_inputs[key].dtype == spec.dtype):
                runs.append((XAI_PREPROCESS, preprocess, {**raw_first, key: value}))
            for signature, fn, inputs in runs:
                try:
                    fn(**inputs)
                except RUN_ERRORS as e:
                    return RuleResult(rule, False, (
                        f"feature {name!r}: baseline {baseline!r} cannot be processed by "
                        f"'{signature}' ({type(e).__name__}: {short_message(e)}); give a baseline "
                        "the model accepts (for a lookup without OOV index, e.g. "
                        "num_oov_indices=0, one of its vocabulary values)"))
        at_baselines[key] = _baseline_tensor(baselines[0], spec)
    reason = f"every baseline runs through '{export.explained}' (on {source})"
    flat = _output_unchanged(export, model, model_inputs, at_baselines)
    if flat:
        return RuleResult(rule, True, f"{reason}; WARNING: {flat}", warning=True)
    return RuleResult(rule, True, reason)


def read_features(export):
    path = extra_path(export.export_dir, FEATURES_FILE)
    return storage.read_json(path) if storage.exists(path) else None


def _attributed(body):
    """`(xai_model key attributed to, its baselines)` of a metadata input (Vertex defaults)."""
    tensor_field, baselines_field = attributed_fields(body)
    return body[tensor_field], list(body.get(baselines_field) or [0])


def _baseline_tensor(baseline, spec):
    """One baseline as a batch of one example of `spec`."""
    example = [1 if d is None else d for d in spec.shape.as_list()[1:]]
    if spec.dtype == tf.string:
        values = np.asarray(baseline, object)
        if not all(isinstance(v, str) for v in values.ravel()):
            raise ValueError(f"input is {describe_spec(spec)}: expected strings")
        values = np.vectorize(lambda v: v.encode("utf-8"), otypes=[object])(values)
    else:
        values = np.asarray(baseline, spec.dtype.as_numpy_dtype)
    return tf.constant(np.broadcast_to(values, example)[None], spec.dtype)


def _output_unchanged(export, model, model_inputs, at_baselines):
    """Why the explained output looks blind to the features, or None."""
    (_, body), = export.metadata["outputs"].items()
    key = body.get("outputTensorName")
    try:
        sample = np.asarray(model(**model_inputs)[key], np.float64)
        baseline = np.asarray(model(**at_baselines)[key], np.float64)
    except (KeyError, *RUN_ERRORS):
        return None
    change = np.abs(sample - baseline).reshape(len(sample), -1).max(axis=1)
    scale = np.maximum(np.abs(sample), np.abs(baseline)).reshape(len(sample), -1).max(axis=1)
    if len(sample) and np.all(change <= 1e-6 * scale + 1e-12):
        return (f"output {key!r} is the same at the baselines and at all {len(sample)} sample "
                "instances: the model seems to ignore its features (attributions would be "
                "numerical noise)")
    return None


def _model_inputs(export):
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


# The contract's rules, in report order:
#   signature_set           serving_default exists
#   xai_model_present       more than one signature -> one is named xai_model
#   preprocess_feeds_model  xai_preprocess outputs == xai_model inputs (keys, dtypes, shapes)
#   serving_identity        serving_default(x) == xai_model(**xai_preprocess(x)) on a sample
#   metadata_format         the metadata is Vertex v1 JSON with valid fields and enums
#   metadata_names          tensor names are keys of the explained signature; name lists fit
#   parameter_ranges        counts, sigmas, topK, outputIndices in range
#   one_method              exactly one attribution method
#   baselines               1-10 baselines each, scalar or one example's shape
#   differentiability       XRAI on images; gradient methods reach every feature (probe)
#   baselines_run           every baseline runs through the export; warns when the output ignores the features
#   explain_signature       xai_explain (when present) equals the Python explainer on the sample
RULES = [
    ("signature_set", _rule_signature_set),
    ("xai_model_present", _rule_xai_model),
    ("preprocess_feeds_model", _rule_preprocess),
    ("serving_identity", _rule_serving_identity),
    ("metadata_format", _rule_metadata_format),
    ("metadata_names", _rule_metadata_names),
    ("parameter_ranges", _rule_parameter_ranges),
    ("one_method", _rule_one_method),
    ("baselines", _rule_baselines),
    ("differentiability", _rule_differentiability),
    ("baselines_run", _rule_baselines_run),
]


def register_rule(name, rule):
    """Adds a rule after the ones above (once per name; rules run in order).

    Rooms above the contract add the rules that need them: `xai_callback.explain`
    registers the ones that run explanations (the package root imports it, so
    every `validate` call has them).

    Args:
        name: the rule's name in the report.
        rule: `rule(export, done) -> RuleResult`, where `done` holds the results
            of the rules before it by name.
    """
    if name not in (existing for existing, _ in RULES):
        RULES.append((name, rule))

