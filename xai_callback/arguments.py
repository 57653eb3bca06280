"""Type checks of constructor arguments: a value is what its name says.

Configs written as YAML, JSON or command lines often carry `"false"` where a
boolean is meant; Python would take any non-empty string as true (and, for
`overwrite`, replace a folder the user meant to keep). Every boolean, choice
and number of the callback and the engine goes through these checks at
construction, also when it comes from `from_config`, Keras'
`deserialize_keras_object` or Hydra's `instantiate` (all call `__init__`).
Each message names the argument, the value received and what is valid.
"""

import math
import numbers

import numpy as np


def _received(name, value):
    return f"received {name}={value!r} of type {type(value).__name__}"


def check_bool(name, value):
    """`value` as a Python bool; only True/False (numpy bools too) pass.

    Raises:
        TypeError: anything else, including the strings "true"/"false" and
            the ints 0/1 (a config that writes them means something else).
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    hint = ""
    if isinstance(value, str) and value.strip().lower() in (
            "true", "false", "yes", "no", "on", "off", "0", "1", "y", "n"):
        hint = (" A string is not a boolean (any non-empty string would count as true); "
                "write true/false unquoted in YAML, or True/False in Python.")
    raise TypeError(f"{name} must be True or False; {_received(name, value)}.{hint}")


def check_choice(name, value, choices, optional=False):
    """`value` if it is one of `choices` (strings, compared exactly)."""
    if value is None and optional:
        return None
    if isinstance(value, str) and value in choices:
        return value
    allowed = list(choices) + ([None] if optional else [])
    error = TypeError if not isinstance(value, str) else ValueError
    raise error(f"{name} must be one of {allowed}; {_received(name, value)}.")


def check_number(name, value, *, minimum=None, optional=False):
    """`value` as a float: a finite real number (not a bool, not a string), >= minimum."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; {_received(name, value)}.")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} must be a finite number; received {name}={value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be a number >= {minimum}; received {name}={value!r}.")
    return value


def check_int(name, value, *, minimum=None, optional=False, allowed=None):
    """`value` as an int (numpy ints too; not a bool, float or string), >= minimum.

    `allowed` restricts to an explicit set (e.g. verbose 0, 1, 2).
    """
    if value is None and optional:
        return None
    valid = (f"one of {sorted(allowed)}" if allowed is not None
             else "an integer" + (f" >= {minimum}" if minimum is not None else ""))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {valid}{' or None' if optional else ''}; "
                        f"{_received(name, value)}.")
    value = int(value)
    if (allowed is not None and value not in allowed) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be {valid}{' or None' if optional else ''}; "
                         f"received {name}={value!r}.")
    return value


def check_str(name, value, *, optional=False):
    """A non-empty string (or None when `optional`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a non-empty string{' or None' if optional else ''}; "
                        f"{_received(name, value)}.")
    if not value:
        raise ValueError(f"{name} must be a non-empty string; received {name}=''.")
    return value
