"""Exceptions of local explanations.

All are `ValueError` subclasses: they report bad arguments (instances, the
chosen method, a baseline), not a broken export.
"""

from xai_callback.errors import InputError, SpecError

# Instances that do not match the input signature of `serving_default` (the
# name explanations have always raised; the same class as `InputError`).
InstanceError = InputError


class MethodNotSupportedError(SpecError):
    """The chosen attribution method cannot run on the model's inputs or settings."""


class BaselineError(SpecError):
    """A feature's baseline cannot be processed by the model (e.g. `""` on a lookup
    without OOV index).

    Attributes:
        feature: the metadata feature name.
        baseline: the baseline value, as JSON.
    """

    def __init__(self, message, feature=None, baseline=None):
        super().__init__(message)
        self.feature = feature
        self.baseline = baseline
