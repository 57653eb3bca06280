"""Who is writing beside an export: one marker per writer, held while it writes.

Every temporary a writer makes next to an export (the staging copy, a retired
copy) carries the writer's TOKEN, and before making any the writer creates
the marker `PREFIX.xai-writer-TOKEN` beside them. On local disks (NFS
included) the writer holds an exclusive `flock` on its marker until its
temporaries are gone; the kernel drops the lock when the process dies, so a
marker that can be locked belongs to a dead writer, whatever its host or pid.
Object stores have no locks: the marker records when its writer started, and
a writer is taken as gone `STALE_SECONDS` after that (the marker's own
timestamp, not the directory's, which object stores do not keep).
"""

import json
import os
import socket
import time
import uuid

import tensorflow as tf

from xai_callback.publish import storage
from xai_callback.names import join

WRITER_MARK = ".xai-writer-"
# Object stores only: how long after its start a writer may still be writing.
STALE_SECONDS = 24 * 3600


def marker_path(parent, prefix, token):
    """Where the writer `token` keeps its marker."""
    return join(parent, f"{prefix}{WRITER_MARK}{token}")


class Writer:
    """This process, writing temporaries in `parent` under names `prefix.xai-*-TOKEN`.

    Example:

    ```python
    writer = Writer("exports", ".churn")
    staging = f"exports/.churn.xai-staging-{writer.token}"
    ...  # write, publish, delete the temporaries
    writer.release()
    ```

    Args:
        parent: the directory the temporaries live in.
        prefix: the start of their names (`.NAME` beside a non-versioned
            export, empty inside a versioned base directory).
    """

    def __init__(self, parent, prefix=""):
        self.parent, self.prefix = str(parent), prefix
        record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()})
        for _ in range(3):
            self.token = uuid.uuid4().hex[:16]
            self.path = marker_path(self.parent, prefix, self.token)
            if not storage.is_local(self.path):
                self._lock = None
                storage.write_text(self.path, record)
                return
            # Locked under a name no cleaner reads, then renamed into place:
            # a visible marker is locked from its first moment.
            pending = self.path + ".new"
            self._lock = storage.FileLock(pending)
            self._lock.write(record)
            try:
                os.rename(pending, self.path)
                self._lock.path = self.path
                return
            except FileNotFoundError:  # a cleaner took the unlocked file: retry
                self._lock.release()
        raise RuntimeError(f"Could not create a writer marker in {self.parent!r}.")

    def release(self):
        """Deletes the marker (after the temporaries) and drops the lock."""
        if self._lock is not None:
            self._lock.release(delete=True)
        else:
            storage.remove(self.path)


def is_alive(parent, prefix, token, now=None):
    """True while the writer `token` may still be writing."""
    path = marker_path(parent, prefix, token)
    if storage.is_local(path):
        held = storage.lock_is_held(path)
        if held is not None:
            return held
    try:
        started = float(storage.read_json(path)["started"])
    except (tf.errors.OpError, OSError, ValueError, KeyError, TypeError):
        return False  # no readable marker: no writer made these
    return (time.time() if now is None else now) - started < STALE_SECONDS
