"""Exceptions raised by xai_callback, by kind.

- Usage errors, caused by what the caller passed (arguments, a spec,
  instances, a method the model cannot support): `ValueError`/`TypeError`
  subclasses (`SpecError`, `InputError`, `MethodNotSupportedError`, ...), so
  callers that already catch those keep working. The CLI exits 2 on them and
  `serve` answers 400.
- Failures of a written export (`ExportVerificationError`): the export does
  not keep the contract. `explain` exits 1.
- Internal errors, not caused by the caller: `ExplanationFailedError` when
  TensorFlow fails while an explanation is computed (it carries the cause).
  `explain` exits 3 and `serve` answers 500.
"""

import re


class SignatureError(ValueError):
    """A signature cannot be built or does not fit the explanation contract."""


class ModelConversionError(SignatureError):
    """A Keras model on JAX or PyTorch cannot be turned into a TensorFlow function.

    Raised before training (`prepare()`, the callback's `on_train_begin`).

    Attributes:
        layer: name of the layer that failed, when it could be found (or None).
    """

    def __init__(self, message, layer=None):
        super().__init__(message)
        self.layer = layer


class SpecError(ValueError):
    """An explanation spec (metadata or parameters) breaks a Vertex AI rule."""


class MethodNotSupportedError(SpecError):
    """The chosen attribution method cannot run on the model's inputs or settings,
    or is not computed here (e.g. example-based explanations, or XRAI in `xai_explain`)."""


class InputError(ValueError):
    """Model inputs (instances, a sample) do not fit the signature that takes them.

    Attributes:
        key: the input key that is wrong (or None).
        index: position of the offending instance (or None).
    """

    def __init__(self, message, key=None, index=None):
        super().__init__(message)
        self.key = key
        self.index = index


class DestinationError(ValueError, FileExistsError):
    """`export_dir` cannot receive an export (a file, or a folder not ours).

    Both a `ValueError` (a bad argument) and a `FileExistsError` (what it
    was before).
    """


class ExportVerificationError(RuntimeError):
    """A written export does not keep the contract after reloading.

    Attributes:
        signature: name of the signature that differs (or None).
        key: input or output key that differs (or None).
    """

    def __init__(self, message, signature=None, key=None):
        super().__init__(message)
        self.signature = signature
        self.key = key


class ExportFailedError(RuntimeError):
    """An export at the end of training failed; the weights were kept.

    Attributes:
        fallback_path: where the trained weights were saved instead.
    """

    def __init__(self, message, fallback_path=None):
        super().__init__(message)
        self.fallback_path = fallback_path


class ExplanationFailedError(RuntimeError):
    """An explanation failed for a reason the caller did not cause: an internal error.

    Raised when TensorFlow fails while an explanation is computed from valid
    settings and instances (e.g. a gradient it cannot take through the
    model's graph). Not a `ValueError`: retrying with other arguments does
    not help; report it with the cause.

    Attributes:
        cause: the exception TensorFlow raised (also `__cause__`).
        method: the method that ran, e.g. "integrated-gradients(stepCount=50)".
    """

    def __init__(self, message, cause=None, method=None):
        super().__init__(message)
        self.cause = cause
        self.method = method


# Errors a caller causes: the explainer re-raises these as they are, anything
# else raised while computing an explanation becomes `ExplanationFailedError`.
USAGE_ERRORS = (SpecError, InputError)


def short_message(error):
    """One line saying what went wrong (TensorFlow op errors run to pages).

    For "Graph execution error" the op's own message is picked from below
    the stack of where the op was defined; an `assertion failed: [...]`
    wrapper is dropped, so a message can quote e.g. the lookup's own assertion.
    """
    text = getattr(error, "message", None) or str(error)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    line = lines[0]
    if line.strip() == "in user code:":
        # Autograph's trace of where the error was raised; its last line is the error.
        line = re.sub(r"^\s*[A-Za-z_.]*(Error|Exception): ", "", lines[-1])
    if line.startswith("Graph execution error"):
        noise = ("Detected at node", "<stack traces unavailable>", "[[", "{{")
        own = [candidate.strip() for candidate in lines[1:]
               if not candidate[0].isspace() and not candidate.startswith(noise)]
        if own:
            line = own[-1]
    line = line.strip()
    if line.startswith("assertion failed: [") and line.endswith("]"):
        line = line[len("assertion failed: ["):-1]
    return line
