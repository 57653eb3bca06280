"""Reading Vertex ExplanationParameters JSON: one method, topK, outputIndices."""

import numpy as np

from xai_callback.spec.fields import check_int, check_known_keys, spec_error, type_error
from xai_callback.spec.methods import BY_VERTEX_KEY, method_keys

TOP_K = "topK"
OUTPUT_INDICES = "outputIndices"
PARAMETER_KEYS = (*BY_VERTEX_KEY, TOP_K, OUTPUT_INDICES)


def check_parameter_fields(parameters):
    """Checks field names and ranges of every method present, topK, outputIndices."""
    check_known_keys("parameters", parameters, PARAMETER_KEYS)
    for key in method_keys(parameters):
        BY_VERTEX_KEY[key].from_vertex(parameters[key], where=key)
    check_top_k("parameters", TOP_K, parameters.get(TOP_K))
    check_output_indices("parameters", OUTPUT_INDICES, parameters.get(OUTPUT_INDICES))


def check_top_k(where, field, value):
    """How many top outputs to explain: >= 1, or -1 for all (None: service default 1)."""
    return check_int(where, field, value, 1, extra=(-1,), optional=True)


def check_output_indices(where, field, value):
    """Output indices to explain: a list of ints, or of index lists for
    outputs of rank > 1 per example (None: the argmax)."""
    if value is None:
        return None
    valid = "expected a non-empty list of non-negative integers (or of index lists)"
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise type_error(where, field, value, valid)
    array = np.asarray(value, dtype=object)
    leaves = list(array.flat)
    if (array.size == 0 or array.ndim > 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
                       for v in leaves)):
        raise spec_error(where, field, value, valid)
    return np.asarray(value, dtype=np.int64).tolist()
