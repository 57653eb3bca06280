"""Putting exports in place on a local disk: renames, atomic swaps, fsync.

- Non-versioned: staging is the sibling `.NAME.xai-staging-TOKEN`. A first
  export is one `rename`. Replacing an old export: files in `export_dir` the
  old export did not write (`assets.extra/tf_serving_warmup_requests`, a
  checkpoint folder) are hard-linked into the staging copy, then one atomic
  swap (`renameat2` RENAME_EXCHANGE) puts it in place and the old tree is
  deleted; without the swap, two renames (old -> `.NAME.xai-retired-TOKEN`,
  new -> `export_dir`), after a crash between which the next export
  restores the retired one.
- Versioned: staging is `export_dir/.xai-staging-TOKEN`; a `rename` that
  refuses an existing target (`renameat2` RENAME_NOREPLACE) claims the next
  number, so two writers never share one.
- Files, the staging directory and the parent are fsynced before an export
  is renamed into place, and the parent again before the old export is
  deleted, so a power loss leaves the old or the new export.
"""

import contextlib

from xai_callback.names import join
from xai_callback.publish import placement, storage, writers

class LocalPlacement:
    """The local-disk implementation of the placement interface (see `StorePlacement`)."""

    def __init__(self, destination):
        self.destination = destination

    def staging_area(self):
        """(directory, name prefix) of staging copies: on the export's own file system."""
        return self.destination.temporaries

    @contextlib.contextmanager
    def publishing(self, staged):
        """Yields the token recorded as the export's writer: the staging writer's."""
        yield staged.writer.token

    @contextlib.contextmanager
    def lock(self):
        """Serialises compare-and-publish between processes.

        A `flock` on the directory the exports live in (the base directory,
        or the parent of a non-versioned export), so no file is left.
        """
        try:
            lock = storage.FileLock(self.destination.temporaries[0], blocking=True)
        except OSError:
            lock = None  # a file system without flock: publish unserialised
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    def place(self, staged, token):
        """Moves a finished staging export to `export_dir`, replacing an old one.

        Only the files the old export wrote are replaced; others survive.
        """
        export_dir, parent, staging = self.destination.path, self.destination.parent, staged.path
        if not storage.exists(export_dir):
            storage.sync_tree(staging)
            storage.sync_dir(parent)
            storage.rename(staging, export_dir)
            storage.sync_dir(parent)
            return
        carry_over(export_dir, staging, placement.files_of(export_dir))
        storage.sync_tree(staging)
        storage.sync_dir(parent)
        if storage.exchange(staging, export_dir):
            storage.sync_dir(parent)  # the swap is on disk before the old tree goes
            storage.rmtree(staging)  # now holds the old export
            return
        retired = self.destination.temporary(placement.RETIRED_MARK, token)
        storage.rename(export_dir, retired)
        storage.sync_dir(parent)
        storage.rename(staging, export_dir)
        storage.sync_dir(parent)
        storage.rmtree(retired)

    def claim(self, staged, first=None):
        """Moves the staging copy to the next free `export_dir/<n>`; returns n.

        The rename refuses an existing target, so a taken number (another
        writer's) means trying the next; any other error is raised.
        """
        export_dir = self.destination.path
        storage.sync_tree(staged.path)
        storage.sync_dir(export_dir)

        def rename_to(number):
            try:
                storage.claim_rename(staged.path, join(export_dir, str(number)))
            except FileExistsError:
                return False  # lost the race for this number
            storage.sync_dir(export_dir)
            return True

        return placement.claim_next(export_dir, rename_to, first)

    def retire(self, path):
        """Deletes one version so that no reader sees it half-deleted."""
        export_dir = self.destination.path
        writer = writers.Writer(export_dir)
        try:
            hidden = self.destination.temporary(placement.RETIRED_MARK, writer.token)
            try:
                storage.rename(path, hidden)
            except storage.ERRORS:
                return  # another writer retired it first
            storage.sync_dir(export_dir)
            storage.rmtree(hidden)
        finally:
            writer.release()

    def restore(self, retired):
        """Puts a complete retired copy back where `export_dir` is missing."""
        if storage.exists(self.destination.path):
            return False  # not left by our renames: leave both for a person to look at
        storage.rename(retired, self.destination.path)
        storage.sync_dir(self.destination.parent)
        return True

    def abandoned_copies(self):
        """Versions left half-claimed: none (a local claim is one rename)."""
        return []


def carry_over(export_dir, staging, old_files):
    """Links files of `export_dir` the old export did not write into `staging`.

    The new export wins where both have a file.
    """
    old = set(old_files)
    for relative in storage.list_files(export_dir):
        if relative in old or storage.exists(join(staging, relative)):
            continue
        if relative.endswith("/"):
            storage.makedirs(join(staging, relative))
            continue
        storage.makedirs(placement.split_path(join(staging, relative))[0])
        storage.link_or_copy(join(export_dir, relative), join(staging, relative))
