"""Putting a finished export in place so readers never see half of one.

An export is written to a hidden staging directory, checked there, and only
then published; a reader (or TF Serving) sees the previous export or the new
one, never a mixture, and never loses the previous one to a failed or killed
replace.

- Every export lists the files it wrote in its provenance (`files`) and ends
  with a commit marker, `assets.extra/xai_callback_complete.json`, written
  last. An export of ours is complete when it has `saved_model.pb` and that
  marker (`is_complete`); `published_versions` lists the complete versions.
- Non-versioned (`export_dir` is the SavedModel): staging is the sibling
  `.NAME.xai-staging-TOKEN`. A first export is one `rename`. Replacing an old
  export on a local disk: files in `export_dir` the old export did not write
  (`assets.extra/tf_serving_warmup_requests`, a checkpoint folder) are
  hard-linked into the staging copy, then one atomic swap (`renameat2`
  RENAME_EXCHANGE) puts it in place and the old tree is deleted; without
  the swap, two renames (old -> `.NAME.xai-retired-TOKEN`, new -> `export_dir`),
  after a crash between which the next export restores the retired one.
- Versioned (`export_dir/<integer>/`, TF Serving's layout): staging is
  `export_dir/.xai-staging-TOKEN` (hidden, non-numeric, so TF Serving ignores
  it); a local `rename` that refuses an existing target (`renameat2`
  RENAME_NOREPLACE) claims the next number, so two writers never share one.
- Object stores (`gs://`, `s3://`, `ram://`, ...) have no atomic rename: files
  are copied one by one, the provenance first (so a partial copy is
  recognisably ours and lists its files), `saved_model.pb` next to last (what
  TF Serving loads) and the commit marker last. A non-versioned replace first
  copies the old export's files to `.NAME.xai-retired-TOKEN`, then deletes only
  those files from `export_dir` (`saved_model.pb` first) and copies the new
  ones in; until the retired copy is deleted, a crash is repaired by
  restoring it. A version number is claimed by checking that it is free and
  copying: give each versioned `export_dir` on an object store one writer.
  There TF Serving can see a version directory while it is being copied (it
  fails to load it until `saved_model.pb` arrives, and retries 5 times a
  minute apart by default);
  `published_versions` does not list it before the commit marker.
- Local disks: files, the staging directory and the parent are fsynced before
  an export is renamed into place, and the parent again before the old export
  is deleted, so a power loss leaves the old or the new export.

TOKEN names one writer (`xai_callback.publish.writers`): temporaries are deleted only
once their writer is gone (its lock released, or a day old on object
stores). Clean-up only touches names it made or directories carrying our
provenance marker, never follows symbolic links, and never leaves
`export_dir` (or, non-versioned, its own name's siblings).
"""

import contextlib
import math
import os
import re

import tensorflow as tf

from xai_callback.publish import storage, writers
from xai_callback.arguments import check_bool, check_int
from xai_callback.errors import DestinationError
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

STAGING_MARK = ".xai-staging-"
RETIRED_MARK = ".xai-retired-"
SAVED_MODEL_FILE = "saved_model.pb"
COMPLETE_FILE = "xai_callback_complete.json"
VERSION_NAME = re.compile(r"^[0-9]+$")
# Attempts to claim a version number against concurrent writers.
MAX_CLAIM_ATTEMPTS = 1000
PUBLISH_MODES = ("every", "best")

_PROVENANCE = f"{ASSETS_EXTRA}/{PROVENANCE_FILE}"
_COMPLETE = f"{ASSETS_EXTRA}/{COMPLETE_FILE}"
# What an export written before exports listed their files consists of.
_KNOWN_LAYOUT = ("saved_model.pb", "fingerprint.pb", "variables/", "assets/", LEGACY_METADATA_FILE) + tuple(
    f"{ASSETS_EXTRA}/{name}"
    for name in (PROVENANCE_FILE, SAMPLE_FILE, VERTEX_METADATA_FILE, VERTEX_PARAMETERS_FILE, COMPLETE_FILE)
)


class NotPublished(Exception):
    """The export was not published: a better one is already in place."""


