"""Import strings ("package.module:attribute") for functions in configs.

Training configs are plain data, so functions appear there as import strings;
they are resolved when training starts, with an error that says what failed.
"""

import importlib


def resolve_import_string(value, argument):
    """The object named by `"package.module:attr.sub"`.

    Raises:
        ValueError: the string is malformed, the module cannot be imported or
            has no such attribute; the message names `argument` and `value`.
    """
    module_name, _, attr_path = value.partition(":")
    if not module_name or not attr_path:
        raise ValueError(
            f"{argument}={value!r} is not an import string; expected "
            "'package.module:function'."
        )
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(
            f"{argument}={value!r}: cannot import module {module_name!r} ({e})."
        ) from e
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"{argument}={value!r}: module {module_name!r} has no attribute "
                f"{attr_path!r}."
            ) from None
    return obj


def to_import_string(fn):
    """`"module:qualname"` for a module-level function or class, else None."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    try:
        if resolve_import_string(f"{module}:{qualname}", "fn") is fn:
            return f"{module}:{qualname}"
    except ValueError:
        return None
    return None


def lazy_exports(package, exports, namespace):
    """`(__getattr__, __dir__)` for a package whose public names load on first use (PEP 562).

    Importing the package stays cheap (no TensorFlow, no server libraries);
    a name's module is imported when the name is first read, and the value
    kept in the package's namespace.

    Example:

    ```python
    __getattr__, __dir__ = lazy_exports(__name__, {"serve": "xai_callback.serve.server"}, globals())
    ```

    Args:
        package: the package's `__name__`.
        exports: `{public name: module that defines it}`.
        namespace: the package's `globals()`.
    """

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(exports[name]), name)
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
