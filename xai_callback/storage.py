"""File operations on export paths, all through `tf.io.gfile`.

Going through gfile (never `os`/`shutil`) is what lets `export_dir` be a
`gs://`, `s3://` (with tensorflow-io), `hdfs://` or `ram://` path. The
exceptions are local-only and guarded by `is_local`: deleting trees without
following symbolic links, and the atomic directory swap.
"""

import ctypes
import errno
import json
import os
import shutil

import tensorflow as tf

from xai_callback.layout import join

gfile = tf.io.gfile


def exists(path):
    return gfile.exists(str(path))


def isdir(path):
    return gfile.isdir(str(path))


def makedirs(path):
    fault_point("makedirs")
    gfile.makedirs(str(path))


def listdir(path):
    names = [name.rstrip("/") for name in gfile.listdir(str(path))]
    if str(path).startswith("ram://"):
        # TF's in-memory file system matches by string prefix, so listing
        # "x/assets" also yields ".extra" from "x/assets.extra/...".
        names = [n for n in names if gfile.exists(join(path, n))]
    return names


def rmtree(path):
    """Deletes a tree; a path that is already gone is fine.

    Local trees go through `shutil.rmtree`, which never follows symbolic
    links: `gfile.rmtree` does, and would delete files outside the tree.
    """
    fault_point("rmtree")
    if is_local(path):
        if os.path.islink(str(path)):
            os.unlink(str(path))
        elif os.path.isdir(str(path)):
            shutil.rmtree(str(path), ignore_errors=False, onerror=_ignore_missing)
        elif os.path.lexists(str(path)):
            os.unlink(str(path))
        fault_point("rmtree")
        return
    try:
        if gfile.exists(str(path)):
            gfile.rmtree(str(path))
    except tf.errors.NotFoundError:
        pass
    fault_point("rmtree")


def _ignore_missing(function, path, exc_info):
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def rename(src, dst, overwrite=False):
    fault_point("rename")
    gfile.rename(str(src), str(dst), overwrite=overwrite)
    fault_point("rename")


def read_text(path):
    with gfile.GFile(str(path), "r") as f:
        return f.read()


def write_text(path, text):
    fault_point("write_text")
    with gfile.GFile(str(path), "w") as f:
        f.write(text)
    fault_point("write_text")


def read_json(path):
    return json.loads(read_text(path))


def write_json(path, obj):
    """Writes `obj` as indented JSON; the json module does all escaping."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def copytree(src, dst):
    """Recursively copies a directory tree (gfile has no copytree)."""
    makedirs(dst)
    for name in listdir(src):
        s, d = join(src, name), join(dst, name)
        if isdir(s):
            copytree(s, d)
        else:
            gfile.copy(s, d, overwrite=True)


# -- local-only helpers and fault injection (crash-safety, see placement.py) ---


def is_local(path):
    """True for paths on the local file system (no `scheme://`)."""
    return "://" not in str(path)


def is_symlink(path):
    """True when a local `path` is a symbolic link (object stores have none)."""
    return is_local(path) and os.path.islink(str(path))


def mtime(path):
    """Modification time of `path` in seconds since the epoch."""
    return gfile.stat(str(path)).mtime_nsec / 1e9


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a, b):
    """Atomically swaps two local paths (Linux `renameat2` RENAME_EXCHANGE).

    Returns False, having changed nothing, where that is unavailable (object
    stores, other systems, file systems without support).
    """
    if not (is_local(a) and is_local(b)):
        return False
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    fault_point("exchange")
    rc = renameat2(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err), str(a), None, str(b))
    fault_point("exchange")
    return True


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None


# Fault injection for the crash-safety tests: with
# XAI_CALLBACK_FAULT_INJECT="N" the process SIGKILLs itself at the N-th fault
# point (before and after each writing operation above); "N:SECONDS" kills
# SECONDS after reaching it, so the kill lands inside the TensorFlow write
# that follows. Unset (the default), a fault point only counts.
_fault_state = {"count": 0}


def fault_point(operation):
    _fault_state["count"] += 1
    if "trace" in _fault_state:
        _fault_state["trace"].append(operation)
    spec = os.environ.get("XAI_CALLBACK_FAULT_INJECT")
    if not spec:
        return
    at, _, delay = spec.partition(":")
    if _fault_state["count"] != int(at):
        return
    import signal

    if not delay:
        os.kill(os.getpid(), signal.SIGKILL)
    import threading

    timer = threading.Timer(float(delay), os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()


def fault_points_passed():
    """How many fault points this process has passed (for the tests)."""
    return _fault_state["count"]
