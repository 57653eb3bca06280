"""`Feature`: one explained input (an entry of Vertex's `metadata.inputs`)."""

from xai_callback.errors import SpecError
from xai_callback.spec import enums
from xai_callback.spec.base import SpecObject
from xai_callback.spec.baselines import normalize_baselines
from xai_callback.spec.fields import check_choice, check_str, check_str_list, describe
from xai_callback.spec.visualization import FeatureValueDomain, Visualization


class Feature(SpecObject):
    """An input of the explained signature that attributions are reported for.

    Example:
        Feature("pixels", input_key="image", modality="image",
                baselines=np.zeros((28, 28, 1)),
                visualization=Visualization(type="OUTLINES"))

    Args:
        name: friendly name; attributions come back under it.
        input_key: input key of the explained signature (`xai_model`) this
            feature reads (default None: same as `name`).
        baselines: 1 to 10 baselines, averaged (default None: the service's
            zero baseline). A list/tuple is a list of baselines; a lone
            scalar, numpy array or tensor is one baseline. Each is a scalar or
            has (or broadcasts to) the shape of ONE example, without the batch
            dimension.
        modality: "numeric" (default) or "image".
        encoding: how the tensor encodes features: "IDENTITY" (default),
            "BAG_OF_FEATURES", "BAG_OF_FEATURES_SPARSE", "INDICATOR",
            "COMBINED_EMBEDDING" or "CONCAT_EMBEDDING".
        index_feature_mapping: names of the features packed along the last
            axis; required for BAG_OF_FEATURES, BAG_OF_FEATURES_SPARSE and
            INDICATOR, refused for the other encodings (default None).
        feature_value_domain: a `FeatureValueDomain` or its config (default None).
        group_name: features with the same group name are attributed together
            (default None).
        visualization: image features only: a `Visualization` or its config
            (default None: `Visualization()` for images).
        encoded_tensor_name: input key of a differentiable encoding of this
            input to take gradients on (default None).
        encoded_baselines: baselines for the encoded tensor, same rules as
            `baselines` (default None).
        indices_tensor_name: input key of the indices of a sparse input
            (default None).
        dense_shape_tensor_name: input key of the dense shape of a sparse
            input (default None).
    """

    VERTEX_FIELDS = {
        "input_key": "inputTensorName",
        "baselines": "inputBaselines",
        "modality": "modality",
        "encoding": "encoding",
        "index_feature_mapping": "indexFeatureMapping",
        "feature_value_domain": "featureValueDomain",
        "group_name": "groupName",
        "visualization": "visualization",
        "encoded_tensor_name": "encodedTensorName",
        "encoded_baselines": "encodedBaselines",
        "indices_tensor_name": "indicesTensorName",
        "dense_shape_tensor_name": "denseShapeTensorName",
    }

    def __init__(self, name, input_key=None, baselines=None, modality="numeric",
                 encoding="IDENTITY", index_feature_mapping=None, feature_value_domain=None,
                 group_name=None, visualization=None, encoded_tensor_name=None,
                 encoded_baselines=None, indices_tensor_name=None, dense_shape_tensor_name=None):
        self.name = check_str("Feature", "name", name)
        where = f"Feature {name!r}"
        self.input_key = check_str(where, "input_key", input_key, optional=True) or name
        self.baselines = normalize_baselines(where, "baselines", baselines)
        self.modality = check_choice(where, "modality", modality, enums.MODALITIES)
        self.encoding = check_choice(where, "encoding", encoding, enums.ENCODINGS)
        self.index_feature_mapping = check_str_list(
            where, "index_feature_mapping", index_feature_mapping, optional=True)
        needs_mapping = self.encoding in enums.ENCODINGS_WITH_INDEX_MAPPING
        if needs_mapping and self.index_feature_mapping is None:
            raise SpecError(describe(
                where, "index_feature_mapping", None,
                f"encoding {self.encoding} needs the list of feature names packed in the tensor"))
        if not needs_mapping and self.index_feature_mapping is not None:
            raise SpecError(describe(
                where, "index_feature_mapping", index_feature_mapping,
                f"only used with encodings {list(enums.ENCODINGS_WITH_INDEX_MAPPING)}; "
                f"encoding is {self.encoding}"))
        self.feature_value_domain = FeatureValueDomain.coerce(
            feature_value_domain, where, "feature_value_domain")
        self.group_name = check_str(where, "group_name", group_name, optional=True)
        self.visualization = Visualization.coerce(visualization, where, "visualization")
        if self.modality == enums.IMAGE and self.visualization is None:
            self.visualization = Visualization()
        if self.modality != enums.IMAGE and self.visualization is not None:
            raise SpecError(describe(
                where, "visualization", visualization,
                f"only image features have one; modality is {self.modality!r}"))
        self.encoded_tensor_name = check_str(
            where, "encoded_tensor_name", encoded_tensor_name, optional=True)
        self.encoded_baselines = normalize_baselines(where, "encoded_baselines", encoded_baselines)
        self.indices_tensor_name = check_str(
            where, "indices_tensor_name", indices_tensor_name, optional=True)
        self.dense_shape_tensor_name = check_str(
            where, "dense_shape_tensor_name", dense_shape_tensor_name, optional=True)

    def get_config(self):
        return {"name": self.name, **super().get_config()}

    @property
    def tensor_key(self):
        """The input key attributions are taken on: `encoded_tensor_name` when set
        (an embedding, say: gradients and coalitions act on it), else `input_key`."""
        return self.encoded_tensor_name or self.input_key

    @property
    def attributed_baselines(self):
        """The baselines of `tensor_key`: `encoded_baselines` when the encoded tensor
        is attributed, else `baselines`; the service's zero baseline when unset."""
        baselines = self.encoded_baselines if self.encoded_tensor_name else self.baselines
        return list(baselines) if baselines is not None else [0]

    @classmethod
    def from_vertex(cls, body, where=None, name=None):
        """`Feature` from its Vertex JSON; `name` is its key in `metadata.inputs`."""
        where = where or f"metadata input {name!r}"
        kwargs = cls.vertex_kwargs(body, where)
        if kwargs.get("visualization") is not None:
            kwargs["visualization"] = Visualization.from_vertex(
                kwargs["visualization"], f"{where} visualization")
        if kwargs.get("feature_value_domain") is not None:
            kwargs["feature_value_domain"] = FeatureValueDomain.from_vertex(
                kwargs["feature_value_domain"], f"{where} featureValueDomain")
        return cls(name=name, **kwargs)
