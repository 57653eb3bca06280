"""Putting a finished export in place so readers never see half of one.

An export is written to a hidden staging directory, checked there, and only
then published; a reader (or TF Serving) sees the previous export or the new
one, never a mixture.

- Non-versioned (`export_dir` is the SavedModel): staging is the sibling
  `.NAME.xai-staging-TOKEN`. A first export is one `rename`. Replacing an old
  export is one atomic swap on local Linux disks (`renameat2`
  RENAME_EXCHANGE), after which the old tree, now under the staging name, is
  deleted. Elsewhere it takes two renames (old -> `.NAME.xai-retired-TOKEN`,
  new -> `export_dir`); a crash between them leaves `export_dir` absent and
  the next export restores the retired one first.
- Versioned (`export_dir/<integer>/`, TF Serving's layout): staging is
  `export_dir/.xai-staging-TOKEN` (hidden, non-numeric, so TF Serving ignores
  it) and the last step claims a version number by renaming the finished
  directory to it. On a local disk `rename` onto an existing non-empty
  directory fails, so two writers racing for one number cannot both win: the
  loser retries with the next number.
- Object stores (`gs://`, `s3://`, `ram://`, ...) have no directory rename:
  files are copied with `assets.extra/` (our marker) first and
  `saved_model.pb` (what loaders look for) last, and the staging copy is
  deleted. A copy killed halfway has no `saved_model.pb`, so it is not
  loadable, and carries our marker, so the next export deletes it. There the
  version claim is check-then-copy, NOT atomic: give each `export_dir` one
  writer (e.g. only the chief).

TOKEN is `host-pid-random`. Temporaries whose process is gone (same host), or
older than a day (other hosts), are deleted by the next export. Clean-up only
touches names it made (temporaries) or directories carrying our provenance
marker, never follows symbolic links, and never leaves `export_dir`.
"""

import math
import os
import re
import socket
import time
import uuid

import tensorflow as tf

from xai_callback import storage
from xai_callback.errors import DestinationError
from xai_callback.layout import ASSETS_EXTRA, PROVENANCE_FILE, extra_path, join

STAGING_MARK = ".xai-staging-"
RETIRED_MARK = ".xai-retired-"
SAVED_MODEL_FILE = "saved_model.pb"
VERSION_NAME = re.compile(r"^[0-9]+$")
_TOKEN = r"(?P<host>[A-Za-z0-9_-]+)-(?P<pid>[0-9]+)-(?P<rand>[0-9a-f]+)"
# Temporaries of other hosts cannot be checked for a live writer.
FOREIGN_STALE_SECONDS = 24 * 3600
# Attempts to claim a version number against concurrent writers.
MAX_CLAIM_ATTEMPTS = 1000


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


def validate_version_options(versioned, keep):
    """Checks `versioned` and `keep` (constructor arguments).

    Raises:
        TypeError: `versioned` is not a bool, `keep` not an int or None.
        ValueError: `keep` < 1, or `keep` without `versioned=True`.
    """
    if not isinstance(versioned, bool):
        raise TypeError(f"versioned must be True or False; received versioned={versioned!r}.")
    if keep is None:
        return
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise TypeError(f"keep must be an int >= 1 or None; received keep={keep!r}.")
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (or None to keep all); received keep={keep!r}.")
    if not versioned:
        raise ValueError(
            f"keep={keep!r} needs versioned=True (a non-versioned export_dir holds one "
            "export only)."
        )


