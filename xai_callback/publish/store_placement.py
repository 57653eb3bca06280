"""Putting exports in place on object stores (`s3://`, `gs://`, `abfs://`, `ram://`, ...).

An export is staged and verified on local disk (in the system temp folder),
then copied to the store. Object stores have no atomic rename, so files are
copied one by one: the provenance first (a partial copy is recognisably ours
and lists its files), `saved_model.pb` next to last (what TF Serving loads)
and the commit marker last. A non-versioned replace first copies the old
export's files to `.NAME.xai-retired-TOKEN`, then deletes only those files
from `export_dir` (`saved_model.pb` first) and copies the new ones in; until
the retired copy is deleted, a crash is repaired by restoring it. A version
number is claimed by checking that it is free and copying: give each
versioned `export_dir` on an object store one writer. There TF Serving can
see a version directory while it is being copied (it fails to load it until
`saved_model.pb` arrives, and retries); `published_versions` does not list
it before the commit marker.
"""

import contextlib
import os
import tempfile

from xai_callback.names import join
from xai_callback.publish import placement, storage, writers

def local_staging_root():
    """The local folder exports for object stores are staged in (per user)."""
    user = getattr(os, "getuid", lambda: "user")()
    return os.path.join(tempfile.gettempdir(), f"xai-callback-staging-{user}")


class StorePlacement:
    """The object-store implementation of the placement interface.

    Its methods, shared with `LocalPlacement`: `staging_area()`,
    `publishing(staged)` (yields the writer token the export records),
    `lock()`, `place(staged, token)`, `claim(staged)`, `retire(path)`,
    `restore(retired)` and `abandoned_copies()`.
    """

    def __init__(self, destination):
        self.destination = destination

    def staging_area(self):
        """(directory, name prefix) of staging copies: local disk, whatever the store."""
        return local_staging_root(), ""

    @contextlib.contextmanager
    def publishing(self, staged):
        """A writer marker in the store while the copy runs; yields its token.

        Retired copies and half-copied versions carry the token, so a later
        clean-up can tell whether their writer may still be copying.
        """
        writer = writers.Writer(*self.destination.temporaries)
        try:
            yield writer.token
        finally:
            writer.release()

    def lock(self):
        """No compare-and-publish lock: object stores have one writer per export_dir."""
        return contextlib.nullcontext()

    def place(self, staged, token):
        """Copies the staged export to `export_dir`, replacing only the old export's files."""
        export_dir = self.destination.path
        if not storage.exists(export_dir):
            copy_files(staged.path, export_dir)
            return
        old_files = placement.files_of(export_dir)
        retired = self.destination.temporary(placement.RETIRED_MARK, token)
        if placement.is_complete(export_dir):
            copy_files(export_dir, retired, old_files)
        delete_files(export_dir, old_files)
        copy_files(staged.path, export_dir)
        storage.rmtree(retired)

    def claim(self, staged, first=None):
        """Copies the staged export to the next free `export_dir/<n>`; returns n.

        An error while copying is a storage error, raised after deleting the
        partial copy (never taken for another writer's claim).
        """
        def copy_to(number):
            target = join(self.destination.path, str(number))
            if storage.exists(target):
                return False  # one writer per base directory: a foreign folder, or a broken rule
            try:
                copy_files(staged.path, target)
            except BaseException:
                _delete_partial(target)
                raise
            return True

        return placement.claim_next(self.destination.path, copy_to, first)

    def retire(self, path):
        """Deletes one version: unloadable first (`saved_model.pb`), then the rest."""
        try:
            storage.remove(join(path, placement.SAVED_MODEL_FILE))
        except storage.ERRORS:
            return
        storage.rmtree(path)

    def restore(self, retired):
        """Copies a complete retired copy back over an incomplete `export_dir`."""
        export_dir = self.destination.path
        partial = placement.read_record(export_dir)
        if partial is not None and "files" in partial:
            delete_files(export_dir, partial["files"])
        copy_files(retired, export_dir, placement.files_of(retired))
        storage.rmtree(retired)
        return True

    def abandoned_copies(self):
        """Version directories whose copy was abandoned (versioned only).

        Ours without the commit marker whose writer is gone, and directories
        without a single file (a copy killed before its first file).
        """
        if not self.destination.versioned:
            return
        export_dir = self.destination.path
        for name in placement.version_names(export_dir).values():
            path = join(export_dir, name)
            complete, record = placement.completeness(path)
            if complete:
                continue
            if record is None:  # not read: no saved_model.pb yet
                record = placement.read_record(path)
            if record is not None:
                if not writers.is_alive(export_dir, "", str(record.get("writer"))):
                    yield path
            elif all(f.endswith("/") for f in storage.list_files(path)):
                yield path


def _copy_order(relative):
    """Provenance first (marks a partial copy as ours), model then marker last."""
    return {placement.PROVENANCE: 0, placement.SAVED_MODEL_FILE: 2, placement.COMPLETE: 3}.get(relative, 1), relative


def copy_files(src, dst, files=None):
    """Copies `files` (default: all) of `src` into `dst`, in `_copy_order`."""
    files = storage.list_files(src) if files is None else files
    made = set()
    for relative in sorted(files, key=_copy_order):
        source = join(src, relative)
        if relative.endswith("/"):
            storage.makedirs(join(dst, relative))
            continue
        if not storage.exists(source):
            continue
        directory = placement.split_path(join(dst, relative))[0]
        if directory not in made:
            storage.makedirs(directory)
            made.add(directory)
        storage.copy_file(source, join(dst, relative))


def delete_files(root, files):
    """Deletes `files` of `root`: `saved_model.pb` first, provenance last.

    Directories left empty by it are removed; other files stay.
    """
    order = {placement.SAVED_MODEL_FILE: 0, placement.COMPLETE: 1, placement.PROVENANCE: 3}
    directories = set()
    for relative in sorted(files, key=lambda f: (order.get(f, 2), f)):
        path = join(root, relative.rstrip("/"))
        parts = relative.rstrip("/").split("/")
        directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if relative.endswith("/"):
            directories.add(relative.rstrip("/"))
            continue
        if storage.is_symlink(path) or not storage.isdir(path):
            storage.remove(path)
    for relative in sorted(directories, key=lambda d: -d.count("/")):
        path = join(root, relative)
        if storage.isdir(path) and not storage.is_symlink(path) and not storage.listdir(path):
            storage.rmtree(path)


def _delete_partial(target):
    try:
        record = placement.read_record(target)
        if record is not None and "files" in record:
            delete_files(target, record["files"])
        if storage.isdir(target) and not storage.listdir(target):
            storage.rmtree(target)
    except storage.ERRORS:
        pass  # the next export's clean-up deletes it
