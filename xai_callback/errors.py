"""Exceptions raised by xai_callback.

Configuration mistakes are `ValueError`/`TypeError` subclasses so callers that
already catch those keep working; failures of a written export are their own
types so they can be told apart from bad arguments.
"""


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