def split_path(path):
    """`(parent, name)`; the parent of `scheme://name` is `scheme://`."""
    path = str(path).rstrip("/")
    scheme, sep, rest = path.partition("://")
    prefix = scheme + sep if sep else ""
    head, _, tail = (rest if sep else path).rpartition("/")
    return (prefix + head if head else prefix or "."), tail


is_local = storage.is_local


def is_our_export(path):
    """True when `path` holds an export written by this package."""
    return storage.exists(extra_path(path, PROVENANCE_FILE))


def _read_record(path):
    from xai_callback.publish.provenance import read_provenance

    try:
        return read_provenance(path)
    except (ValueError, tf.errors.OpError):
        return None


def is_complete(path):
    """True when `path` holds a whole SavedModel (ours: with its commit marker).

    Exports that list their files are complete once the commit marker,
    written last, is there; SavedModels of others (or ours from before file
    lists) once `saved_model.pb` is.
    """
    return _completeness(path)[0]


def _completeness(path):
    """`(is_complete(path), its provenance or None)`, reading the provenance once."""
    if not storage.exists(join(path, SAVED_MODEL_FILE)):
        return False, None
    record = _read_record(path)
    return record is None or "files" not in record or storage.exists(join(path, _COMPLETE)), record


def validate_version_options(versioned, keep):
    """Checks `versioned` and `keep` (constructor arguments).

    Raises:
        TypeError: `versioned` is not a bool, `keep` not an int or None.
        ValueError: `keep` < 1, or `keep` without `versioned=True`.
    """
    versioned = check_bool("versioned", versioned)
    keep = check_int("keep", keep, minimum=1, optional=True)
    if keep is None:
        return
    if not versioned:
        raise ValueError(
            f"keep={keep!r} needs versioned=True (a non-versioned export_dir holds one "
            "export only)."
        )


def check_destination(export_dir, overwrite=False, versioned=False):
    """Refuses a destination that would clobber something not ours.

    Raises:
        DestinationError (a ValueError and FileExistsError): `export_dir` is a
            file; or, non-versioned, a symbolic link (also written with a
            trailing slash), a mount point, a directory with a mount point
            inside, or a non-empty directory that is not a previous export of
            this package (unless `overwrite`); or, versioned, a non-versioned
            export.
    """
    if storage.is_symlink(export_dir) and not versioned:
        raise DestinationError(
            f"export_dir={str(export_dir)!r} is a symbolic link; a non-versioned export "
            "replaces it as a whole, so pass the real directory path."
        )
    if not storage.exists(export_dir):
        _check_ancestors(export_dir)
        return
    if not storage.isdir(export_dir):
        raise DestinationError(
            f"export_dir={str(export_dir)!r} is a file; it must be a directory "
            "path (existing or not)."
        )
    if versioned:
        if storage.exists(join(export_dir, SAVED_MODEL_FILE)):
            raise DestinationError(
                f"export_dir={str(export_dir)!r} holds a SavedModel itself; versioned=True "
                "writes numbered SavedModels inside a base directory. Use another path."
            )
        return
    _check_no_mount(export_dir)
    if overwrite or is_our_export(export_dir) or not storage.listdir(export_dir):
        return
    raise DestinationError(
        f"export_dir={str(export_dir)!r} is a non-empty directory that is not an "
        "export of xai-callback; refusing to replace it. Choose another path or "
        "pass overwrite=True."
    )


def _check_no_mount(export_dir):
    """A mount point cannot be renamed (EBUSY) nor renamed onto (EXDEV)."""
    if not is_local(export_dir):
        return
    name = str(export_dir).rstrip("/")
    if storage.is_mount(name):
        raise DestinationError(
            f"export_dir={str(export_dir)!r} is a mount point (e.g. a Docker or Kubernetes "
            "volume): a non-versioned export replaces its directory as a whole, which a mount "
            "point does not allow. Pass versioned=True (numbered exports are written inside "
            f"it, as TF Serving reads them) or export to a folder inside it, e.g. {name + '/model'!r}."
        )
    for directory, subdirs, _ in os.walk(name):
        for sub in subdirs:
            if os.path.ismount(os.path.join(directory, sub)):
                raise DestinationError(
                    f"export_dir={str(export_dir)!r} has a mount point inside it "
                    f"({os.path.join(directory, sub)!r}); replacing the export would move or "
                    "delete that volume's files. Mount it elsewhere or choose another export_dir."
                )


