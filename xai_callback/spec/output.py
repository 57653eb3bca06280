"""`Output`: the explained output (the one entry of Vertex's `metadata.outputs`)."""

import numpy as np

from xai_callback.errors import SpecError
from xai_callback.spec.base import SpecObject
from xai_callback.spec.fields import check_str, describe, spec_error, type_error


class Output(SpecObject):
    """Which output of the explained signature is explained, and its class names.

    Example:
        Output("probabilities", index_display_name_mapping=["cat", "dog", "bird"])

    Args:
        key: output key of the explained signature (`xai_model`); required
            when it has several outputs (default None: the single output).
        name: friendly name, the key in `metadata.outputs` (default None:
            same as `key`).
        index_display_name_mapping: class names, one per index of the output,
            nested as deep as the output's rank per example (default None).
        display_name_mapping_key: instead of a static mapping, the output key
            holding each prediction's display name (default None).
    """

    VERTEX_FIELDS = {
        "key": "outputTensorName",
        "index_display_name_mapping": "indexDisplayNameMapping",
        "display_name_mapping_key": "displayNameMappingKey",
    }

    def __init__(self, key=None, name=None, index_display_name_mapping=None,
                 display_name_mapping_key=None):
        where = "Output"
        self.key = check_str(where, "key", key, optional=True)
        self.name = check_str(where, "name", name, optional=True)
        self.index_display_name_mapping = _check_name_array(
            where, "index_display_name_mapping", index_display_name_mapping)
        self.display_name_mapping_key = check_str(
            where, "display_name_mapping_key", display_name_mapping_key, optional=True)
        if self.index_display_name_mapping is not None and self.display_name_mapping_key:
            raise SpecError(describe(
                where, "display_name_mapping_key", display_name_mapping_key,
                "give either index_display_name_mapping or display_name_mapping_key, not both"))

    def get_config(self):
        return {"key": self.key, "name": self.name,
                "index_display_name_mapping": self.index_display_name_mapping,
                "display_name_mapping_key": self.display_name_mapping_key}

    @classmethod
    def from_vertex(cls, body, where=None, name=None):
        """`Output` from its Vertex JSON; `name` is its key in `metadata.outputs`."""
        return cls(name=name, **cls.vertex_kwargs(body, where or f"metadata output {name!r}"))

    def resolve(self, outputs, output_key=None):
        """A copy with `key` and `name` filled in from the signature's outputs."""
        key = self.key
        if key is not None and output_key is not None and key != output_key:
            raise SpecError(describe("Output", "key", key,
                                     f"conflicts with output_key={output_key!r}; give one of them"))
        key = key or output_key
        if key is None:
            if len(outputs) != 1:
                raise SpecError(describe(
                    "Output", "key", None,
                    f"the explained signature has several outputs {sorted(outputs)}: "
                    "name the one to explain (Vertex explains exactly one)"))
            key = next(iter(outputs))
        config = self.get_config()
        config.update(key=key, name=self.name or key)
        return Output(**config)


def _check_name_array(where, field, value):
    """A rectangular, non-empty (nested) list of strings, as JSON lists."""
    if value is None:
        return None
    valid = "expected a non-empty list of strings (nested like the output's shape)"
    if isinstance(value, str):
        raise type_error(where, field, value, valid)
    # dtype=object keeps ragged nesting as lists, which the leaf check refuses.
    array = np.asarray(value, dtype=object)
    if array.ndim == 0 or array.size == 0 or not all(isinstance(v, str) for v in array.flat):
        raise spec_error(where, field, value, valid)
    return array.tolist()
