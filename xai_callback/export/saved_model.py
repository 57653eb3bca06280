"""The SavedModel itself: `tf.saved_model.save` of the signatures and what they use, and
the reloaded signatures checked against the live ones."""

import tensorflow as tf

from xai_callback.errors import ExportVerificationError, SignatureError
from xai_callback.signatures.functions import resources_of
from xai_callback.signatures.specs import describe_spec, same_spec, signature_io


def write_saved_model(path, functions, model, track=()):
    """`tf.saved_model.save` of the signatures and what they use.

    Only signatures are saved (no extra functions on the root), so each is
    traced once, in `prepare()`; Keras' ExportArchive attaches its endpoints
    to the root as well, which makes the save trace them all again.
    """
    # The root lists its variables as Keras' exports do, so
    # `tf.saved_model.load(d).variables` works the same.
    root = tf.__internal__.tracking.AutoTrackable()
    root.variables = _variables_used_by(
        [fn.concrete_function() for fn in functions.values()]
    )
    root.trainable_variables = [v for v in root.variables if v.trainable]
    root.non_trainable_variables = [v for v in root.variables if not v.trainable]
    # Resources (lookup tables) are not variables: save every one reachable
    # from the model, the user's `track` list and Trackable functions.
    owners = [model, *track] + [
        owner for fn in functions.values() for owner in fn.owners] + [
        fn.fn for fn in functions.values()
        if isinstance(fn.fn, tf.__internal__.tracking.Trackable)
        and not isinstance(fn.fn, tf.types.experimental.GenericFunction)
    ]
    root.resources = resources_of(owners)
    signatures = {name: fn.concrete_function() for name, fn in functions.items()}
    try:
        tf.saved_model.save(root, path, signatures=signatures)
    except (AssertionError, ValueError) as e:
        if "untracked" not in str(e).lower():
            raise
        raise SignatureError(
            "A signature uses a resource (e.g. a lookup table) that is not reachable "
            "from the model; pass it with track=[...]. TensorFlow said: "
            f"{e}"
        ) from e


def check_reloaded(signatures, functions):
    """The reloaded signatures are the live ones: names, keys, dtypes and shapes."""
    expected_names = sorted(functions)
    if sorted(signatures) != expected_names:
        raise ExportVerificationError(
            f"The reloaded export has signatures {sorted(signatures)}, expected "
            f"{expected_names}."
        )
    for name, fn in functions.items():
        saved_in, saved_out = signature_io(signatures[name])
        live_in, live_out = signature_io(fn.concrete_function())
        for kind, saved, live in (("input", saved_in, live_in), ("output", saved_out, live_out)):
            if sorted(saved) != sorted(live):
                raise ExportVerificationError(
                    f"Signature '{name}' has {kind} keys {sorted(saved)} after "
                    f"reloading, expected {sorted(live)}.",
                    signature=name,
                )
            for key in saved:
                if not same_spec(saved[key], live[key]):
                    raise ExportVerificationError(
                        f"Signature '{name}' {kind} '{key}' is "
                        f"{describe_spec(saved[key])} after reloading, expected "
                        f"{describe_spec(live[key])}.",
                        signature=name,
                        key=key,
                    )


def _variables_used_by(concrete_functions):
    """The variables the functions capture, each once, ordered by name.

    Capture order depends on the tracing context (e.g. a distribution
    strategy); names do not, so exports of the same model list alike.
    """
    found = {}
    for fn in concrete_functions:
        for variable in fn.variables:
            found.setdefault(id(variable), variable)
    return sorted(found.values(), key=lambda v: v.name)