def _check_ancestors(export_dir):
    """A local path below a file can never be created: say so now."""
    if not is_local(export_dir):
        return
    parent = os.path.dirname(os.path.abspath(str(export_dir)))
    while not storage.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if storage.exists(parent) and not storage.isdir(parent):
        raise DestinationError(
            f"export_dir={str(export_dir)!r} lies below {parent!r}, which is a file, "
            "so it can never be created."
        )


# -- the write protocol: begin() -> write into staging -> publish() -> end() ------

_writers = {}  # staging path -> the Writer that made it


def _where(export_dir, versioned):
    """(directory of the temporaries, their name prefix)."""
    if versioned:
        return str(export_dir), ""
    parent, name = split_path(export_dir)
    return parent, "." + name


def begin(export_dir, overwrite=False, versioned=False):
    """Checks the destination, cleans stale temporaries; returns a staging path."""
    check_destination(export_dir, overwrite, versioned)
    parent, prefix = _where(export_dir, versioned)
    storage.makedirs(parent)
    clean_stale(export_dir, versioned)
    writer = writers.Writer(parent, prefix)
    staging = join(parent, f"{prefix}{STAGING_MARK}{writer.token}")
    _writers[staging] = writer
    return staging


def end(staging):
    """Deletes what is left of `staging` and ends its writer (call in `finally`)."""
    storage.rmtree(staging)
    writer = _writers.pop(str(staging), None)
    if writer is not None:
        writer.release()


def publish(staging, export_dir, overwrite=False, versioned=False, keep=None, training_info=None):
    """Moves a finished, verified staging export into place; returns its path.

    With `training_info["publish"] == "best"`, publishes only when its ranked
    value (`best_key`) beats every complete export already there (checked
    under a lock on local disks).

    Raises:
        NotPublished: a better export is already in place.
    """
    writer = _writers.get(str(staging))
    _seal(staging, writer)
    info = training_info or {}
    key = best_key(info)
    only_if_better = info.get("publish") == "best" and key is not None
    with _publish_lock(export_dir, versioned) if only_if_better else contextlib.nullcontext():
        if only_if_better:
            check_beats_published(export_dir, versioned, key, recorded_score({"training": info}, *key))
        if not versioned:
            place(staging, export_dir, overwrite, writer)
            return str(export_dir)
        version = claim_version(staging, export_dir)
        if keep is not None:
            prune_versions(export_dir, keep, protect=version, best=key)
    return join(export_dir, str(version))


def _seal(staging, writer):
    """Lists the export's files in its provenance, then writes the commit marker."""
    from xai_callback.publish.provenance import write_provenance

    record = _read_record(staging)
    if record is not None:
        record["files"] = sorted(set(storage.list_files(staging)) | {_COMPLETE})
        if writer is not None:
            record["writer"] = writer.token
        write_provenance(staging, record)
    storage.write_json(join(staging, _COMPLETE), {"writer": getattr(writer, "token", None)})


@contextlib.contextmanager
def _publish_lock(export_dir, versioned):
    """Serialises compare-and-publish between processes (local disks).

    The lock is a `flock` on the directory the exports live in (the base
    directory, or the parent of a non-versioned export), so no file is left.
    """
    lock = None
    if is_local(export_dir):  # object stores: one writer per export_dir (module docstring)
        try:
            lock = storage.FileLock(_where(export_dir, versioned)[0], blocking=True)
        except OSError:
            lock = None  # a file system without flock: publish unserialised
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _token_of(staging):
    """The writer token at the end of a staging path."""
    return str(staging).rsplit(STAGING_MARK, 1)[-1]


def _retired_path(export_dir, versioned, token):
    """Where the old export waits, hidden, while it is replaced (`token`: its writer's)."""
    parent, prefix = _where(export_dir, versioned)
    return join(parent, f"{prefix}{RETIRED_MARK}{token}")


