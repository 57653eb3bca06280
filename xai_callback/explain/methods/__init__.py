"""The attribution algorithms: one module per method, found here by name.

Each module of this package defines one `AttributionAlgorithm` subclass bound
to its settings class of `xai_callback.spec.methods` (which is also the
registry the command line reads without TensorFlow). Adding a method is its
settings class there, one module here, its test and `docs/methods.md`:
every module of this package is imported when the first algorithm is asked
for, so nothing else lists it.
"""

import importlib
import pkgutil

from xai_callback.errors import MethodNotSupportedError
from xai_callback.explain.methods.algorithm import AttributionAlgorithm, registered
from xai_callback.spec import methods as spec_methods
from xai_callback.spec.options import PYTHON_SPELLING

__all__ = ["AttributionAlgorithm", "algorithm_for", "algorithms"]

_LOADED = []


def algorithms():
    """`{method name: AttributionAlgorithm subclass}` of every module of this package."""
    if not _LOADED:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _LOADED.append(True)
    return registered()


def algorithm_for(method, spelling=PYTHON_SPELLING):
    """The algorithm computing `method` (a `spec.methods.AttributionMethod`).

    Raises:
        MethodNotSupportedError: no algorithm computes these settings here.
    """
    found = algorithms().get(method.name)
    if found is None or not isinstance(method, found.SPEC):
        raise MethodNotSupportedError(
            f"{method.VERTEX_KEY} with these settings ({method!r}) is not computed locally; "
            f"pass {spelling('method')} one of {list(spec_methods.METHOD_NAMES)}.")
    return found(method, spelling)
