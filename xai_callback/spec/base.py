"""`SpecObject`: config round trip, Vertex JSON mapping, equality, coercion."""

import inspect

from xai_callback.spec.fields import check_known_keys, type_error


class SpecObject:
    """Base of the spec objects: plain-dict configs, like Keras layers.

    Subclasses validate in `__init__`, which also accepts nested objects as
    dicts, so `from_config` is simply `cls(**config)` after refusing unknown
    keys. `VERTEX_FIELDS` maps each argument (snake_case) to its Vertex JSON
    field (camelCase); objects whose fields map one to one inherit
    `get_config`, `to_vertex` and `from_vertex` from here.
    """

    VERTEX_FIELDS = {}

    def get_config(self):
        config = {}
        for attr in self.VERTEX_FIELDS:
            value = getattr(self, attr)
            config[attr] = value.get_config() if isinstance(value, SpecObject) else value
        return config

    @classmethod
    def from_config(cls, config, limits=None):
        """`cls(**config)`, refusing unknown keys; `limits` (a `Limits`) goes to
        objects whose counts have limits (it is not part of a config)."""
        params = inspect.signature(cls.__init__).parameters
        check_known_keys(cls.__name__, config, [
            name for name, p in params.items() if name != "self" and p.kind != p.KEYWORD_ONLY])
        return cls(**config, **({"limits": limits} if "limits" in params else {}))

    def to_vertex(self):
        """Vertex v1 JSON of this object; unset (None) fields are left out."""
        out = {}
        for attr, key in self.VERTEX_FIELDS.items():
            value = getattr(self, attr)
            if value is not None:
                out[key] = value.to_vertex() if isinstance(value, SpecObject) else value
        return out

    @classmethod
    def vertex_kwargs(cls, body, where):
        """Vertex JSON -> keyword arguments of `__init__` (unknown fields refused)."""
        check_known_keys(where, body, cls.VERTEX_FIELDS.values())
        by_key = {key: attr for attr, key in cls.VERTEX_FIELDS.items()}
        return {by_key[key]: value for key, value in body.items()}

    @classmethod
    def from_vertex(cls, body, where=None):
        return cls(**cls.vertex_kwargs(body, where or cls.__name__))

    @classmethod
    def coerce(cls, value, where, field):
        """`value` as an instance: None stays None; dicts go through `from_config`."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls.from_config(value)
        raise type_error(where, field, value, f"expected a {cls.__name__}, a dict config or None")

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(repr(self))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"
