"""Explanations computed from an exported SavedModel, as the service would.

The service runs `xai_preprocess` on the instances, feeds its output into
`xai_model` and attributes to `xai_model`'s inputs; `predictions` come from
`serving_default`. Exports without `xai_model` are explained through
`serving_default` itself.
"""

from xai_callback.publish import storage
from xai_callback.publish.local_copy import local_copy
from xai_callback.errors import ExportVerificationError
from xai_callback.explain.explainer import Explainer
from xai_callback.explain.instances import instances_to_tensors
from xai_callback.names import (
    FEATURES_FILE,
    SERVING_DEFAULT,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    XAI_PREPROCESS,
    extra_path,
)
from xai_callback.contract.validation import validate as validate_export
from xai_callback.contract.checks import check_signature_set
from xai_callback.contract.loaded import load_export, restore_handle_data
from xai_callback.signatures.specs import explained_signature_name, same_spec, signature_io

# Validation rules about the export's stored method (see `_raise_for_failures`).
STORED_METHOD_RULES = ("parameter_ranges", "one_method", "differentiability", "explanations")


class ExportExplainer(Explainer):
    """An `Explainer` over a loaded export that takes TF Serving JSON instances.

    Example:

    ```python
    explainer = load_explainer("gs://bucket/model/3")
    response = explainer.explain_instances([{"x": [1.0, 2.0]}], step_count=100)
    ```

    Attributes:
        export_dir: where the export was loaded from.
        instance_specs: `{key: tf.TensorSpec}` the instances must match.
        instance_signature: name of the signature whose inputs those are.
        validation: the export's `ValidationReport` (None: not validated);
            its failures are raised by `explain`.
    """

    def __init__(self, export_dir, instance_specs, instance_signature, validation=None, **kwargs):
        super().__init__(**kwargs)
        self.export_dir = export_dir
        self.instance_specs = instance_specs
        self.instance_signature = instance_signature
        self.validation = validation

    def explain(self, inputs, *, method=None, **options):
        """`Explainer.explain`, refusing exports that failed validation."""
        self._raise_for_failures(method)
        return super().explain(inputs, method=method, **options)

    def explain_instances(self, instances, **options):
        """`explain` on JSON-style instances (see `instances_to_tensors`)."""
        inputs = instances_to_tensors(instances, self.instance_specs, self.instance_signature)
        return self.explain(inputs, **options)

    def _raise_for_failures(self, method):
        if self.validation is None:
            return
        # An explicit method replaces the stored one, and is checked by the
        # method itself, so failures of the stored method's rules do not count.
        ignored = STORED_METHOD_RULES if method is not None else ()
        failures = [r for r in self.validation.failures if r.rule not in ignored]
        if failures:
            raise ExportVerificationError(
                f"{self.export_dir} is not explanation-ready: "
                + "; ".join(f"{r.rule}: {r.reason}" for r in failures)
                + " (run `xai-callback validate` for the full report"
                + ("" if self.spelling.style == "cli" else
                   f", or pass {self.spelling('validate', False)}") + ")."
            )