# -- non-versioned -----------------------------------------------------------------


def place(staging, export_dir, overwrite=False, writer=None):
    """Moves a finished staging export to `export_dir`, replacing an old one.

    Only the files the old export wrote are replaced; others survive.
    """
    check_destination(export_dir, overwrite)
    parent = split_path(export_dir)[0]
    if not storage.exists(export_dir):
        if is_local(export_dir):
            storage.sync_tree(staging)
            storage.sync_dir(parent)
            storage.rename(staging, export_dir)
            storage.sync_dir(parent)
        else:
            copy_files(staging, export_dir)
        return
    old_files = files_of(export_dir)
    if not is_local(export_dir):
        own = writer is None
        writer = writer or writers.Writer(*_where(export_dir, False))
        try:
            _replace_files(staging, export_dir, old_files, _retired_path(export_dir, False, writer.token))
        finally:
            if own:
                writer.release()
        return
    carry_over(export_dir, staging, old_files)
    storage.sync_tree(staging)
    storage.sync_dir(parent)
    if storage.exchange(staging, export_dir):
        storage.sync_dir(parent)  # the swap is on disk before the old tree goes
        storage.rmtree(staging)  # now holds the old export
        return
    retired = _retired_path(export_dir, False, _token_of(staging))
    storage.rename(export_dir, retired)
    storage.sync_dir(parent)
    storage.rename(staging, export_dir)
    storage.sync_dir(parent)
    storage.rmtree(retired)


def files_of(export_dir):
    """The files the export at `export_dir` wrote (relative paths).

    Its provenance's `files`; for an export of ours from before file lists,
    the files of the SavedModel layout; for anything else (replaced with
    `overwrite=True`), every file.
    """
    record = _read_record(export_dir)
    if record is not None and "files" in record:
        return [str(f) for f in record["files"]]  # no listing: on object stores it is many calls
    everything = storage.list_files(export_dir)
    if record is None:
        return everything
    return [f for f in everything if any(f == k or (k.endswith("/") and f.startswith(k)) for k in _KNOWN_LAYOUT)]


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
        storage.makedirs(split_path(join(staging, relative))[0])
        storage.link_or_copy(join(export_dir, relative), join(staging, relative))


def _copy_order(relative):
    """Provenance first (marks a partial copy as ours), model then marker last."""
    return {_PROVENANCE: 0, SAVED_MODEL_FILE: 2, _COMPLETE: 3}.get(relative, 1), relative


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
        directory = split_path(join(dst, relative))[0]
        if directory not in made:
            storage.makedirs(directory)
            made.add(directory)
        storage.copy_file(source, join(dst, relative))


def delete_files(root, files):
    """Deletes `files` of `root`: `saved_model.pb` first, provenance last.

    Directories left empty by it are removed; other files stay.
    """
    order = {SAVED_MODEL_FILE: 0, _COMPLETE: 1, _PROVENANCE: 3}
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


def _replace_files(staging, export_dir, old_files, retired):
    """Object stores: old files -> complete retired copy, delete them, copy new."""
    if is_complete(export_dir):
        copy_files(export_dir, retired, old_files)
    delete_files(export_dir, old_files)
    copy_files(staging, export_dir)
    storage.rmtree(retired)


