"""File operations on export paths: `tf.io.gfile`, or fsspec for object stores.

Local paths and TensorFlow's own schemes (`ram://`, `hdfs://`, `gs://` when
gcsfs is missing) go through gfile; `s3://`, `gs://` and `abfs://` through
fsspec (`object_stores`), since TensorFlow cannot write or read them. The
local-only exceptions are guarded by `is_local`: deleting trees without
following symbolic links, the atomic directory swap and claim, hard links,
fsync, mount points and `flock` locks.

Tests inject faults by wrapping these functions (tests/faults.py); nothing
here reads the environment.
"""

import ctypes
import errno
import fcntl
import json
import os
import shutil

import tensorflow as tf

from xai_callback.names import join
from xai_callback.publish import object_stores

gfile = tf.io.gfile
# What a failed storage call raises: TensorFlow's errors (gfile), OSError (os, fsspec).
ERRORS = (tf.errors.OpError, OSError)
_store = object_stores.handles


def exists(path):
    if _store(path):
        return object_stores.exists(path)
    return gfile.exists(str(path))


def isdir(path):
    if _store(path):
        return object_stores.isdir(path)
    return gfile.isdir(str(path))


def makedirs(path):
    if _store(path):
        return  # object stores have no directories: keys imply them
    gfile.makedirs(str(path))


def listdir(path):
    if _store(path):
        return object_stores.listdir(path)
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
    if is_local(path):
        if os.path.islink(str(path)):
            os.unlink(str(path))
        elif os.path.isdir(str(path)):
            shutil.rmtree(str(path), ignore_errors=False, onerror=_ignore_missing)
        elif os.path.lexists(str(path)):
            os.unlink(str(path))
        return
    if _store(path):
        object_stores.rmtree(path)
        return
    try:
        if gfile.exists(str(path)):
            gfile.rmtree(str(path))
    except tf.errors.NotFoundError:
        pass


def _ignore_missing(function, path, exc_info):
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def rename(src, dst, overwrite=False):
    gfile.rename(str(src), str(dst), overwrite=overwrite)


def read_text(path):
    if _store(path):
        return object_stores.read_bytes(path).decode("utf-8")
    with gfile.GFile(str(path), "r") as f:
        return f.read()


def write_text(path, text):
    if _store(path):
        object_stores.write_bytes(path, text.encode("utf-8"))
        return
    if str(path).startswith("ram://"):
        remove(path)  # TF's in-memory file system does not truncate on "w"
    with gfile.GFile(str(path), "w") as f:
        f.write(text)


def write_bytes(path, data):
    """Writes `data` to one file (on object stores one PUT: whole or absent)."""
    if _store(path):
        object_stores.write_bytes(path, data)
        return
    if str(path).startswith("ram://"):
        remove(path)  # TF's in-memory file system does not truncate on "w"
    with gfile.GFile(str(path), "wb") as f:
        f.write(data)


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
            copy_file(s, d)


def copy_file(src, dst):
    """Copies one file, replacing `dst` (on object stores one PUT: whole or absent)."""
    if _store(dst):
        if is_local(src):
            object_stores.upload(src, dst)
        else:
            object_stores.copy(src, dst)
        return
    if _store(src):
        object_stores.download(src, dst)
        return
    if str(dst).startswith("ram://"):
        remove(dst)  # see write_text
    gfile.copy(str(src), str(dst), overwrite=True)


def remove(path):
    """Deletes one file; a file that is already gone is fine."""
    try:
        if is_local(path):
            os.unlink(str(path))
        elif _store(path):
            object_stores.remove(path)
        else:
            gfile.remove(str(path))
    except (FileNotFoundError, tf.errors.NotFoundError):
        pass


def list_files(root):
    """Relative paths of the files under `root`, sorted (`/`-separated).

    Symbolic links (local) are listed as files and never followed; an empty
    directory is listed with a trailing `/` so that it can be recreated.
    """
    if _store(root):
        return object_stores.list_files(root)
    found = []

    def walk(directory, prefix):
        names = listdir(directory)
        if not names and prefix:
            found.append(prefix)
        for name in names:
            path = join(directory, name)
            if not is_symlink(path) and isdir(path):
                walk(path, f"{prefix}{name}/")
            else:
                found.append(prefix + name)

    if isdir(root):
        walk(root, "")
    return sorted(found)


