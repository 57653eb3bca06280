"""The `xai_explain` signature: the export explains itself, with TensorFlow alone.

`explain_signature_function` builds a signature taking `serving_default`'s
inputs and returning, computed in-graph with the export's method and settings
(integrated gradients, SmoothGrad, or sampled Shapley with seed 0), the same
numbers as `xai_callback.explain` at `granularity="raw"`: both run the graph
code of `explain/units.py` and of the method modules (`explain/methods/`). Any SavedModel host can
then explain: TF Serving (`"signature_name": "xai_explain"`), KServe's or
Triton's TensorFlow runtimes, Beam `RunInference`, `saved_model_cli run`.

Outputs (a flat dict; K = explained outputs per instance: `topK`, or the
number of `outputIndices`):

| key | shape, dtype |
|---|---|
| `attribution_<feature>` | `[batch, K, *reported shape]` float64, one per reported feature (raw granularity) |
| `tokens_<feature>` | `[batch, positions]` string, for token features with a vocabulary |
| `baseline_output`, `instance_output`, `approximation_error` | `[batch, K]` float64 |
| `output_index` | `[batch, K, rank of the output]` int64 |
| `output_display_name` | `[batch, K]` string, with `indexDisplayNameMapping` |
| `prediction_<serving output>` | `serving_default`'s outputs |

`<feature>` is the metadata's name with characters other than letters,
digits and `_` replaced by `_`. Signature inputs cannot have defaults (TF
Serving refuses a request that leaves one out), so per-request settings are
not inputs: the stored settings are used; `xai_callback.explain` takes any.
"""

import re
import warnings

import numpy as np
import tensorflow as tf

from xai_callback.errors import SpecError
from xai_callback.explain import engine
from xai_callback.explain.explainer import Explainer, check_output, check_output_indices, feature_baselines
from xai_callback.explain.granularity import FeatureLayout
from xai_callback.explain.methods import algorithm_for
from xai_callback.explain.methods.algorithm import default_rows_per_call
from xai_callback.explain.settings import settings_from_vertex
from xai_callback.explain.units import explain_units, units_per_instance
from xai_callback.spec.methods import check_in_graph
from xai_callback.names import XAI_EXPLAIN, XAI_PREPROCESS
from xai_callback.signatures.functions import SignatureFunction
from xai_callback.signatures.specs import explained_signature_name

# The seed of the random numbers a method draws (Shapley orders, SmoothGrad noise).
SIGNATURE_SEED = 0


