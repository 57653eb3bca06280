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

from xai_callback.errors import MethodNotSupportedError, SpecError
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
    if cls is methods.SampledShapley:
        return cls(**_given(path_count=options.get("path_count", base.get("path_count"))),
                   limits=limits)
    smooth = _smooth_config(base.get("smooth_grad"), options, name)
    blur = options.get("max_blur_sigma", base.get("max_blur_sigma"))
    if name == "smoothgrad" and smooth is None:
        per_feature = (f" or {spelling('feature_noise_sigma')} ({{feature name: sigma}})"
                       if spelling.has("feature_noise_sigma") else "")
        raise SpecError(f"method 'smoothgrad' needs a noise: pass {spelling('noise_sigma')} (one "
                        f"sigma for every feature, e.g. 0.1 for inputs scaled to [0, 1]){per_feature}.")
    if name == "blur-ig" and blur is None:
        raise SpecError(f"method 'blur-ig' needs {spelling('max_blur_sigma')}: the sigma (in "
                        "pixels) of the most blurred image, its baseline, e.g. 10.")
    if chosen and name in ("integrated-gradients", "blur-ig"):
        smooth = None
    if chosen and name in ("integrated-gradients", "smoothgrad"):
        blur = None
    return cls(**_given(step_count=options.get("step_count", base.get("step_count"))),
               smooth_grad=smooth, max_blur_sigma=blur, limits=limits)


def _given(**fields):
    """The fields that are set (a None field keeps the class's default)."""
    return {k: v for k, v in fields.items() if v is not None}


def _smooth_config(stored, options, name):
    """The SmoothGrad config: the stored one with the options on top (None: none)."""
    given = {k: options[k] for k in methods.IntegratedGradients.SMOOTH_OPTIONS if k in options}
    if not given:
        return stored
    config = dict(stored or {})
    # One sigma replaces per-feature sigmas and the other way round.
    if "noise_sigma" in given:
        config["feature_noise_sigma"] = None
    if "feature_noise_sigma" in given:
        config["noise_sigma"] = None
    config.update(given)
    return config if config.get("noise_sigma") or config.get("feature_noise_sigma") else None


def _check_option(option, value, limits, where, spelling):
    """A count or sigma option, refused naming it as the caller wrote it."""
    label = spelling.name(option)
    bounds = {"step_count": "max_step_count", "path_count": "max_path_count",
              "noisy_sample_count": "max_noisy_sample_count"}
    if option in bounds:
        limits.count(where, label, value, bounds[option])
    elif option in ("noise_sigma", "max_blur_sigma"):
        check_number(where, label, value, 0, low_open=True)
