"""Exceptions of local explanations (defined in `xai_callback.errors`, by kind).

`InstanceError`, `MethodNotSupportedError` and `BaselineError` report bad
arguments (instances, the chosen method, a baseline): `ValueError`s.
`ExplanationFailedError` is an internal error (TensorFlow failed while
computing), not a `ValueError`.
"""

from xai_callback.errors import ExplanationFailedError, InputError, MethodNotSupportedError, SpecError

# Instances that do not match the input signature of `serving_default` (the
# name explanations have always raised; the same class as `InputError`).
InstanceError = InputError

__all__ = ["BaselineError", "ExplanationFailedError", "InstanceError", "MethodNotSupportedError"]


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
