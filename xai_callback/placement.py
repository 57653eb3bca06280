"""Putting a finished export in place so readers never see half of one.

An export is written to a hidden staging sibling of its destination, checked
there, and only then moved into place. On local disks the move is one atomic
`rename`; object stores (`gs://`, `ram://`, ...) have no directory rename, so
there the files are copied with `saved_model.pb` last (the file loaders look
for) and the staging copy is deleted.
"""

import uuid

from xai_callback import storage
from xai_callback.layout import PROVENANCE_FILE, extra_path, join

STAGING_MARK = ".xai-staging-"
RETIRED_MARK = ".xai-retired-"


def split_path(path):
    path = str(path).rstrip("/")
    head, _, tail = path.rpartition("/")
    return (head or "."), tail


def is_local(path):
    return "://" not in str(path)


def staging_path(export_dir):
    """A fresh hidden sibling of `export_dir` to write into."""
    parent, name = split_path(export_dir)
    return join(parent, f".{name}{STAGING_MARK}{uuid.uuid4().hex[:12]}")


def is_our_export(path):
    """True when `path` holds an export written by this package."""
    return storage.exists(extra_path(path, PROVENANCE_FILE))


def check_destination(export_dir, overwrite=False):
    """Refuses a destination that would clobber something not ours.

    Raises:
        FileExistsError: `export_dir` is a file, or a non-empty directory
            that is not a previous export of this package (unless `overwrite`).
    """
    if not storage.exists(export_dir):
        return
    if not storage.isdir(export_dir):
        raise FileExistsError(
            f"export_dir={str(export_dir)!r} is a file; it must be a directory "
            "path (existing or not)."
        )
    if overwrite or is_our_export(export_dir) or not storage.listdir(export_dir):
        return
    raise FileExistsError(
        f"export_dir={str(export_dir)!r} is a non-empty directory that is not an "
        "export of xai-callback; refusing to replace it. Choose another path or "
        "pass overwrite=True."
    )


def move_tree(src, dst):
    """Moves directory `src` to the absent path `dst`."""
    if is_local(src) and is_local(dst):
        storage.rename(src, dst)
        return
    _copy_saved_model_last(src, dst)
    storage.rmtree(src)


def _copy_saved_model_last(src, dst):
    storage.makedirs(dst)
    names = storage.listdir(src)
    for name in sorted(names, key=lambda n: n == "saved_model.pb"):
        s, d = join(src, name), join(dst, name)
        if storage.isdir(s):
            storage.copytree(s, d)
        else:
            storage.gfile.copy(s, d, overwrite=True)


def place(staging, export_dir, overwrite=False):
    """Moves a finished staging export to `export_dir`, replacing an old one."""
    check_destination(export_dir, overwrite)
    retired = None
    if storage.exists(export_dir):
        parent, name = split_path(export_dir)
        retired = join(parent, f".{name}{RETIRED_MARK}{uuid.uuid4().hex[:12]}")
        move_tree(export_dir, retired)
    move_tree(staging, export_dir)
    if retired is not None:
        storage.rmtree(retired)
