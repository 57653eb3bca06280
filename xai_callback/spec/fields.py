"""Field checks shared by every spec object.

Each check raises with one message shape -- where, which field, the value
received and what is valid -- so every rule violation reads the same way,
whether it is caught at declaration time or by `validate` on a stored file.
"""

import numbers

from xai_callback.errors import SpecError


class Shown(str):
    """Text shown as is in a message instead of a value's repr (e.g. a shape)."""

    def __repr__(self):
        return str(self)


def describe(where, field, value, valid):
    return f"{where}: `{field}` got {value!r}; {valid}."


def spec_error(where, field, value, valid):
    return SpecError(describe(where, field, value, valid))


def type_error(where, field, value, valid):
    return TypeError(describe(where, field, value, valid))


def check_str(where, field, value, optional=False):
    """A non-empty string (or None when `optional`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise type_error(where, field, value, "expected a non-empty string")
    if not value:
        raise spec_error(where, field, value, "expected a non-empty string")
    return value


def check_int(where, field, value, low, high=None, optional=False, extra=()):
    """An int in [low, high] (or one of `extra`, e.g. -1 meaning "all")."""
    if value is None and optional:
        return None
    valid = f"expected an integer from {low} to {high}" if high is not None else (
        f"expected an integer >= {low}")
    if extra:
        valid += " or " + " or ".join(str(e) for e in extra)
    # bool is an int subclass; True as a step count is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise type_error(where, field, value, valid)
    if value in extra:
        return int(value)
    if value < low or (high is not None and value > high):
        raise spec_error(where, field, value, valid)
    return int(value)


def check_number(where, field, value, low=None, high=None, low_open=False, optional=False):
    """A real number, optionally bounded (`low_open`: strictly greater than low)."""
    if value is None and optional:
        return None
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"<= {high}")
    valid = "expected a number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise type_error(where, field, value, valid)
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        raise spec_error(where, field, value, valid)
    return float(value)


def check_choice(where, field, value, choices, optional=False):
    """One of `choices`, matched case-insensitively, returned as spelled there."""
    if value is None and optional:
        return None
    valid = f"expected one of {list(choices)}"
    if not isinstance(value, str):
        raise type_error(where, field, value, valid)
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise spec_error(where, field, value, valid)


def check_str_list(where, field, value, optional=False):
    """A non-empty list of strings (tuples accepted, returned as a list)."""
    if value is None and optional:
        return None
    valid = "expected a non-empty list of strings"
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise type_error(where, field, value, valid)
    if not value or not all(isinstance(v, str) for v in value):
        raise spec_error(where, field, value, valid)
    return list(value)


def check_known_keys(where, config, known):
    """Refuses keys a config dict should not have (typos would be ignored)."""
    if not isinstance(config, dict):
        raise type_error(where, "config", config, "expected a dict")
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise spec_error(where, "config", unknown, f"unknown keys; valid keys are {sorted(known)}")
