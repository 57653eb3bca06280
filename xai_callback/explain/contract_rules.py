"""The contract rules that run explanations, registered into `validate`.

They live here, above the contract, because they need the explainer; the
contract's `register_rule` adds them to every `validate` call.
"""

from xai_callback.contract.validation import (
    RUN_ERRORS,
    RuleResult,
    explained_batch,
    metadata_blocker,
    read_features,
    register_rule,
    skip,
)
from xai_callback.errors import MethodNotSupportedError, SpecError, short_message
from xai_callback.explain.images import saliency_core
from xai_callback.explain.methods import algorithm_for
from xai_callback.explain.rehearsal import RehearsalError, rehearse_signatures
from xai_callback.explain.signature import compare_with_explainer
from xai_callback.names import SAMPLE_FILE, XAI_EXPLAIN
from xai_callback.spec.limits import LOCAL_LIMITS
from xai_callback.spec.methods import method_from_parameters

# What the explanation needs to have passed before it is run.
_EXPLANATION_NEEDS = ("metadata_names", "one_method", "baselines", "differentiability",
                      "baselines_run", "routes")


def explanations_rule(export, done):
    """The stored method explains the first sample rows through `explain`'s engine, and
    the attributions add up (`xai_callback.explain.rehearsal`)."""
    rule = "explanations"
    blocker = metadata_blocker(export, done)
    if blocker or not all(done[r].passed for r in _EXPLANATION_NEEDS):
        return skip(rule, blocker or "the rules above fail")
    if not any(key.endswith("Attribution") for key in export.parameters) and (
            "examples" in export.parameters):
        return skip(rule, "example-based explanations come from a Vertex index, not the model")
    if export.sample is not None:
        sample, source = export.sample, export.sample_source
    else:
        try:
            sample, source = explained_batch(export)
        except (ValueError, *RUN_ERRORS) as e:
            return skip(rule, f"no batch to explain ({short_message(e)})")
    try:
        done_ = rehearse_signatures(export.signatures, export.metadata, export.parameters, sample,
                                    read_features(export), explained=export.explained)
    except RehearsalError as e:
        return RuleResult(rule, False, str(e))
    if done_ is None:
        return skip(rule, f"{source} fits neither '{export.explained}' nor xai_preprocess")
    reason = done_.describe(source)
    if done_.warning:
        return RuleResult(rule, True, f"{reason}; WARNING: {done_.warning}", warning=True)
    return RuleResult(rule, True, reason)


def explain_signature_rule(export, done):
    """`xai_explain`, when present, gives what the Python explainer gives on the sample."""
    rule = "explain_signature"
    if XAI_EXPLAIN not in export.signatures:
        return RuleResult(rule, True, f"no '{XAI_EXPLAIN}' signature: nothing to compare")
    if export.sample is None:
        return skip(rule, f"no sample stored (assets.extra/{SAMPLE_FILE}) or given")
    blocker = metadata_blocker(export, done)
    if blocker or not all(done[r].passed for r in ("serving_identity", "metadata_names",
                                                    "one_method", "baselines_run")):
        return skip(rule, blocker or "the rules above fail")
    try:
        worst = compare_with_explainer(export.signatures, export.metadata, export.parameters,
                                       export.sample, read_features(export))
    except SpecError as e:
        return RuleResult(rule, False, str(e))
    except RUN_ERRORS as e:
        return RuleResult(rule, False, f"running '{XAI_EXPLAIN}' on {export.sample_source} failed "
                                       f"({type(e).__name__}: {short_message(e)})")
    return RuleResult(rule, True, f"'{XAI_EXPLAIN}' equals the Python explainer on "
                                  f"{export.sample_source} (largest relative difference {worst:.1e})")


def routes_rule(export, done):
    """Which routes compute the export's method: the Python explainer (`explain`,
    `serve`, batch) and `xai_explain`; fails when `explain` here could not."""
    rule = "routes"
    if export.parameters is None or not done["one_method"].passed:
        return skip(rule, "the method is wrong (see above)")
    try:
        method = method_from_parameters(export.parameters, limits=LOCAL_LIMITS)
    except (SpecError, TypeError) as e:
        return skip(rule, f"the method's settings are wrong ({e})")
    if not method.LOCAL:
        return RuleResult(rule, True, f"{method.VERTEX_KEY} is computed by Vertex AI only: "
                                      "`explain`, `serve` and `xai_explain` compute attributions "
                                      "with another method passed to them", warning=True)
    try:
        algorithm_for(method)
        if method.EXTRA:
            saliency_core(f"{method.VERTEX_KEY} ({method.name})")
    except MethodNotSupportedError as e:
        return RuleResult(rule, False, f"`explain` and `serve` here cannot compute the export's "
                                       f"method: {e}")
    reason = f"{method.name}: computed by the Python explainer (`explain`, `serve`, batch)"
    problem = method.in_graph_problem()
    if problem is not None:
        reason += f"; not by `xai_explain`: {problem}"
    elif XAI_EXPLAIN in export.signatures:
        reason += f" and by the export's '{XAI_EXPLAIN}' signature"
    return RuleResult(rule, True, reason)


register_rule("routes", routes_rule)
register_rule("explanations", explanations_rule)
register_rule("explain_signature", explain_signature_rule)
