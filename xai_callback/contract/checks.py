"""Checks of the explanation contract on a set of signatures.

Each check raises `ExportVerificationError` naming the signature, key and
value that differ. The exporter runs them on the reloaded export; `validate`
runs them on any SavedModel, ours or not.
"""

from xai_callback.errors import ExportVerificationError
from xai_callback.names import SERVING_DEFAULT, XAI_MODEL, XAI_PREPROCESS
from xai_callback.signatures.compare import DEFAULT_ATOL, DEFAULT_RTOL, check_close
from xai_callback.signatures.specs import check_specs_match, explained_signature_name, signature_io


def check_signature_set(signatures):
    """The signature set is one the service can use (both rules below)."""
    check_serving_default_present(signatures)
    check_xai_model_present(signatures)


def check_serving_default_present(signatures):
    """`serving_default` exists: serving systems and the service call it."""
    if SERVING_DEFAULT not in signatures:
        raise ExportVerificationError(
            f"The export has no '{SERVING_DEFAULT}' signature (found: "
            f"{sorted(signatures.keys())}). Serving systems and the explanation "
            "service call it by default.",
            signature=SERVING_DEFAULT,
        )


def check_xai_model_present(signatures):
    """With more than one signature, one is named `xai_model`."""
    names = sorted(signatures.keys())
    if len(names) > 1 and XAI_MODEL not in signatures:
        raise ExportVerificationError(
            f"The export has {len(names)} signatures {names} but no '{XAI_MODEL}'. "
            "With more than one signature the explanation service cannot guess "
            f"which to explain: save the differentiable model as '{XAI_MODEL}'.",
            signature=XAI_MODEL,
        )


def check_preprocess_feeds_model(signatures):
    """`xai_preprocess` outputs equal `xai_model` inputs in keys, dtypes, shapes.

    Does nothing when the export has no `xai_preprocess`.
    """
    if XAI_PREPROCESS not in signatures:
        return
    if XAI_MODEL not in signatures:
        raise ExportVerificationError(
            f"The export has '{XAI_PREPROCESS}' but no '{XAI_MODEL}' to feed.",
            signature=XAI_MODEL,
        )
    _, produced = signature_io(signatures[XAI_PREPROCESS])
    expected, _ = signature_io(signatures[XAI_MODEL])
    check_specs_match(produced, expected, XAI_PREPROCESS, XAI_MODEL)


def explained_inputs_from_sample(signatures, sample):
    """The explained signature's inputs for a `serving_default` sample.

    Through `xai_preprocess` when it takes the sample's keys; the sample itself
    when it has the explained signature's keys; else None (e.g. a custom
    `serving_default` whose inputs are neither).
    """
    if XAI_PREPROCESS in signatures:
        if set(signature_io(signatures[XAI_PREPROCESS])[0]) == set(sample):
            return signatures[XAI_PREPROCESS](**sample)
        return None
    inputs, _ = signature_io(signatures[explained_signature_name(signatures)])
    if set(inputs) <= set(sample):
        return {k: sample[k] for k in inputs}
    return None


def check_serving_identity(signatures, sample, expected=None, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
    """On `sample`, `serving_default(x) == xai_model(**xai_preprocess(x))`.

    Compared on the output keys both sides have. Without `xai_preprocess`,
    `xai_model` is called on `x` directly when it takes the same keys (a
    custom `serving_default` with its own inputs cannot be composed).

    Args:
        signatures: mapping of signature name to function (e.g.
            `tf.saved_model.load(d).signatures`).
        sample: dict of `serving_default` inputs (a small batch).
        expected: optional `{output_key: array}` that `serving_default` must
            also equal, e.g. the live model's prediction.
        rtol, atol: float tolerances (`np.isclose` semantics); widened to a
            few epsilons for bfloat16 and float16 outputs.
    """
    served = signatures[SERVING_DEFAULT](**sample)
    for key, value in (expected or {}).items():
        if key not in served:
            raise ExportVerificationError(
                f"Output '{key}' of the live model is missing from "
                f"'{SERVING_DEFAULT}' outputs {sorted(served)}.",
                signature=SERVING_DEFAULT,
                key=key,
            )
        check_close(served[key], value, SERVING_DEFAULT, key, "the live model's prediction", rtol, atol)
    explained = explained_signature_name(signatures)
    if explained == SERVING_DEFAULT:
        return
    model_inputs = explained_inputs_from_sample(signatures, sample)
    if model_inputs is None:
        return  # a custom serving_default with its own inputs: nothing to compose
    composed = signatures[explained](**model_inputs)
    common = sorted(set(served) & set(composed))
    if not common:
        raise ExportVerificationError(
            f"'{SERVING_DEFAULT}' outputs {sorted(served)} share no key with "
            f"'{explained}' outputs {sorted(composed)}.",
            signature=SERVING_DEFAULT,
        )
    for key in common:
        check_close(served[key], composed[key], SERVING_DEFAULT, key,
                     f"the composed {explained}(**{XAI_PREPROCESS}(x))"
                     if XAI_PREPROCESS in signatures else f"{explained}(x)", rtol, atol)
