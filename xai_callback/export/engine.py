"""The export engine: an explanation-ready SavedModel from a Keras model.

Usable without `fit`; the callbacks only decide when to call it and with
which weights.
"""

import warnings
from collections.abc import Mapping

import tensorflow as tf

from xai_callback.publish import storage
from xai_callback.errors import ExportVerificationError, InputError, SignatureError, SpecError, short_message
from xai_callback.split.frontier import ModelPreprocessing
from xai_callback.signatures.inputs import as_input_dict
from xai_callback.names import (
    ASSETS_EXTRA,
    FEATURES_FILE,
    LEGACY_METADATA_FILE,
    SAMPLE_FILE,
    SERVING_DEFAULT,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    XAI_EXPLAIN,
    XAI_MODEL,
    XAI_PREPROCESS,
    extra_path,
    join,
)
from xai_callback import backends
from xai_callback.export import checks, distribute
from xai_callback.export.options import check_export_options
from xai_callback.export.result import ExportResult
from xai_callback.export.saved_model import check_reloaded, write_saved_model
from xai_callback.export.trained_model import TrainedModel
from xai_callback.publish.destination import Destination
from xai_callback.publish.provenance import build_provenance, write_provenance
from xai_callback.publish.staging import staging
from xai_callback.signatures.functions import check_preprocess_output, compose
from xai_callback.signatures.keras_models import as_signature_function, model_signature_function
from xai_callback.signatures.samples import GENERATED_SAMPLE_ROWS, generate_sample
from xai_callback.contract.checks import explained_inputs_from_sample
from xai_callback.contract.loaded import load_export
from xai_callback.signatures.tensor_io import encode_tensor_dict
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL
from xai_callback.contract.checks import (
    check_preprocess_feeds_model,
    check_serving_identity,
    check_signature_set,
)
from xai_callback.signatures.specs import signature_io