def explain_signature_function(serving, model_fn, metadata, parameters, preprocess=None,
                               xai_features=None, serving_is_model=True, rows_per_call=None,
                               baseline_rows=None):
    """The `xai_explain` signature of an export, as a `SignatureFunction`.

    Example:

    ```python
    fn = explain_signature_function(serving, model_fn, metadata, parameters, preprocess)
    tf.saved_model.save(root, path, signatures={..., "xai_explain": fn.concrete_function()})
    ```

    Args:
        serving: the `serving_default` `SignatureFunction` (its inputs are
            this signature's).
        model_fn: the `xai_model` `SignatureFunction`.
        metadata, parameters: the export's Vertex JSON dicts.
        preprocess: the `xai_preprocess` `SignatureFunction`, or None.
        xai_features: the content of `xai_features.json`, or None.
        serving_is_model: whether `serving_default` is `xai_model` (after
            `xai_preprocess`); then its predictions are taken from the
            explained pass instead of running it again. Defaults to True.
        rows_per_call: model rows per chunk; None: as `xai_callback.explain`.
        baseline_rows: `{input key: function returning a tensor}` of the
            baselines read from the model's variables when the signature runs
            (trained embedding rows, which `metadata` holds as they were when
            it was built); each replaces that input's one metadata baseline.

    Raises:
        SpecError: the settings cannot be explained in-graph
            (`MethodNotSupportedError` for XRAI, blurred baselines).
    """
    settings = settings_from_vertex(metadata, parameters)
    check_in_graph(settings.method)
    algorithm = algorithm_for(settings.method)
    layout = FeatureLayout(settings.features, "raw", xai_features)
    inputs = dict(model_fn.input_specs)
    outputs = model_fn.output_specs()
    output_key = check_output(settings.output, outputs)
    output_shape = outputs[output_key].shape[1:]
    if not output_shape.is_fully_defined():
        raise SpecError(
            f"{XAI_EXPLAIN} needs the explained output '{output_key}' to have a known shape per "
            f"instance; it is {output_shape.as_list()}.")
    check_output_indices(settings.output_indices, output_shape.as_list(), output_key)
    baselines, feature_names = feature_baselines(settings.features, inputs)
    rows_per_call = rows_per_call or default_rows_per_call(inputs)
    keys = _output_keys([r.name for r in layout.reported])
    units = units_per_instance(output_shape, settings.top_k, settings.output_indices)
    names = None
    if settings.output.index_display_name_mapping is not None:
        names = np.vectorize(lambda n: str(n).encode("utf-8"), otypes=[object])(
            np.asarray(settings.output.index_display_name_mapping, object))

    def read_rows():
        return {key: tf.broadcast_to(tf.cast(row(), baselines[key].dtype), baselines[key].shape)
                for key, row in (baseline_rows or {}).items()}

    def run(problem, method, **report):
        return engine.run_in_graph(problem, method, rows_per_call, **report)

    def explain(**raw):
        model_inputs = preprocess.call_dict(raw) if preprocess is not None else dict(raw)
        model_outputs = model_fn.call_dict(model_inputs)
        output = model_outputs[output_key]
        unit_instance, unit_index, result, reported = explain_units(
            run, algorithm, layout, lambda **kw: model_fn.call_dict(kw), output_key,
            model_inputs, output, {**baselines, **read_rows()}, feature_names, top_k=settings.top_k,
            output_indices=settings.output_indices, seed=SIGNATURE_SEED)
        per_instance = _per_instance(units)
        out = {f"attribution_{keys[name]}": per_instance(value) for name, value in reported.items()}
        out.update({f"tokens_{keys[name]}": value for name, value in layout.tokens(model_inputs).items()})
        coordinates = tf.concat([unit_instance[:, None], unit_index], axis=1)
        out["instance_output"] = per_instance(tf.cast(tf.gather_nd(output, coordinates), tf.float64))
        out["baseline_output"] = per_instance(result["baseline_output"])
        out["approximation_error"] = per_instance(result["approximation_error"])
        out["output_index"] = per_instance(unit_index)
        if names is not None:
            out["output_display_name"] = per_instance(tf.gather_nd(tf.constant(names), unit_index))
        predictions = model_outputs if serving_is_model else serving.call_dict(raw)
        out.update({f"prediction_{key}": value for key, value in predictions.items()})
        return out

    return SignatureFunction(explain, dict(serving.input_specs), name=XAI_EXPLAIN)


def signature_outputs(response):
    """An `ExplainResponse` (granularity "raw") laid out as `xai_explain`'s outputs (numpy).

    Example:

    ```python
    expected = signature_outputs(xai_callback.explain.explain(export_dir, instances))
    np.testing.assert_allclose(loaded.signatures["xai_explain"](**inputs)["attribution_Type"],
                               expected["attribution_Type"], rtol=1e-5)
    ```
    """
    per_instance = [e.attributions for e in response.explanations]
    keys = _output_keys(list(per_instance[0][0].feature_attributions))
    out = {f"attribution_{keys[name]}": np.array([[a.feature_attributions[name] for a in units]
                                                  for units in per_instance], np.float64)
           for name in keys}
    for field, key in (("baseline_output_value", "baseline_output"),
                       ("instance_output_value", "instance_output"),
                       ("approximation_error", "approximation_error")):
        out[key] = np.array([[getattr(a, field) for a in units] for units in per_instance], np.float64)
    out["output_index"] = np.array([[a.output_index for a in units] for units in per_instance],
                                   np.int64).reshape(len(per_instance), len(per_instance[0]), -1)
    for name in response.explanations[0].tokens:
        out[f"tokens_{keys[name]}"] = np.array([e.tokens[name] for e in response.explanations], object)
    return out


