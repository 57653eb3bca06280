"""Names of the signatures and files that make an export explanation-ready.

One place for every name the contract fixes, so the exporter, the validator and
the explainer cannot drift apart.
"""

SERVING_DEFAULT = "serving_default"
XAI_MODEL = "xai_model"
XAI_PREPROCESS = "xai_preprocess"
# Optional: explanations computed in-graph, for any SavedModel host (docs/explaining.md).
XAI_EXPLAIN = "xai_explain"
RESERVED_SIGNATURES = (SERVING_DEFAULT, XAI_MODEL, XAI_PREPROCESS, XAI_EXPLAIN)

SAVED_MODEL_TAG = "serve"

# Extra files travel in `assets.extra/` (TF Serving's convention for files
# that are not graph assets).
ASSETS_EXTRA = "assets.extra"
# Vertex AI v1 JSON (camelCase, UPPERCASE enums): usable as is with
# `gcloud ai models upload --explanation-metadata-file/--explanation-parameters-file`.
VERTEX_METADATA_FILE = "vertex_explanation_metadata.json"
VERTEX_PARAMETERS_FILE = "vertex_explanation_parameters.json"
# Legacy AI Platform dialect, only on request; the legacy service read it
# beside `saved_model.pb`, so it lives at the export's top level.
LEGACY_METADATA_FILE = "explanation_metadata.json"
# What wrote this export, when and from which epoch. Its presence is also the
# marker that a directory is an export of this package.
PROVENANCE_FILE = "xai_callback_provenance.json"
# What the Vertex metadata cannot say about features made by Keras
# preprocessing layers (raw inputs of each feature, token vocabularies).
FEATURES_FILE = "xai_features.json"
# A small batch of `serving_default` inputs, kept so `validate` can re-check
# the serving == model o preprocess identity later.
SAMPLE_FILE = "xai_sample.json"


def extra_path(export_dir, filename):
    """Path of a file under the export's `assets.extra/` directory."""
    return join(export_dir, ASSETS_EXTRA, filename)


def join(*parts):
    """Joins path parts with `/`, which works for local paths and URLs alike."""
    head, *rest = [str(p) for p in parts]
    for part in rest:
        if head.endswith("://"):  # a scheme root such as "ram://"
            head = head + part.lstrip("/")
        else:
            head = head.rstrip("/") + "/" + part.lstrip("/")
    return head