# -- local-only helpers (crash safety, see placement.py) ----------------------


def is_local(path):
    """True for paths on the local file system (no `scheme://`)."""
    return "://" not in str(path)


def _local(path):
    """A local path without trailing slashes, which would resolve a link."""
    return str(path).rstrip("/") or "/"


def is_symlink(path):
    """True when a local `path` is a symbolic link (object stores have none).

    `link/` counts as the link itself: a trailing slash makes the system
    resolve it, which would hide it.
    """
    return is_local(path) and os.path.islink(_local(path))


def is_mount(path):
    """True when a local `path` is a mount point (a Docker or Kubernetes volume)."""
    return is_local(path) and os.path.ismount(_local(path))


def link_or_copy(src, dst):
    """Puts the file (or symbolic link) `src` at `dst` too, leaving `src`.

    Local: a hard link (no data copied; a link is linked, not followed), or a
    copy where the file system refuses links. Elsewhere: a copy.
    """
    if not is_local(src):
        copy_file(src, dst)
        return
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst)


def sync_tree(path):
    """fsync every file and directory of a local tree, deepest first.

    After a power loss, a rename is only known to point at data that reached
    the disk; this is what makes the data reach it first. No-op elsewhere.
    """
    if not is_local(path) or not os.path.isdir(path):
        return
    for directory, _, files in os.walk(path, topdown=False):
        for name in files:
            file = os.path.join(directory, name)
            if not os.path.islink(file):
                _fsync(file, os.O_RDONLY)
        _fsync(directory, os.O_RDONLY | os.O_DIRECTORY)


def sync_file(path):
    """fsync one local file, so a rename of it points at its data. No-op elsewhere."""
    if is_local(path) and os.path.isfile(path):
        _fsync(path, os.O_RDONLY)


def sync_dir(path):
    """fsync a local directory, so renames inside it are on disk. No-op elsewhere."""
    if is_local(path) and os.path.isdir(path):
        _fsync(path, os.O_RDONLY | os.O_DIRECTORY)


def _fsync(path, flags):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    rc = renameat2(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err), str(a), None, str(b))
    return True


_RENAME_NOREPLACE = 1


def claim_rename(src, dst):
    """Renames local `src` to `dst` only if `dst` does not exist yet.

    Raises:
        FileExistsError: `dst` exists (another writer claimed it first).
        OSError: any other failure, which is not a lost race.
    """
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(str(src)), _AT_FDCWD, os.fsencode(str(dst)), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise _rename_error(err, src, dst)
    # No renameat2 here: rename(2) refuses a non-empty target, and a version
    # directory being claimed is never empty.
    if os.path.lexists(str(dst)) and (not os.path.isdir(str(dst)) or os.listdir(str(dst))):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    try:
        os.rename(str(src), str(dst))
    except OSError as e:
        raise _rename_error(e.errno, src, dst) from None


def _rename_error(err, src, dst):
    if err in (errno.EEXIST, errno.ENOTEMPTY):
        return FileExistsError(err, os.strerror(err), str(dst))
    return OSError(err, os.strerror(err), str(src), None, str(dst))


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None


# -- flock: a writer holds its lock file as long as it writes -----------------


class FileLock:
    """An exclusive `flock` on a local file, held until `release()`.

    The kernel drops the lock when the holder dies, so a lock that can be taken
    means its writer is gone, whatever its host or pid.
    """

    def __init__(self, path, blocking=False):
        self.path = str(path)
        if os.path.isdir(self.path):  # a directory can be locked too (no file left behind)
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BaseException:
            os.close(self.fd)
            raise

    def write(self, text):
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, text.encode("utf-8"), 0)

    def release(self, delete=False):
        if self.fd is None:
            return
        if delete:
            remove(self.path)
        os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_is_held(path):
    """True if a live process holds the flock on local `path`, False if not.

    None when that cannot be told (no such file system support).
    """
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)
    return False
