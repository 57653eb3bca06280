"""Which versions under a base directory are ready to load: TF Serving's "source".

A version is a directory named by ASCII digits (TF Serving's layout). It is
ready once it is whole:

- an export of this package: its commit marker is there (written last by the
  writer, see `xai_callback.publish.placement.is_complete`) and so is every
  file its provenance lists, so a copy made by `cp -r` or `gsutil` (in any
  file order) is not loaded before it is complete;
- any other SavedModel: `saved_model.pb` is there and its files (names, sizes,
  modification times) have stood unchanged for `settle_seconds`, or were all
  last modified longer ago than that (a version already there at start-up).
"""

import time

import tensorflow as tf

from xai_callback.names import join
from xai_callback.publish import placement, storage
from xai_callback.publish.provenance import read_provenance


class VersionSource:
    """The versions of `base_dir` and whether each is ready to load.

    Example:

    ```python
    source = VersionSource("gs://bucket/models/churn", settle_seconds=10)
    for number in source.versions():          # newest first
        if source.ready(number):
            ...
    ```

    Args:
        base_dir: a versioned base directory (local path or gfile URL).
        settle_seconds: how long a SavedModel not written by this package
            must stand unchanged before it is ready.
        clock: `clock()` -> seconds (monotonic); for tests.
    """

    def __init__(self, base_dir, settle_seconds, clock=time.monotonic):
        self.base_dir = base_dir
        self.settle_seconds = settle_seconds
        self.clock = clock
        self._seen = {}  # version -> (fingerprint, when first seen so)

    def versions(self):
        """The version numbers present now, newest first (forgets the others)."""
        names = placement.version_names(self.base_dir)
        for gone in set(self._seen) - set(names):
            del self._seen[gone]
        return sorted(names, reverse=True)

    def path(self, version):
        return join(self.base_dir, str(version))

    def ready(self, version):
        """Whether `version` holds a whole SavedModel that may be loaded now."""
        path = self.path(version)
        if not storage.exists(join(path, placement.SAVED_MODEL_FILE)):
            return False
        record = read_provenance(path)
        if record is not None:
            # Empty folders (`assets/`) are listed, but object stores keep no folders.
            listed = {name for name in record.get("files") or () if not name.endswith("/")}
            return placement.is_complete(path) and listed <= set(storage.list_files(path))
        return self._settled(version, path)

    def fingerprint(self, version):
        """`(name, size, modification time)` of every file of `version`, sorted."""
        path = self.path(version)
        entries = []
        for name in storage.list_files(path):
            if name.endswith("/"):
                entries.append((name, 0, 0))
                continue
            try:
                stat = tf.io.gfile.stat(join(path, name))
            except tf.errors.NotFoundError:  # removed while listing: changing
                return None
            entries.append((name, stat.length, stat.mtime_nsec))
        return tuple(entries)

    def _settled(self, version, path):
        fingerprint = self.fingerprint(version)
        if fingerprint is None:
            return False
        now = self.clock()
        seen = self._seen.get(version)
        if seen is None or seen[0] != fingerprint:
            self._seen[version] = seen = (fingerprint, now)
            newest = max((mtime for _, _, mtime in fingerprint), default=0) / 1e9
            if newest and time.time() - newest >= self.settle_seconds:
                return True  # untouched for longer than the settle time already
        return now - seen[1] >= self.settle_seconds
