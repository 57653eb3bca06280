"""What is published where: complete exports, versions, the files an export wrote.

The read side of the write protocol (`xai_callback.publish.staging`): an
export of ours is complete when it has `saved_model.pb` and its commit marker,
`assets.extra/xai_callback_complete.json`, written last; SavedModels of others
(or ours from before file lists) once `saved_model.pb` is there. Readers and
servers choose from `published_versions`, which never lists a version still
being copied.
"""

import re

from xai_callback.names import (
    ASSETS_EXTRA,
    LEGACY_METADATA_FILE,
    PROVENANCE_FILE,
    SAMPLE_FILE,
    VERTEX_METADATA_FILE,
    VERTEX_PARAMETERS_FILE,
    extra_path,
    join,
)
from xai_callback.publish import storage

# Attempts to claim a version number against concurrent writers.
MAX_CLAIM_ATTEMPTS = 1000
STAGING_MARK = ".xai-staging-"
RETIRED_MARK = ".xai-retired-"
PROBE_MARK = ".xai-probe-"
SAVED_MODEL_FILE = "saved_model.pb"
COMPLETE_FILE = "xai_callback_complete.json"
VERSION_NAME = re.compile(r"^[0-9]+$")

PROVENANCE = f"{ASSETS_EXTRA}/{PROVENANCE_FILE}"
COMPLETE = f"{ASSETS_EXTRA}/{COMPLETE_FILE}"
# What an export written before exports listed their files consists of.
_KNOWN_LAYOUT = ("saved_model.pb", "fingerprint.pb", "variables/", "assets/", LEGACY_METADATA_FILE) + tuple(
    f"{ASSETS_EXTRA}/{name}"
    for name in (PROVENANCE_FILE, SAMPLE_FILE, VERTEX_METADATA_FILE, VERTEX_PARAMETERS_FILE, COMPLETE_FILE)
)

is_local = storage.is_local


def split_path(path):
    """`(parent, name)`; the parent of `scheme://name` is `scheme://`."""
    path = str(path).rstrip("/")
    scheme, sep, rest = path.partition("://")
    prefix = scheme + sep if sep else ""
    head, _, tail = (rest if sep else path).rpartition("/")
    return (prefix + head if head else prefix or "."), tail


def is_our_export(path):
    """True when `path` holds an export written by this package."""
    return storage.exists(extra_path(path, PROVENANCE_FILE))


def read_record(path):
    """The provenance of the export at `path`, or None (not ours, unreadable)."""
    from xai_callback.publish.provenance import read_provenance

    try:
        return read_provenance(path)
    except (ValueError, *storage.ERRORS):
        return None


def is_complete(path):
    """True when `path` holds a whole SavedModel (ours: with its commit marker).

    Exports that list their files are complete once the commit marker,
    written last, is there; SavedModels of others (or ours from before file
    lists) once `saved_model.pb` is.
    """
    return completeness(path)[0]


def completeness(path):
    """`(is_complete(path), its provenance or None)`, reading the provenance once."""
    if not storage.exists(join(path, SAVED_MODEL_FILE)):
        return False, None
    record = read_record(path)
    return record is None or "files" not in record or storage.exists(join(path, COMPLETE)), record


def files_of(export_dir, record=None):
    """The files the export at `export_dir` wrote (relative paths).

    Its provenance's `files`; for an export of ours from before file lists,
    the files of the SavedModel layout; for anything else (replaced with
    `overwrite=True`), every file.
    """
    record = read_record(export_dir) if record is None else record
    if record is not None and "files" in record:
        return [str(f) for f in record["files"]]  # no listing: on object stores it is many calls
    everything = storage.list_files(export_dir)
    if record is None:
        return everything
    return [f for f in everything if any(f == k or (k.endswith("/") and f.startswith(k)) for k in _KNOWN_LAYOUT)]


def version_names(export_dir):
    """{version: name} of the integer-named entries of `export_dir`."""
    if not storage.isdir(export_dir):
        return {}
    return {int(n): n for n in storage.listdir(export_dir) if VERSION_NAME.match(n)}


def published_versions(base_dir):
    """The complete, visible versions under `base_dir`, sorted (ints).

    What a server should choose from (the newest is the last): integer-named
    directories holding a whole SavedModel. A version of ours still being
    copied to an object store, or left half-copied by a crash, is not listed
    (no commit marker yet); versions written by others are listed once they
    have `saved_model.pb`.

    Example:

    ```python
    versions = published_versions("s3://bucket/models/churn")
    if versions:
        serve(f"s3://bucket/models/churn/{versions[-1]}")
    ```

    Args:
        base_dir: a versioned base directory (local path, `s3://`, `gs://`, ...).
    """
    return sorted(n for n, name in version_names(base_dir).items() if is_complete(join(base_dir, name)))


def newest_published_version(base_dir):
    """`published_versions(base_dir)[-1]`, or None, checking versions newest
    first: a server polling an object store reads one or two versions per
    poll, not every version kept."""
    for number, name in sorted(version_names(base_dir).items(), reverse=True):
        if is_complete(join(base_dir, name)):
            return number
    return None


def claim_next(export_dir, try_claim, first=None):
    """Claims the next free version number of `export_dir`; returns it.

    `try_claim(number)` puts the export at that number and returns True, or
    returns False when the number is taken (by another writer, or a folder
    not ours); numbers above every existing version are tried next.
    """
    number = first if first is not None else max(version_names(export_dir), default=0) + 1
    for _ in range(MAX_CLAIM_ATTEMPTS):
        if try_claim(number):
            return number
        number = max(number, max(version_names(export_dir), default=0)) + 1
    raise RuntimeError(
        f"Could not claim a version number under {export_dir!r} after {MAX_CLAIM_ATTEMPTS} attempts."
    )


def our_versions(export_dir):
    """{version: provenance} of the complete exports of ours in `export_dir`."""
    found = {}
    for number, name in version_names(export_dir).items():
        path = join(export_dir, name)
        if storage.is_symlink(path):
            continue
        complete, record = completeness(path)
        if complete and record is not None:
            found[number] = record
    return found
