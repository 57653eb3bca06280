"""Documented import path kept working: `xai_callback.placement.published_versions`.

Publishing lives in `xai_callback.publish`; this module re-exports what the
README documents for servers and deploy scripts.
"""

from xai_callback.publish.placement import is_complete, newest_published_version, published_versions

__all__ = ["is_complete", "newest_published_version", "published_versions"]
