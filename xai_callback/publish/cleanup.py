"""Deleting what is no longer wanted: temporaries of gone writers, versions beyond `keep`.

Temporaries are deleted only once their writer is gone (its lock released,
or a day old on object stores: `xai_callback.publish.writers`). Clean-up only
touches names it made or directories carrying our provenance marker, never
follows symbolic links, and never leaves `export_dir` (or, non-versioned, its
own name's siblings).
"""

import re

from xai_callback.names import join
from xai_callback.publish import placement, storage, writers
from xai_callback.publish.ranking import versions_to_keep


def _temporary_pattern(prefix):
    return re.compile(
        rf"^{re.escape(prefix)}\.xai-(?P<kind>staging|retired|writer|probe)-(?P<token>[0-9a-f]{{16}})(?:\.new)?$"
    )


def _dead_temporaries(directory, prefix):
    """`[(kind, path)]` of the temporaries in `directory` whose writer is gone."""
    if not storage.isdir(directory):
        return []
    pattern = _temporary_pattern(prefix)
    found = {}
    for name in storage.listdir(directory):
        match = pattern.match(name)
        path = join(directory, name)
        if match and not storage.is_symlink(path):
            found.setdefault(match["token"], []).append((match["kind"], path))
    return [entry for token, paths in found.items()
            if not writers.is_alive(directory, prefix, token) for entry in paths]


def _delete(stale, destination):
    for kind, path in sorted(stale, key=lambda e: e[0] == "writer"):  # markers last
        if kind == "writer":
            storage.remove(path)
        elif kind == "partial":
            destination.placement.retire(path)
        else:
            storage.rmtree(path)
    return [path for _, path in stale]


def clean_stale(destination):
    """Deletes temporaries of writers that are gone; returns the paths deleted.

    Non-versioned, an `export_dir` that is not complete is first restored from
    a complete retired copy, and while it stays incomplete no complete retired
    copy is deleted. On object stores, versions whose copy was abandoned go
    too, and so do local staging copies of gone writers.
    """
    stale = _dead_temporaries(*destination.temporaries)
    export_dir = destination.path
    if stale and not destination.versioned and not placement.is_complete(export_dir):
        retired = [p for kind, p in stale if kind == "retired" and placement.is_complete(p)]
        if retired and destination.placement.restore(retired[0]):
            stale.remove(("retired", retired[0]))
        if not placement.is_complete(export_dir):  # keep every complete copy for later
            stale = [(k, p) for k, p in stale if not (k == "retired" and placement.is_complete(p))]
    stale += [("partial", path) for path in destination.placement.abandoned_copies()]
    deleted = _delete(stale, destination)
    staging_area = destination.placement.staging_area()
    if staging_area != destination.temporaries:
        deleted += _delete(_dead_temporaries(*staging_area), destination)
    return deleted


def prune_versions(destination, protect=None, ranking=None):
    """Deletes our versions beyond `destination.keep`; returns their numbers.

    Which are kept: see `ranking.versions_to_keep`. Foreign versions (no
    provenance marker) neither count nor get deleted.
    """
    records = placement.our_versions(destination.path)
    names = placement.version_names(destination.path)
    doomed = sorted(set(records) - versions_to_keep(records, destination.keep, protect, ranking))
    for number in doomed:
        destination.placement.retire(join(destination.path, names[number]))
    return doomed