# -- versioned ---------------------------------------------------------------------


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
    versions = published_versions("gs://bucket/models/churn")
    if versions:
        serve(f"gs://bucket/models/churn/{versions[-1]}")
    ```

    Args:
        base_dir: a versioned base directory (local path or gfile URL).
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


def claim_version(staging, export_dir, first=None):
    """Moves `staging` to the next free `export_dir/<n>`; returns n.

    Local disks: the rename refuses an existing target, so a taken number
    (another writer's) means trying the next; any other error is raised.
    Object stores: see the module docstring; an error while copying is a
    storage error, raised after deleting the partial copy.
    """
    number = first if first is not None else max(version_names(export_dir), default=0) + 1
    if is_local(export_dir):
        storage.sync_tree(staging)
        storage.sync_dir(export_dir)
    for _ in range(MAX_CLAIM_ATTEMPTS):
        target = join(export_dir, str(number))
        if is_local(target):
            try:
                storage.claim_rename(staging, target)
            except FileExistsError:
                pass  # lost the race for this number
            else:
                storage.sync_dir(export_dir)
                return number
        elif not storage.exists(target):
            try:
                copy_files(staging, target)
            except BaseException:
                _delete_partial(target)
                raise
            return number
        number = max(number, max(version_names(export_dir), default=0)) + 1
    raise RuntimeError(
        f"Could not claim a version number under {export_dir!r} after "
        f"{MAX_CLAIM_ATTEMPTS} attempts."
    )


def _delete_partial(target):
    try:
        record = _read_record(target)
        if record is not None and "files" in record:
            delete_files(target, record["files"])
        if storage.isdir(target) and not storage.listdir(target):
            storage.rmtree(target)
    except (tf.errors.OpError, OSError):
        pass  # the next export's clean-up deletes it


def best_key(training_info):
    """(name, 'min'|'max') an export ranks by, or None.

    The KerasTuner objective when the export comes from a tuner trial, else
    the callback's monitor in best-epoch mode.
    """
    info = training_info or {}
    tuner = info.get("tuner") or {}
    if tuner.get("objective") and tuner.get("direction") in ("min", "max"):
        return tuner["objective"], tuner["direction"]
    if info.get("monitor") and info.get("mode") in ("min", "max"):
        return info["monitor"], info["mode"]
    return None


def recorded_score(record, name, mode):
    """The value of `name` (ranked `mode`) an export's provenance records, or None."""
    training = (record or {}).get("training") or {}
    tuner = training.get("tuner") or {}
    if training.get("monitor") == name and training.get("mode") == mode:
        value = training.get("monitor_value")
    elif tuner.get("objective") == name and tuner.get("direction") == mode:
        value = tuner.get("objective_value")
    else:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def best_published(export_dir, versioned, key):
    """(value, path) of the best complete export in place by `key`, or None."""
    if versioned:
        candidates = {join(export_dir, str(n)): r for n, r in our_versions(export_dir).items()}
    else:
        complete, record = _completeness(export_dir)
        candidates = {str(export_dir): record} if complete else {}
    scored = [(recorded_score(r, *key), path) for path, r in candidates.items()]
    scored = [(v, p) for v, p in scored if v is not None]
    if not scored:
        return None
    return min(scored) if key[1] == "min" else max(scored)


def beats(value, than, mode):
    """Whether `value` is strictly better than `than` when ranked `mode` ("min" or "max")."""
    return value < than if mode == "min" else value > than


def check_beats_published(export_dir, versioned, key, value):
    """Raises NotPublished unless `value` beats every export in place by `key`."""
    best = best_published(export_dir, versioned, key)
    if best is None:
        return
    if value is None or not beats(value, best[0], key[1]):
        raise NotPublished(
            f"{key[0]}={value} does not beat {key[0]}={best[0]} of the export at "
            f"{best[1]!r}; not published."
        )


def our_versions(export_dir):
    """{version: provenance} of the complete exports of ours in `export_dir`."""
    found = {}
    for number, name in version_names(export_dir).items():
        path = join(export_dir, name)
        if storage.is_symlink(path):
            continue
        complete, record = _completeness(path)
        if complete and record is not None:
            found[number] = record
    return found


def versions_to_keep(records, keep, protect=None, best=None):
    """The versions `prune_versions` keeps.

    The newest `keep`, or with `best=(name, mode)` the `keep` with the best
    recorded value of that monitor or tuner objective (versions without one
    rank last, newest first). `protect` (the version just written) is always
    kept.
    """
    def rank(number):
        if best is None:
            return (0, -number)
        value = recorded_score(records[number], *best)
        if value is None:
            return (1, -number)
        return (0, value if best[1] == "min" else -value, -number)

    ordered = sorted(records, key=rank)
    kept = set(ordered[:keep])
    if protect is not None and protect in records and protect not in kept:
        kept.discard(ordered[keep - 1])
        kept.add(protect)
    return kept


def prune_versions(export_dir, keep, protect=None, best=None):
    """Deletes our exports beyond `keep` (see `versions_to_keep`); returns them.

    Foreign versions (no provenance marker) neither count nor get deleted.
    """
    records = our_versions(export_dir)
    names = version_names(export_dir)
    doomed = sorted(set(records) - versions_to_keep(records, keep, protect, best))
    for number in doomed:
        retire(join(export_dir, names[number]), export_dir)
    return doomed


def retire(path, export_dir):
    """Deletes one version so that no reader sees it half-deleted."""
    if is_local(path):
        writer = writers.Writer(export_dir)
        try:
            hidden = _retired_path(export_dir, True, writer.token)
            try:
                storage.rename(path, hidden)
            except (tf.errors.OpError, OSError):
                return  # another writer retired it first
            storage.sync_dir(export_dir)
            storage.rmtree(hidden)
        finally:
            writer.release()
        return
    try:  # object stores: unloadable first, then the rest
        storage.remove(join(path, SAVED_MODEL_FILE))
    except tf.errors.OpError:
        return
    storage.rmtree(path)


# -- stale temporaries -----------------------------------------------------------


def _temporary_pattern(prefix):
    return re.compile(
        rf"^{re.escape(prefix)}\.xai-(?P<kind>staging|retired|writer)-(?P<token>[0-9a-f]{{16}})(?:\.new)?$"
    )


def clean_stale(export_dir, versioned=False):
    """Deletes temporaries of writers that are gone; returns the paths deleted.

    Non-versioned, an `export_dir` that is not complete is first restored from
    a complete retired copy, and while it stays incomplete no complete retired
    copy is deleted.
    """
    parent, prefix = _where(export_dir, versioned)
    if not storage.isdir(parent):
        return []
    pattern = _temporary_pattern(prefix)
    found = {}
    for name in storage.listdir(parent):
        match = pattern.match(name)
        path = join(parent, name)
        if match and not storage.is_symlink(path):
            found.setdefault(match["token"], []).append((match["kind"], path))
    dead = {t: paths for t, paths in found.items() if not writers.is_alive(parent, prefix, t)}
    stale = [entry for paths in dead.values() for entry in paths]
    if not versioned and not is_complete(export_dir):
        retired = [p for kind, p in stale if kind == "retired" and is_complete(p)]
        if retired and _restore(retired[0], export_dir):
            stale.remove(("retired", retired[0]))
        if not is_complete(export_dir):  # keep every complete copy for later
            stale = [(k, p) for k, p in stale if not (k == "retired" and is_complete(p))]
    if versioned and not is_local(export_dir):
        stale += [("partial", path) for path in _abandoned_copies(export_dir)]
    for kind, path in sorted(stale, key=lambda e: e[0] == "writer"):  # markers last
        if kind == "writer":
            storage.remove(path)
        elif kind == "partial":
            retire(path, export_dir)
        else:
            storage.rmtree(path)
    return [path for _, path in stale]


def _abandoned_copies(export_dir):
    """Object stores: version directories whose copy was abandoned.

    Ours without the commit marker whose writer is gone, and directories
    without a single file (a copy killed before its first file).
    """
    parent, prefix = _where(export_dir, True)
    for name in version_names(export_dir).values():
        path = join(export_dir, name)
        complete, record = _completeness(path)
        if complete:
            continue
        if record is None:  # not read: no saved_model.pb yet
            record = _read_record(path)
        if record is not None:
            if not writers.is_alive(parent, prefix, str(record.get("writer"))):
                yield path
        elif all(f.endswith("/") for f in storage.list_files(path)):
            yield path


def _restore(retired, export_dir):
    """Puts a complete retired copy back at an incomplete `export_dir`."""
    if is_local(export_dir):
        if storage.exists(export_dir):
            return False  # not left by our renames: leave both for a person to look at
        storage.rename(retired, export_dir)
        storage.sync_dir(split_path(export_dir)[0])
        return True
    partial = _read_record(export_dir)
    if partial is not None and "files" in partial:
        delete_files(export_dir, partial["files"])
    copy_files(retired, export_dir, files_of(retired))
    storage.rmtree(retired)
    return True
