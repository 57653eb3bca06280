"""Exceptions of local explanations.

Both are `ValueError` subclasses: they report bad arguments (instances or the
chosen method), not a broken export.
"""

from xai_callback.errors import SpecError


class InstanceError(ValueError):
    """Instances do not match the input signature of `serving_default`.

    Attributes:
        key: the input key that is wrong (or None).
        index: position of the offending instance (or None).
    """

    def __init__(self, message, key=None, index=None):
        super().__init__(message)
        self.key = key
        self.index = index


class MethodNotSupportedError(SpecError):
    """The chosen attribution method cannot run on the model's inputs or settings."""
