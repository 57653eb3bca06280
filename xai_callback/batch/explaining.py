"""Explains lists of instances with an export, one result per instance (no Beam here).

The unit of work of `batch-explain`: `ExplainModelHandler` (Beam) calls it on
each batch, and it is usable alone. Two routes compute the same numbers:

- `signature`: the export's `xai_explain` signature (TensorFlow alone, the
  export's stored method and settings), when the export has one;
- `python`: `xai_callback.explain`'s explainer, which takes any method and
  setting (and methods that cannot run in-graph, such as XRAI).

`route="auto"` takes `xai_explain` when the export has it and no method,
setting or granularity other than the stored ones is asked for.

A batch that fails is explained again one instance at a time, so one bad
instance costs only its own result: it becomes an error record
`{"instance", "error": {"status", "message"}}` (Vertex's `PredictionResult`).
"""

import logging
import uuid
import warnings
from collections.abc import Mapping

from xai_callback.errors import ExportVerificationError, InputError, short_message
from xai_callback.explain import load_explainer
from xai_callback.names import XAI_EXPLAIN
from xai_callback.batch.decode import SignatureDecoder
from xai_callback.signatures.inputs import check_keys, column_tensor, is_b64, short

ROUTES = ("auto", "signature", "python")
GRANULARITIES = ("raw", "encoded")
OVERRIDES = ("step_count", "path_count", "noise_sigma", "feature_noise_sigma", "noisy_sample_count",
             "top_k", "output_indices", "output_key", "seed")
LOG = logging.getLogger(__name__)
# Explainers loaded by a launcher, by token: a runner working in the launcher's
# process (the DirectRunner's in-memory mode) reuses it instead of loading the
# export again; other processes do not see it and load their own.
_SHARED = {}


