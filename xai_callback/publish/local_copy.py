"""A local copy of an export on an object store, for what loads SavedModels.

`tf.saved_model.load` reads through TensorFlow's own file systems, which have
no `s3://` (and cannot be pointed at another `gs://` endpoint). `validate`,
`explain`, `load_explainer` and `serve` therefore load an fsspec-backed export
from a local copy: one per published export (its commit marker), copied once
into a per-user cache folder and reused, re-copied when the export at that
path is replaced.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid

from xai_callback.names import join
from xai_callback.publish import object_stores, placement, storage
from xai_callback.publish.store_placement import copy_files

# Copies kept per remote export: the current one and the one before (a server
# may still be loading it when a new version arrives).
KEEP_COPIES = 2
# A replace that lands while we copy makes us start again, this many times.
MAX_ATTEMPTS = 3
# A partial copy this old was left by a process that died while copying.
ABANDONED_SECONDS = 24 * 3600


def cache_root():
    """The per-user folder local copies live in."""
    user = getattr(os, "getuid", lambda: "user")()
    return os.path.join(tempfile.gettempdir(), f"xai-callback-cache-{user}")


def needs_local_copy(path):
    """True for exports TensorFlow cannot load in place (fsspec object stores)."""
    return object_stores.handles(path)


def local_copy(export_dir, cache_dir=None):
    """A path `tf.saved_model.load` can read the export at `export_dir` from.

    Local paths and TensorFlow's own file systems (`ram://`, `gs://` without
    gcsfs) are returned unchanged. An export on an fsspec object store
    (`s3://`, `gs://`, `abfs://`) is copied to `cache_dir` once per published
    export: the copy is keyed by the commit marker (ours) or `saved_model.pb`'s
    object metadata (others'), so a replaced export is copied again and an
    unchanged one is not.

    Example:

    ```python
    path = local_copy("s3://bucket/models/churn/3")
    loaded = tf.saved_model.load(path)
    ```

    Args:
        export_dir: the export (one SavedModel, not a versioned base folder).
        cache_dir: where copies go. Defaults to None: `cache_root()`.

    Returns:
        A local path (or `export_dir` itself when it needs no copy).

    Raises:
        FileNotFoundError: no complete export at `export_dir`.
        RuntimeError: the export was replaced during every attempt to copy it.
    """
    export_dir = str(export_dir).rstrip("/")
    if not needs_local_copy(export_dir):
        return export_dir
    root = os.path.join(cache_dir or cache_root(), _digest(export_dir))
    for _ in range(MAX_ATTEMPTS):
        identity = _identity(export_dir)
        target = os.path.join(root, _digest(export_dir, identity))
        if os.path.isdir(target):
            return target
        os.makedirs(root, exist_ok=True)
        partial = os.path.join(root, f".partial-{uuid.uuid4().hex[:16]}")
        try:
            copy_files(export_dir, partial, placement.files_of(export_dir))
            if _identity(export_dir) != identity:
                continue  # replaced while we copied: the files may be of two exports
            try:
                os.rename(partial, target)
            except OSError:
                if not os.path.isdir(target):  # not another process's identical copy
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        _evict(root, keep=target)
        return target
    raise RuntimeError(f"The export at {export_dir!r} was replaced during each of {MAX_ATTEMPTS} copies.")


def _digest(*parts):
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:20]


def _identity(export_dir):
    """What changes when the export at `export_dir` is replaced."""
    marker = join(export_dir, placement.COMPLETE)
    if storage.exists(marker):
        return storage.read_text(marker)
    model = join(export_dir, placement.SAVED_MODEL_FILE)
    if not storage.exists(model) or not placement.is_complete(export_dir):
        raise FileNotFoundError(
            f"No complete export at {export_dir!r} (no saved_model.pb, or ours without its commit "
            "marker: still being copied, or left half-copied)."
        )
    info = object_stores.file_system(model).info(model.split("://", 1)[1])
    return json.dumps(info, sort_keys=True, default=str)


def _evict(root, keep):
    """Deletes all but the newest `KEEP_COPIES` copies in `root` (never `keep`),
    and partial copies a killed process left more than a day ago."""
    names = os.listdir(root)
    copies = [os.path.join(root, n) for n in names if not n.startswith(".")]
    copies.sort(key=lambda p: (p == keep, os.path.getmtime(p)), reverse=True)
    abandoned = [os.path.join(root, n) for n in names if n.startswith(".partial-")
                 and time.time() - os.path.getmtime(os.path.join(root, n)) > ABANDONED_SECONDS]
    for stale in copies[KEEP_COPIES:] + abandoned:
        shutil.rmtree(stale, ignore_errors=True)