def load_explainer(export_dir, validate=True, *, loaded=None, **explainer_options):
    """Loads an export and its explanation spec into an `ExportExplainer`.

    Args:
        export_dir: the export (local, `gs://`, `ram://`, ...).
        validate: check the export with `xai_callback.contract.validation.validate`;
            `explain` then raises on its failures.
        loaded: `tf.saved_model.load(export_dir)` when the caller has it
            already (it is not loaded again, for the explainer nor for
            `validate`).
        **explainer_options: `limits` (a `spec.limits.Limits`; default: local
            limits, no cap) and `spelling` (`spec.options.Spelling`) of the
            `Explainer`.

    Raises:
        ExportVerificationError: the export breaks the explanation contract.
    """
    export_dir = str(export_dir)
    if not storage.exists(export_dir):
        raise ExportVerificationError(f"No export at {export_dir!r}.")
    export_dir = local_copy(export_dir)  # s3://, gs:// (fsspec): TensorFlow loads a local copy
    if loaded is None:
        loaded = load_export(export_dir)
    restore_handle_data(loaded)  # gradients of loops inside tf.function (contract/loaded.py)
    signatures = loaded.signatures
    check_signature_set(signatures)
    explained = explained_signature_name(signatures)
    preprocess = signatures.get(XAI_PREPROCESS)
    serving = signatures[SERVING_DEFAULT]
    # Without xai_preprocess the service feeds instances to xai_model directly.
    instance_signature = SERVING_DEFAULT if preprocess is not None else explained
    instance_specs = signature_io(signatures[instance_signature])[0]
    validation = validate_export(export_dir, loaded=loaded) if validate else None
    # Predictions come from serving_default; when it is known to equal the
    # explained pass, that pass's outputs are reused instead of running it again.
    feeds_serving = _same_specs(instance_specs, signature_io(serving)[0])
    reuse = _serving_is_explained_pass(signatures, explained, validation)
    explainer = ExportExplainer(
        export_dir,
        instance_specs,
        instance_signature,
        model_fn=signatures[explained],
        metadata=_read_optional_json(extra_path(export_dir, VERTEX_METADATA_FILE)),
        parameters=_read_optional_json(extra_path(export_dir, VERTEX_PARAMETERS_FILE)),
        xai_features=_read_optional_json(extra_path(export_dir, FEATURES_FILE)),
        preprocess_fn=preprocess,
        serving_fn=serving if feeds_serving and not reuse else None,
        validation=validation,
        **explainer_options,
    )
    explainer.saved_model = loaded  # keeps the signatures' variables alive
    return explainer


def explain(export_dir, instances, *, method=None, validate=True, **options):
    """Explains instances with an exported model, like Vertex AI's `:explain`.

    Example:

    ```python
    from xai_callback.explain import explain

    response = explain("export/1", [{"csv_line": "5.1,3.5,1.4,0.2"}], step_count=100)
    response.explanations[0].attributions[0].feature_attributions
    response.to_json()
    ```

    Args:
        export_dir: the export directory.
        instances: instances in `serving_default`'s input format (TF Serving
            JSON row format; binary as `{"b64": ...}`; bare values for a
            single input; scalars for `[None, 1]` inputs), a dict of batched
            columns (or of one instance's scalars), or an array for a single
            input, as `model.predict` takes them.
        method: "integrated-gradients", "sampled-shapley" or "smoothgrad";
            None: the method in the export's parameters (IG, 50 steps, when
            the export has none).
        validate: validate the export first.
        **options: `granularity` ("raw", the default: one attribution per raw
            feature, token or group; "encoded": per element of each explained
            tensor), `max_rows_per_call`, `seed`, `progress`, and the overrides of
            `Explainer.explain` (`step_count`, `path_count`, `noise_sigma`,
            `feature_noise_sigma`, `noisy_sample_count`, `top_k`,
            `output_indices`, `output_key`).

    Returns:
        `ExplainResponse` (`.to_dict()`, `.to_json()`).
    """
    return load_explainer(export_dir, validate=validate).explain_instances(
        instances, method=method, **options
    )


def _serving_is_explained_pass(signatures, explained, validation):
    """Whether `serving_default` == `explained` o `xai_preprocess`: validated, or the same function."""
    serving, model = signatures[SERVING_DEFAULT], signatures[explained]
    if serving is model:
        return True
    # The identity rule compares only the output keys both sides have: a
    # custom serving_default may add others, so the outputs must match too.
    if not _same_specs(signature_io(serving)[1], signature_io(model)[1]):
        return False
    if validation is not None:
        identity = validation["serving_identity"]
        return identity.passed and not identity.skipped
    return XAI_PREPROCESS not in signatures and _same_computation(serving, model)


def _same_computation(a, b):
    """Both signature wrappers call the same functions on the same inputs and variables."""
    def calls(signature):
        return sorted(
            (op.get_attr("f").name, tuple(i.op.name for i in op.inputs))
            for op in signature.graph.get_operations()
            if op.type in ("PartitionedCall", "StatefulPartitionedCall")
        )

    same_variables = len(a.captured_inputs) == len(b.captured_inputs) and all(
        x is y for x, y in zip(a.captured_inputs, b.captured_inputs))
    return same_variables and calls(a) == calls(b)


def _read_optional_json(path):
    return storage.read_json(path) if storage.exists(path) else None


def _same_specs(a, b):
    return set(a) == set(b) and all(same_spec(a[k], b[k]) for k in a)