def check_destination(export_dir, overwrite=False, versioned=False):
    """Refuses a destination that would clobber something not ours.

    Raises:
        DestinationError (a ValueError and FileExistsError): `export_dir` is a
            file; or, non-versioned, a symbolic link or a non-empty directory
            that is not a previous export of this package (unless
            `overwrite`); or, versioned, a non-versioned export.
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
    if overwrite or is_our_export(export_dir) or not storage.listdir(export_dir):
        return
    raise DestinationError(
        f"export_dir={str(export_dir)!r} is a non-empty directory that is not an "
        "export of xai-callback; refusing to replace it. Choose another path or "
        "pass overwrite=True."
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


# -- the write protocol: begin() -> write into staging -> publish() -------------


def begin(export_dir, overwrite=False, versioned=False):
    """Checks the destination, cleans stale temporaries; returns a staging path."""
    check_destination(export_dir, overwrite, versioned)
    if versioned:
        storage.makedirs(export_dir)
    clean_stale(export_dir, versioned)
    storage.fault_point("begin")  # the staging write starts here
    return staging_path(export_dir, versioned)


def publish(staging, export_dir, overwrite=False, versioned=False, keep=None, training_info=None):
    """Moves a finished, verified staging export into place; returns its path."""
    if not versioned:
        place(staging, export_dir, overwrite)
        return str(export_dir)
    version = claim_version(staging, export_dir)
    if keep is not None:
        prune_versions(export_dir, keep, protect=version, best=best_key(training_info))
    return join(export_dir, str(version))


def _host():
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:32] or "host"


def _token():
    return f"{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def staging_path(export_dir, versioned=False):
    """A fresh hidden, non-numeric path to write the export into."""
    if versioned:
        return join(export_dir, f"{STAGING_MARK}{_token()}")
    parent, name = split_path(export_dir)
    return join(parent, f".{name}{STAGING_MARK}{_token()}")


def _retired_path(export_dir, versioned=False):
    if versioned:
        return join(export_dir, f"{RETIRED_MARK}{_token()}")
    parent, name = split_path(export_dir)
    return join(parent, f".{name}{RETIRED_MARK}{_token()}")


def _temporary_pattern(export_dir, versioned):
    prefix = "" if versioned else re.escape("." + split_path(export_dir)[1])
    return re.compile(
        rf"^{prefix}\.xai-(?P<kind>staging|retired)-{_TOKEN}$"
    )


# -- non-versioned -----------------------------------------------------------------


def place(staging, export_dir, overwrite=False):
    """Moves a finished staging export to `export_dir`, replacing an old one."""
    check_destination(export_dir, overwrite)
    if not storage.exists(export_dir):
        move_tree(staging, export_dir)
        return
    if storage.exchange(staging, export_dir):
        storage.rmtree(staging)  # now holds the old export
        return
    retired = _retired_path(export_dir)
    move_tree(export_dir, retired)
    move_tree(staging, export_dir)
    storage.rmtree(retired)


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
    # Marker first (a partial copy is recognisably ours), loadable file last.
    order = {ASSETS_EXTRA: 0, SAVED_MODEL_FILE: 2}
    for name in sorted(names, key=lambda n: (order.get(n, 1), n)):
        s, d = join(src, name), join(dst, name)
        if storage.isdir(s):
            storage.copytree(s, d)
        else:
            storage.gfile.copy(s, d, overwrite=True)


# -- versioned ---------------------------------------------------------------------


def version_names(export_dir):
    """{version: name} of the integer-named entries of `export_dir`."""
    if not storage.isdir(export_dir):
        return {}
    return {int(n): n for n in storage.listdir(export_dir) if VERSION_NAME.match(n)}


def claim_version(staging, export_dir, first=None):
    """Renames `staging` to the next free `export_dir/<n>`; returns n.

    Local disks: the rename is the claim (it fails when another writer took n
    first, and then n+1 is tried). Object stores: see the module docstring.
    """
    versions = version_names(export_dir)
    number = first if first is not None else max(versions, default=0) + 1
    for _ in range(MAX_CLAIM_ATTEMPTS):
        target = join(export_dir, str(number))
        try:
            if not is_local(target) and storage.exists(target):
                raise tf.errors.AlreadyExistsError(None, None, target)
            move_tree(staging, target)
            return number
        except (tf.errors.OpError, OSError):
            if not storage.exists(target) and not storage.is_symlink(target):
                raise  # not a lost race: a real storage error
        number = max(number, max(version_names(export_dir), default=0)) + 1
    raise RuntimeError(
        f"Could not claim a version number under {export_dir!r} after "
        f"{MAX_CLAIM_ATTEMPTS} attempts."
    )


def best_key(training_info):
    """(monitor, 'min'|'max') when an export ranks by a monitored value, else None."""
    info = training_info or {}
    if info.get("monitor") and info.get("mode") in ("min", "max"):
        return info["monitor"], info["mode"]
    return None


def our_versions(export_dir):
    """{version: provenance} of the complete exports of ours in `export_dir`."""
    from xai_callback.provenance import read_provenance

    found = {}
    for number, name in version_names(export_dir).items():
        path = join(export_dir, name)
        if storage.is_symlink(path) or not storage.exists(join(path, SAVED_MODEL_FILE)):
            continue
        try:
            record = read_provenance(path)
        except (ValueError, tf.errors.OpError):
            record = None
        if record is not None:
            found[number] = record
    return found


def published_versions(export_dir):
    """Sorted numbers of the complete exports of ours in `export_dir`.

    What a server may load: numeric directories holding `saved_model.pb` and
    our provenance file (see `our_versions`); staging and retired
    temporaries, foreign and half-copied versions are left out.
    """
    return sorted(our_versions(export_dir))


def versions_to_keep(records, keep, protect=None, best=None):
    """The versions `prune_versions` keeps.

    The newest `keep`, or with `best=(monitor, mode)` the `keep` with the best
    recorded value of that monitor (versions without one rank last, newest
    first). `protect` (the version just written) is always kept.
    """
    def rank(number):
        if best is None:
            return (0, -number)
        value = _recorded_value(records[number], *best)
        if value is None:
            return (1, -number)
        return (0, value if best[1] == "min" else -value, -number)

    ordered = sorted(records, key=rank)
    kept = set(ordered[:keep])
    if protect is not None and protect in records and protect not in kept:
        kept.discard(ordered[keep - 1])
        kept.add(protect)
    return kept


def _recorded_value(record, monitor, mode):
    training = record.get("training") or {}
    value = training.get("monitor_value")
    if training.get("monitor") != monitor or training.get("mode") != mode:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


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
        hidden = _retired_path(export_dir, versioned=True)
        try:
            storage.rename(path, hidden)
        except (tf.errors.OpError, OSError):
            return  # another writer retired it first
        storage.rmtree(hidden)
        return
    try:  # object stores: unloadable first, then the rest
        storage.gfile.remove(join(path, SAVED_MODEL_FILE))
    except tf.errors.NotFoundError:
        return
    storage.rmtree(path)


# -- stale temporaries -----------------------------------------------------------


def clean_stale(export_dir, versioned=False):
    """Deletes temporaries left by killed exports; returns the paths deleted.

    Non-versioned, a previous export left retired by a crash between the two
    renames of `place` is restored to `export_dir` first.
    """
    parent = export_dir if versioned else split_path(export_dir)[0]
    if not storage.isdir(parent):
        return []
    pattern = _temporary_pattern(export_dir, versioned)
    stale = []
    for name in storage.listdir(parent):
        match = pattern.match(name)
        path = join(parent, name)
        if match and not storage.is_symlink(path) and _is_stale(path, match):
            stale.append((match["kind"], path))
    if not versioned and not storage.exists(export_dir):
        for kind, path in stale:
            if kind == "retired" and _is_complete_export(path):
                move_tree(path, export_dir)
                stale.remove((kind, path))
                break
    if versioned and not is_local(export_dir):
        stale += [("partial", join(export_dir, n)) for n in version_names(export_dir).values()
                  if _is_partial_copy(join(export_dir, n))]
    for _, path in stale:
        storage.rmtree(path)
    return [path for _, path in stale]


def _is_complete_export(path):
    return is_our_export(path) and storage.exists(join(path, SAVED_MODEL_FILE))


def _is_partial_copy(path):
    return is_our_export(path) and not storage.exists(join(path, SAVED_MODEL_FILE))


def _is_stale(path, match):
    if match["host"] == _host():
        return not _pid_alive(int(match["pid"]))
    try:
        return time.time() - storage.mtime(path) > FOREIGN_STALE_SECONDS
    except tf.errors.OpError:
        return False


def _pid_alive(pid):
    if pid == os.getpid():
        return False  # our own leftovers: this process is not writing them now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