APPROXIMATION_ERROR_ATOL = 1e-4


def compare_with_explainer(signatures, metadata, parameters, sample, xai_features=None, rtol=1e-5):
    """Runs `xai_explain` and the Python explainer on `sample`; their largest relative difference.

    Args:
        signatures: the loaded export's signatures (with `xai_explain`).
        metadata, parameters: the export's Vertex JSON dicts.
        sample: `{serving_default input: batch}`.
        xai_features: the content of `xai_features.json`, or None.
        rtol: the relative tolerance (with an absolute one of `rtol` times
            the largest output, for attributions near 0).

    Raises:
        SpecError: naming the output and instance that differ beyond `rtol`.
    """
    explainer = Explainer(signatures[explained_signature_name(signatures)],
                          metadata, parameters, preprocess_fn=signatures.get(XAI_PREPROCESS),
                          xai_features=xai_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the explainer's own quality warnings
        expected = signature_outputs(explainer.explain(sample, seed=SIGNATURE_SEED))
    got = {key: value.numpy() for key, value in signatures[XAI_EXPLAIN](**sample).items()}
    missing = sorted(set(expected) - set(got))
    if missing:
        raise SpecError(f"'{XAI_EXPLAIN}' lacks outputs {missing} that the explainer gives "
                        f"(it has {sorted(got)}).")
    scale = float(np.max(np.abs(expected["instance_output"]))) + float(
        np.max(np.abs(expected["baseline_output"])))
    worst = 0.0
    for key, want in expected.items():
        if want.dtype == object:
            if got[key].astype(object).astype(bytes).tolist() != want.astype(bytes).tolist():
                raise SpecError(f"'{XAI_EXPLAIN}' output {key!r} differs from the explainer's.")
            continue
        value = np.asarray(got[key], np.float64)
        # approximationError is itself a ratio of small differences: near 0 it carries float32
        # noise of ~1e-5 (gap / |f(x) - f(baseline)|); 1e-4 of it is far below the 0.05 that matters.
        atol = APPROXIMATION_ERROR_ATOL if key == "approximation_error" else rtol * scale
        both_nan = np.isnan(value) & np.isnan(want)
        off = np.where(both_nan, 0.0, np.abs(value - want) - atol - rtol * np.abs(want))
        if value.shape != want.shape or np.any(off > 0) or np.any(np.isnan(off)):
            where = np.unravel_index(int(np.nanargmax(off)), off.shape) if value.shape == want.shape else ()
            raise SpecError(
                f"'{XAI_EXPLAIN}' output {key!r} differs from the Python explainer's beyond "
                f"rtol {rtol}: {np.ravel(value)[:4].tolist()} vs {np.ravel(want)[:4].tolist()}"
                f" (first difference at index {list(where)}); re-export the model.")
        differences = np.abs(value - want)[~both_nan]
        worst = max(worst, float(np.max(differences / (np.abs(want[~both_nan]) + atol), initial=0.0)))
    return worst


def _per_instance(units):
    """`[units, ...]` -> `[instances, units per instance, ...]` (units are ordered by instance)."""

    def reshape(value):
        value = tf.convert_to_tensor(value)
        rest = value.shape[1:]
        if rest.is_fully_defined():
            return tf.reshape(value, [-1, units, *rest.as_list()])
        return tf.reshape(value, tf.concat(
            [tf.constant([-1, units], tf.int64), tf.shape(value, out_type=tf.int64)[1:]], 0))

    return reshape


def _output_keys(names):
    """`{feature name: key suffix}`: letters, digits and `_`, unique."""
    keys = {}
    for name in names:
        key = re.sub(r"[^A-Za-z0-9_]", "_", name)
        while key in keys.values():
            key += "_"
        keys[name] = key
    return keys