class BatchExplainer:
    """Explanations of instance lists from one export, in `batch-explain`'s output records.

    Example:

    ```python
    explainer = BatchExplainer("exports/churn/3").load()
    for record in explainer.explain([{"Age": 3, "Type": "Cat"}, {"Age": "x"}]):
        print(record)  # {"instance", "prediction", "explanation"} or {"instance", "error"}
    ```

    Args:
        export_dir: the export (local, `gs://`, ...).
        method: attribution method name overriding the export's parameters
            (as `xai_callback.explain` takes it); None: the stored method.
        granularity: "raw" (default) or "encoded", as `explain` takes it.
        route: "auto" (default), "signature" (`xai_explain`, refused when the
            export lacks it or other settings are asked for) or "python".
        exclude_fields: instance keys written back but not sent to the model.
        validate: validate the export when loading (`explain` then raises
            `ExportVerificationError` for an export that is not
            explanation-ready). Workers skip it: the launcher did it.
        max_rows_per_call: rows per model call of the Python explainer.
        **overrides: the settings `explain` takes (`step_count`,
            `path_count`, `top_k`, `output_indices`, ...; see `OVERRIDES`).

    Raises:
        ValueError: an unknown route, granularity or override.
    """

    def __init__(self, export_dir, *, method=None, granularity="raw", route="auto", exclude_fields=(),
                 validate=False, max_rows_per_call=None, **overrides):
        if route not in ROUTES:
            raise ValueError(f"route={route!r} is not a route; use one of {list(ROUTES)}.")
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity={granularity!r} is not a granularity; use one of "
                             f"{list(GRANULARITIES)}.")
        unknown = sorted(set(overrides) - set(OVERRIDES))
        if unknown:
            raise ValueError(f"Unknown explanation settings {unknown}; the settings are {list(OVERRIDES)}.")
        self.export_dir = str(export_dir)
        self.method = method
        self.granularity = granularity
        self.requested_route = route
        self.exclude_fields = tuple(exclude_fields or ())
        self.validate = validate
        self.max_rows_per_call = max_rows_per_call
        self.overrides = {k: v for k, v in overrides.items() if v is not None}
        self.explainer = None
        self.route = None
        self._warned = set()

    @property
    def custom_settings(self):
        """Whether anything other than the export's stored settings is asked for."""
        return self.method is not None or self.granularity != "raw" or bool(self.overrides)

    def load(self):
        """Loads the export and picks the route (idempotent). Returns self.

        Raises:
            ExportVerificationError: with `validate=True`, the export is not
                explanation-ready.
            ValueError: `route="signature"` where `xai_explain` cannot answer.
        """
        if self.explainer is not None:
            return self
        explainer = load_explainer(self.export_dir, validate=self.validate)
        self.signature = explainer.saved_model.signatures.get(XAI_EXPLAIN)
        self.decoder = SignatureDecoder.of(explainer.metadata) if self.signature is not None else None
        why_not = self._why_not_signature()
        if self.requested_route == "signature" and why_not:
            raise ValueError(f"route='signature' cannot be used: {why_not}; use route='auto' or 'python'.")
        self.route = "python" if why_not or self.requested_route == "python" else "signature"
        failures = explainer.validation.failures if explainer.validation is not None else []
        if self.route == "signature" and failures:
            # The Python explainer refuses these itself; xai_explain would run regardless.
            raise ExportVerificationError(
                f"{self.export_dir} is not explanation-ready: "
                + "; ".join(f"{r.rule}: {r.reason}" for r in failures)
                + " (run `xai-callback validate` for the full report).")
        self.explainer = explainer
        return self

    def _why_not_signature(self):
        if self.signature is None:
            return f"the export has no '{XAI_EXPLAIN}' signature"
        if self.custom_settings:
            return (f"'{XAI_EXPLAIN}' computes the export's stored method and settings only "
                    "(no method, setting or granularity may be given)")
        if self.decoder is None:
            return (f"the export's metadata cannot be matched to '{XAI_EXPLAIN}''s outputs (no "
                    "metadata, a displayNameMappingKey, or feature names that collide)")
        return None

    @property
    def instance_specs(self):
        """`{key: tf.TensorSpec}` of the instances (the explainer's instance signature)."""
        return self.load().explainer.instance_specs

    @property
    def instance_signature(self):
        return self.load().explainer.instance_signature

    def explain(self, instances):
        """One record per instance, in order: a result, or an error naming the reason.

        Raises:
            ExportVerificationError: with `validate=True` only, an export that
                is not explanation-ready (every instance would fail).
        """
        self.load()
        instances = list(instances)
        if not instances:
            return []
        try:
            rows = self._explain(instances)
        except ExportVerificationError:
            raise
        except Exception as e:  # noqa: BLE001 - a bad instance must not fail the batch
            if len(instances) == 1:
                return [error_record(instances[0], e)]
            return [record for instance in instances for record in self.explain([instance])]
        return [{"instance": instance, "prediction": prediction, "explanation": explanation}
                for instance, (prediction, explanation) in zip(instances, rows)]

    def explain_strictly(self, instances):
        """`[(prediction, explanation JSON)]`; the first problem is raised, not recorded."""
        self.load()
        return self._explain(list(instances))

    def _explain(self, instances):
        """`[(prediction, explanation JSON)]` of the instances, or an exception."""
        model_instances = [self._model_instance(x) for x in instances]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self.route == "signature":
                rows = self._explain_with_signature(model_instances)
            else:
                response = self.explainer.explain_instances(
                    model_instances, method=self.method, granularity=self.granularity,
                    max_rows_per_call=self.max_rows_per_call, **self.overrides)
                response = response.to_dict()
                rows = list(zip(response["predictions"], response["explanations"]))
        for warning in caught:  # once per message per worker, not once per batch
            message = str(warning.message)
            if message not in self._warned:
                self._warned.add(message)
                LOG.warning("xai-callback batch-explain: %s", message)
        return rows

    def _explain_with_signature(self, instances):
        specs = self.explainer.instance_specs
        owner = self.explainer.instance_signature
        tensors = {key: column_tensor([row[key] for row in instances], spec, key, owner)
                   for key, spec in specs.items()}
        return self.decoder.rows(self.signature(**tensors))

    def _model_instance(self, instance):
        """The instance as `{input key: value}`, without `exclude_fields`."""
        keys = sorted(self.explainer.instance_specs)
        owner = self.explainer.instance_signature
        if isinstance(instance, Mapping) and not is_b64(instance):
            instance = {k: v for k, v in instance.items() if k not in self.exclude_fields}
            check_keys(instance, keys, owner)
            return instance
        if len(keys) != 1:
            raise InputError(
                f"The instance is a bare value ({short(instance)}), but '{owner}' takes "
                f"{len(keys)} inputs {keys}: give each instance as a dict keyed by input name.")
        return {keys[0]: instance}


def share(explainer):
    """Makes a loaded `BatchExplainer` available to this process's workers; returns its token."""
    token = uuid.uuid4().hex
    _SHARED[token] = explainer
    return token


def shared(token):
    """The explainer shared under `token` in this process, or None."""
    return _SHARED.get(token)


def unshare(token):
    _SHARED.pop(token, None)


def error_record(instance, error):
    """`{"instance", "error": {"status", "message"}}` for an instance that failed."""
    status = "INVALID_ARGUMENT" if isinstance(error, (ValueError, TypeError, KeyError)) else "INTERNAL"
    return {"instance": instance,
            "error": {"status": status, "message": f"{type(error).__name__}: {short_message(error)}"}}
