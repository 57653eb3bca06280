"""The contract rules that run explanations, registered into `validate`.

They live here, above the contract, because they need the explainer; the
contract's `register_rule` adds them to every `validate` call.
"""

from xai_callback.contract.validation import (
    RUN_ERRORS,
    RuleResult,
    metadata_blocker,
    read_features,
    register_rule,
    skip,
)
from xai_callback.errors import SpecError, short_message
from xai_callback.explain.signature import compare_with_explainer
from xai_callback.names import SAMPLE_FILE, XAI_EXPLAIN


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


register_rule("explain_signature", explain_signature_rule)
