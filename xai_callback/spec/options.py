"""The options of an explanation and how each caller spells them in messages.

One option has three spellings: a Python keyword (`step_count=100`), a command
line flag (`--steps 100`) and a field of a JSON request (`"stepCount": 100`).
A message about an option names it the way the caller wrote it, so the
command line never tells its user to pass `method=`.

Example:

```python
CLI_SPELLING("method", "sampled-shapley")   # "--method sampled-shapley"
PYTHON_SPELLING("step_count")               # "step_count="
```
"""

from xai_callback.errors import MethodNotSupportedError
from xai_callback.spec import methods
from xai_callback.spec.fields import check_number
from xai_callback.spec.limits import LOCAL_LIMITS

# Python keyword -> (field of a JSON request, command line flag or None).
OPTIONS = {
    "method": ("method", "--method"),
    "step_count": ("stepCount", "--steps"),
    "path_count": ("pathCount", "--paths"),
    "noise_sigma": ("noiseSigma", "--noise-sigma"),
    "feature_noise_sigma": ("featureNoiseSigma", None),
    "noisy_sample_count": ("noisySampleCount", "--noisy-sample-count"),
    "max_blur_sigma": ("maxBlurSigma", "--max-blur-sigma"),
    "top_k": ("topK", "--top-k"),
    "output_indices": ("outputIndices", None),
    "output_key": ("outputKey", None),
    "granularity": ("granularity", "--granularity"),
    "max_rows_per_call": ("maxRowsPerCall", "--max-rows-per-call"),
    "validate": ("validate", None),
}
_UNSET = object()


class Spelling:
    """How options are written in messages to one kind of caller.

    Args:
        style: "python" (`step_count=100`), "cli" (`--steps 100`) or
            "request" (`"stepCount": 100`).
    """

    STYLES = ("python", "cli", "request")

    def __init__(self, style):
        if style not in self.STYLES:
            raise ValueError(f"Spelling style must be one of {list(self.STYLES)}; received {style!r}.")
        self.style = style

    def __call__(self, option, value=_UNSET):
        """How this caller passes `option` (a Python keyword), with `value` when given:
        `step_count=`, `--steps 100`, `"stepCount": 100`."""
        field, flag = OPTIONS.get(option, (option, None))
        if self.style == "cli" and flag is not None:
            return flag if value is _UNSET else f"{flag} {value}"
        if self.style == "request":
            return f'"{field}"' if value is _UNSET else f'"{field}": {_json(value)}'
        return f"{option}=" if value is _UNSET else f"{option}={value!r}"

    def has(self, option):
        """Whether this caller can set `option` (the command line has no flag for some)."""
        return self.style != "cli" or OPTIONS.get(option, (None, None))[1] is not None

    def name(self, option):
        """The bare name of `option` for this caller: `step_count`, `--steps`, `stepCount`."""
        field, flag = OPTIONS.get(option, (option, None))
        if self.style == "cli" and flag is not None:
            return flag
        return field if self.style == "request" else option

    def __repr__(self):
        return f"Spelling({self.style!r})"


def _json(value):
    return f'"{value}"' if isinstance(value, str) else repr(value)


PYTHON_SPELLING = Spelling("python")
CLI_SPELLING = Spelling("cli")
REQUEST_SPELLING = Spelling("request")


# -- the method an explanation runs -------------------------------------------

def method_with_options(stored, name=None, options=None, limits=LOCAL_LIMITS,
                        spelling=PYTHON_SPELLING):
    """The method an explanation runs: `stored`, or the method called `name`, with `options`.

    Example:

    ```python
    method_with_options(IntegratedGradients(), "smoothgrad", {"noise_sigma": 0.1})
    # IntegratedGradients(step_count=50, smooth_grad=SmoothGrad(noise_sigma=0.1, ...))
    ```

    Args:
        stored: the export's `AttributionMethod` (from its parameters).
        name: a name of `spec.methods.METHOD_NAMES` (or an alias) replacing
            the stored method; its fields are the stored method's when it is
            the same kind (default None: the stored method).
        options: `{Python option: value}` setting the method's fields
            (`step_count`, `path_count`, `noise_sigma`, `feature_noise_sigma`,
            `noisy_sample_count`, `max_blur_sigma`); None values are ignored.
        limits: the `Limits` the counts must keep (default: local, no cap).
        spelling: how messages name the options (`Spelling`).

    Raises:
        MethodNotSupportedError: an unknown name, or a stored method that is
            not computed locally (example-based explanations).
        TypeError: an option the method does not take.
        SpecError: a value out of range, or a variant missing its setting
            (smoothgrad without a noise, blur-ig without `max_blur_sigma`).
    """
    options = {k: v for k, v in (options or {}).items() if v is not None}
    chosen = name is not None  # a chosen name drops the sub-configs it does not have
    if name is None:
        if not stored.LOCAL:
            raise MethodNotSupportedError(
                f"The parameters ask for {stored.VERTEX_KEY!r} ({type(stored).__name__}), which "
                f"is not computed locally; pass {spelling('method')} one of "
                f"{list(methods.METHOD_NAMES)} for attributions instead.")
        name, cls = stored.name, type(stored)
    else:
        name = methods.method_name(name, spelling)
        cls = methods.METHOD_NAMES[name]
    allowed = cls.NAMES[name]
    for option, value in options.items():
        if option not in allowed:
            raise TypeError(f"Option {spelling(option, value)} does not apply to method "
                            f"'{name}' (it takes {[spelling.name(o) for o in allowed]}).")
        _check_option(option, value, limits, f"method '{name}'", spelling)
    base = stored.get_config() if type(stored) is cls else {}
    return cls.with_options(base, options, name, chosen, limits, spelling)


def _check_option(option, value, limits, where, spelling):
    """A count or sigma option, refused naming it as the caller wrote it."""
    label = spelling.name(option)
    bounds = {"step_count": "max_step_count", "path_count": "max_path_count",
              "noisy_sample_count": "max_noisy_sample_count"}
    if option in bounds:
        limits.count(where, label, value, bounds[option])
    elif option in ("noise_sigma", "max_blur_sigma"):
        check_number(where, label, value, 0, low_open=True)