class ExplainableExporter:
    """Builds, checks and writes explanation-ready SavedModels of one model.

    `prepare()` traces every signature and checks the contract without writing
    anything, so a callback can fail before the first training batch;
    `export()` writes, reloads and verifies.

    Example:

    ```python
    exporter = ExplainableExporter(model, preprocess_fn=(parse_csv, [
        tf.TensorSpec([None], tf.string, name="csv_line")]))
    exporter.prepare()          # fails fast on a wrong configuration
    model.fit(x, y)
    exporter.export("exports/churn")
    ```

    Args:
        model: a built Keras model (Keras 3 or tf-keras).
        serving_fn: the `serving_default` function. Defaults to None:
            `xai_model`, or `xai_model(**xai_preprocess(x))` with a preprocess.
        preprocess_fn: raw input -> dict feeding `xai_model` exactly. Written
            as `xai_preprocess`. Defaults to None (no preprocessing).
        model_fn: the differentiable core, written as `xai_model`. Defaults to
            None: the model called on its inputs (keys = Keras Input names,
            outputs = the model's output names).
        extra_signatures: `{name: function}` of further signatures. Reserved
            names (`serving_default`, `xai_model`, `xai_preprocess`) refused.
        output_key: the output to explain when the model has several.
        sample: a small batch of `serving_default`'s inputs, used to verify
            the export; what `model.predict` takes: a dict by input name (keys
            it does not take are ignored), a list or tuple in input order, an
            array (numpy string/object arrays too) for a single input, scalars
            for one instance. Defaults to None: a batch is generated from the
            input specs (numbers, and the vocabularies of Keras preprocessing
            layers); inputs only your own functions read (CSV lines) need one.
        explanation_spec: an `ExplanationSpec` or its config dict. Defaults to
            None: every input a numeric feature with zero baseline, integrated
            gradients with 50 steps.
        legacy_metadata: also write the legacy AI Platform
            `explanation_metadata.json`. Defaults to False.
        track: extra trackables (e.g. lookup tables) used by your functions.
        verify: check the signatures on the sample and probe gradients in
            `prepare()`, then reload and check the export after writing.
            Defaults to True.
        rtol, atol: tolerances of the output comparisons (defaults 1e-4 and
            1e-5; widened for bfloat16/float16 outputs). Recorded in the
            provenance, so `validate` checks the export with the same.
        overwrite: replace a non-empty `export_dir` that is not an export of
            ours. Defaults to False.
        versioned: write each export to a new `export_dir/<integer>/` (TF
            Serving's layout; the number is claimed by the final rename).
            Defaults to False: `export_dir` is the SavedModel itself.
        keep: with `versioned=True`, how many of our versions to keep: the
            newest, or in the callback's best-epoch mode the best by the
            monitored value (the one just written is always kept). Defaults
            to None: keep all.
        split: cut a Keras model whose raw inputs pass non-differentiable
            preprocessing layers (lookups, hashing, one-hot, embeddings,
            TextVectorization, FeatureSpace) at its differentiable frontier:
            `xai_preprocess` = raw inputs -> encoded float tensors keyed by
            raw feature, `xai_model` = those -> outputs, metadata per raw
            feature (see `xai_callback.split.frontier`). Also applies to a Keras
            model or FeatureSpace given as `preprocess_fn`, composed with the
            model first. Defaults to True; an explicit `model_fn` or a
            non-Keras `preprocess_fn` always wins; False writes the model
            (and a Keras `preprocess_fn`) as given.
        store_sample: write the verification sample into the export
            (`assets.extra/xai_sample.json`, used by `validate` to re-check the
            export later). It holds rows of your input data: pass False to
            keep them out of the export. Defaults to True.
        explain_signature: also write `xai_explain`, a signature computing
            the explanations in-graph (`xai_callback.explain.signature`), so
            TF Serving and other SavedModel hosts explain. Defaults to False.

    Functions may be a `tf.function` with an `input_signature`, a concrete
    function, a `(callable, input_signature)` tuple or a `SignatureFunction`.
    """

    def __init__(
        self,
        model,
        *,
        serving_fn=None,
        preprocess_fn=None,
        model_fn=None,
        extra_signatures=None,
        output_key=None,
        sample=None,
        explanation_spec=None,
        legacy_metadata=False,
        track=None,
        verify=True,
        rtol=DEFAULT_RTOL,
        atol=DEFAULT_ATOL,
        overwrite=False,
        versioned=False,
        keep=None,
        split=True,
        store_sample=True,
        explain_signature=False,
    ):
        checked = check_export_options(
            extra_signatures=extra_signatures, output_key=output_key, sample=sample,
            explanation_spec=explanation_spec, legacy_metadata=legacy_metadata, track=track,
            verify=verify, rtol=rtol, atol=atol, overwrite=overwrite, versioned=versioned,
            keep=keep, split=split, store_sample=store_sample, explain_signature=explain_signature)
        self.model = model
        self.output_key = checked["output_key"]
        self.sample = sample
        self.explanation_spec = checked["explanation_spec"]
        self.legacy_metadata = checked["legacy_metadata"]
        self.track = list(track or [])
        self.verify = checked["verify"]
        self.rtol, self.atol = checked["rtol"], checked["atol"]
        self.overwrite = checked["overwrite"]
        self.versioned, self.keep = checked["versioned"], keep
        self.split = checked["split"]
        self.store_sample = checked["store_sample"]
        self.explain_signature = checked["explain_signature"]
        self._raw = {
            "serving_fn": serving_fn,
            "preprocess_fn": preprocess_fn,
            "model_fn": model_fn,
        }
        self._raw_extra = dict(extra_signatures or {})
        self._prepared = False
        self._probes = {}  # compiled gradient probes of the live functions (contract/probe.py)

    # -- building -----------------------------------------------------------

    def prepare(self):
        """Traces all signatures and checks them; writes nothing.

        Raises:
            SignatureError: a function does not trace, the preprocess output
                does not match the model input, `output_key` is unknown, ...
            SpecError: the explanation spec does not fit the signatures.
        """
        if self._prepared:
            return self
        self.preprocessing = ModelPreprocessing.of(
            self.model, self._raw["preprocess_fn"], self._raw["model_fn"], self.split)
        # On JAX/PyTorch a TensorFlow copy of the model (xai_callback/backends/).
        self.converter = backends.for_model(self.model, rtol=self.rtol, atol=self.atol)
        serving = as_signature_function(self._raw["serving_fn"], "serving_fn")
        plan = self.preprocessing.plan
        if plan is not None:
            model_fn, preprocess = plan.model_function(), plan.preprocess_function()
            if serving is None:
                serving = model_signature_function(self.preprocessing.source, name="serving_default")
        else:
            model_fn = as_signature_function(self._raw["model_fn"], "model_fn")
            if model_fn is None:
                model_fn = self.converter.signature_function(name="model_fn")
            preprocess = as_signature_function(self._raw["preprocess_fn"], "preprocess_fn")
        extras = {
            name: as_signature_function(fn, f"extra_signatures[{name!r}]")
            for name, fn in self._raw_extra.items()
        }
        model_outputs = model_fn.output_specs()
        if self.output_key is not None and self.output_key not in model_outputs:
            raise SignatureError(
                f"output_key={self.output_key!r} is not an output of the model; "
                f"its outputs are {sorted(model_outputs)}."
            )
        if preprocess is not None:
            check_preprocess_output(preprocess, model_fn)
        if serving is None:
            serving = compose(preprocess, model_fn) if preprocess else model_fn
        serving.concrete_function()
        for fn in extras.values():
            fn.concrete_function()
        self.functions = {SERVING_DEFAULT: serving, XAI_MODEL: model_fn}
        if preprocess is not None:
            self.functions[XAI_PREPROCESS] = preprocess
        self.functions.update(extras)
        # The spec is checked against the live signatures now and against the
        # reloaded ones after writing.
        metadata, parameters = self.build_spec(dict(model_fn.input_specs), model_outputs)
        if self.explain_signature:
            from xai_callback.explain.signature import explain_signature_function

            explainer = explain_signature_function(
                serving, model_fn, metadata, parameters, preprocess,
                xai_features=plan.features_description() if plan is not None else None,
                serving_is_model=self._raw["serving_fn"] is None and plan is None,
                baseline_rows=(plan.baseline_rows()
                               if plan is not None and self.explanation_spec.features is None else None))
            explainer.concrete_function()
            self.functions[XAI_EXPLAIN] = explainer
        self._sample = self._resolve_sample(serving)
        self.trained_model = TrainedModel.for_export(
            self.functions, self._raw, self.converter, self.preprocessing.source if plan is not None else None,
            rtol=self.rtol, atol=self.atol)
        self._check_before_training()
        self._prepared = True
        return self

    def build_spec(self, inputs=None, outputs=None):
        """Vertex metadata and parameters for `xai_model`'s specs; the features
        default to those the model's preprocessing layers describe."""
        # Asked at every export: embedding baselines are rows that training moves.
        if inputs is None:  # the live xai_model's
            model_fn = self.functions[XAI_MODEL]
            inputs, outputs = dict(model_fn.input_specs), model_fn.output_specs()
        defaults = self.preprocessing.default_features() if self.explanation_spec.features is None else None
        return self.explanation_spec.build(inputs, outputs, output_key=self.output_key, defaults=defaults)

    def _check_before_training(self):
        """Runs the sample and the gradient probe on the live functions.

        What fails here would fail every export after training: a sample the
        signatures cannot run, or a model no gradient can cross (a
        stop_gradient, a cast to int: structural, whatever the weights).
        All-zero gradients are not refused: they depend on the weights and
        are reported after writing. Both runs also build the functions'
        graphs once, so the checks after training are only runs.
        """
        if not self.verify:
            return
        if self._sample is not None:
            try:
                self.functions[SERVING_DEFAULT].call_dict(self._sample)
            except (tf.errors.OpError, TypeError, ValueError) as e:
                raise SignatureError(
                    f"serving_default cannot run on the verification sample (sample= keys "
                    f"{sorted(self._sample)}): {type(e).__name__}: {short_message(e)}"
                ) from e
        self._probe(self._live(), live=True)
        if self._sample is not None:  # after the probe, whose refusals are more specific
            checks.check_before_training(self.functions, self._sample, self.trained_model,
                                         self._raw["serving_fn"] is not None, self.rtol, self.atol)
            # The export's method through explain's engine: what it would refuse, refused now.
            from xai_callback.explain.rehearsal import check_before_training

            model_fn = self.functions[XAI_MODEL]
            check_before_training(self._live(), *self.build_spec(
                dict(model_fn.input_specs), model_fn.output_specs()), self._sample,
                self.preprocessing.plan.features_description() if self.preprocessing.plan else None)

    def _live(self):
        return {name: fn.concrete_function() for name, fn in self.functions.items()}

    def _probe(self, signatures, live=False):
        """Gradient probe of `signatures`' `xai_model` along the IG path (the live
        functions' compiled probe is kept for the probe after training).

        Returns:
            `(largest |gradient| per feature, metadata)`; raises `SpecError`
            when no gradient reaches a feature.
        """
        from xai_callback.contract.probe import probe_gradients

        metadata, parameters = self.build_spec(*signature_io(signatures[XAI_MODEL]))
        if not self.explanation_spec.method.GRADIENT_BASED:
            return {}, metadata  # nothing to probe, no sample needed
        largest = probe_gradients(signatures[XAI_MODEL], metadata, parameters,
                                  self._model_sample(signatures),
                                  cache=self._probes if live else None)
        return largest, metadata

    def _probe_after_writing(self, signatures):
        """The reloaded `xai_model`'s gradients where loading can change them (loops:
        contract/loaded.py), else the live ones (cheap: traced in prepare()).

        No gradient on the reloaded export fails the export; all-zero gradients
        only warn: they come from the trained weights (a saturated sigmoid,
        dead ReLUs), not from a broken export.
        """
        from xai_callback.contract.loaded import has_loops
        from xai_callback.contract.probe import zero_gradient_message

        try:
            if has_loops(signatures[XAI_MODEL]):
                largest, metadata = self._probe(signatures)
            else:
                largest, metadata = self._probe(self._live(), live=True)
        except SpecError as e:
            raise ExportVerificationError(
                f"The reloaded export cannot be explained: {e}", signature=XAI_MODEL) from e
        message = zero_gradient_message(largest, metadata)
        if message:
            warnings.warn(message, stacklevel=4)

    def _resolve_sample(self, serving):
        if self.sample is not None:
            sample = self.sample
            if isinstance(sample, Mapping) and not set(serving.input_specs) - set(sample):
                sample = {key: sample[key] for key in serving.input_specs}  # e.g. a label column
            try:
                return as_input_dict(sample, serving.input_specs, owner=SERVING_DEFAULT)
            except InputError as e:
                raise InputError(f"sample= does not fit serving_default: {e}", key=e.key) from None
        if not self.verify:
            return None
        return generate_sample(
            serving.input_specs, owner=SERVING_DEFAULT,
            known=self.preprocessing.known_raw_values(GENERATED_SAMPLE_ROWS))

    # -- writing ------------------------------------------------------------

    def export(self, export_dir, *, training_info=None, ranking=None):
        """Writes the export to `export_dir`, verifies it and puts it in place.

        Under a multi-worker strategy every worker must call it; only the
        chief's export reaches `export_dir` (see `xai_callback.export.distribute`).

        Args:
            export_dir: destination directory (local path or object-store
                URL), or a `xai_callback.publish.destination.Destination`.
            training_info: optional dict recorded in the provenance file
                (the callback passes the epoch and monitored value).
            ranking: optional `xai_callback.publish.ranking.Ranking`: publish
                only if better, and which versions `keep` keeps.

        Returns:
            An `ExportResult`.

        Raises:
            NotPublished: `ranking.only_if_better` and a better export is in place.
        """
        self.prepare()
        destination = export_dir if isinstance(export_dir, Destination) else Destination(
            export_dir, versioned=self.versioned, overwrite=self.overwrite, keep=self.keep)
        strategy = distribute.strategy_of(self.model)
        if not distribute.is_chief(strategy):
            return self._export_as_worker(destination.path, strategy, training_info)
        # Crash-safe protocol (xai_callback.publish.staging): hidden staging, verify, publish.
        with staging(destination) as staged:
            result = self._write(staged.path, training_info)
            result.path = staged.publish(ranking)
            result.provenance = staged.provenance  # with the file list publish added
        return result

    def _export_as_worker(self, export_dir, strategy, training_info):
        """A non-chief worker's export: same save, throwaway directory.

        Saving distributed variables may run collective ops, so every worker
        must save exactly as the chief does; only the chief's copy is kept.
        """
        path = distribute.worker_export_dir(export_dir, strategy)
        distribute.remove_worker_dir(export_dir, strategy)  # A crashed run's leftovers.
        try:
            result = self._write(path, training_info)
        finally:
            distribute.remove_worker_dir(export_dir, strategy)
        result.path = export_dir  # Where the chief's export is.
        return result

    def _write(self, path, training_info):
        self.converter.sync()  # JAX/PyTorch: the current weights into the TensorFlow copy.
        write_saved_model(path, self.functions, self.model, self.track)
        if self.verify:
            # Metadata is derived from what was actually saved, after reloading.
            # Keep the loaded object alive: its signatures hold only weak
            # references to its variables.
            loaded = distribute.outside_strategy_scope(load_export, path)
            signatures = loaded.signatures
            self._verify(signatures)
            self._probe_after_writing(signatures)
        else:
            signatures = {name: fn.concrete_function() for name, fn in self.functions.items()}
        inputs, outputs = signature_io(signatures[XAI_MODEL])
        metadata, parameters = self.build_spec(inputs, outputs)
        storage.makedirs(join(path, ASSETS_EXTRA))
        storage.write_json(extra_path(path, VERTEX_METADATA_FILE), metadata)
        storage.write_json(extra_path(path, VERTEX_PARAMETERS_FILE), parameters)
        if self.legacy_metadata:
            from xai_callback.spec import to_legacy_metadata

            storage.write_json(join(path, LEGACY_METADATA_FILE), to_legacy_metadata(metadata, parameters))
        if self._sample is not None and self.store_sample:
            storage.write_json(extra_path(path, SAMPLE_FILE), encode_tensor_dict(self._sample))
        if self.preprocessing.plan is not None:
            storage.write_json(extra_path(path, FEATURES_FILE),
                               self.preprocessing.plan.features_description())
        record = build_provenance(
            list(signatures.keys()), XAI_MODEL, output_key=self.output_key, training=training_info,
            tolerances={"rtol": self.rtol, "atol": self.atol} if self.verify else None,
        )
        write_provenance(path, record)
        described = {name: signature_io(fn) for name, fn in signatures.items()}
        return ExportResult(path, described, metadata, parameters, record)

    def _model_sample(self, signatures):
        """A batch of `xai_model` inputs for the gradient probe."""
        inputs = None if self._sample is None else explained_inputs_from_sample(
            signatures, self._sample)
        if inputs is None:
            inputs = generate_sample(signature_io(signatures[XAI_MODEL])[0], owner=XAI_MODEL)
        return inputs

    def _verify(self, signatures):
        check_signature_set(signatures)
        check_reloaded(signatures, self.functions)
        check_preprocess_feeds_model(signatures)
        if self._sample is not None:
            expected = self.functions[SERVING_DEFAULT].call_dict(self._sample)
            check_serving_identity(
                signatures, self._sample, expected=expected, rtol=self.rtol, atol=self.atol
            )
            self.trained_model.check_export(signatures, self._sample)  # whatever functions built it

def export_explainable_model(model, export_dir, **options):
    """Writes an explanation-ready SavedModel of `model` to `export_dir`.

    Signatures: `serving_default`, `xai_model` (the differentiable core) and,
    with `preprocess_fn`, `xai_preprocess`; Vertex AI explanation metadata and
    parameters under `assets.extra/`. The export is reloaded and verified.

    Example:

    ```python
    result = xai_callback.export_explainable_model(model, "exports/churn")
    print(result.describe())
    ```

    Args:
        model: a built Keras model.
        export_dir: destination directory; local path or gfile URL (`gs://`).
        **options: see `ExplainableExporter`.

    Returns:
        An `ExportResult`.
    """
    return ExplainableExporter(model, **options).export(export_dir)
