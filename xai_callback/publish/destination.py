"""Where an export goes, resolved once: local or object store, versioned or not.

A `Destination` is made when the callback (or `export()`) is given
`export_dir`: the path is normalised, the place of the temporaries is fixed
(beside a non-versioned export, inside a versioned base directory), the kind
of storage chosen (`LocalPlacement` or `StorePlacement`), and everything that
would only fail after training is checked now: a destination that would
clobber files not ours, a path around the working directory, a scheme no
installed file system reaches, and (`probe`) a place that cannot be written.
"""

import os
import uuid

from xai_callback.arguments import check_bool, check_int
from xai_callback.errors import DestinationError
from xai_callback.names import join
from xai_callback.publish import object_stores, placement, storage
from xai_callback.publish.local_placement import LocalPlacement
from xai_callback.publish.store_placement import StorePlacement


def check_version_options(versioned, keep):
    """Checks `versioned` and `keep` (constructor arguments).

    Raises:
        TypeError: `versioned` is not a bool, `keep` not an int or None.
        ValueError: `keep` < 1, or `keep` without `versioned=True`.
    """
    versioned = check_bool("versioned", versioned)
    keep = check_int("keep", keep, minimum=1, optional=True)
    if keep is not None and not versioned:
        raise ValueError(
            f"keep={keep!r} needs versioned=True (a non-versioned export_dir holds one "
            "export only)."
        )
    return versioned, keep


class Destination:
    """An `export_dir` and how exports are put there.

    Example:

    ```python
    destination = Destination("s3://bucket/models/churn", versioned=True, keep=3)
    destination.check()
    destination.probe()   # creates and removes a file where the export will go
    with staging(destination) as staged:
        ...
    ```

    Args:
        export_dir: a local path or an object-store URL (`s3://`, `gs://`,
            `abfs://`, or a TensorFlow file system such as `ram://`).
        versioned: exports go to `export_dir/<integer>/`.
        overwrite: a non-empty `export_dir` that is not an export of ours may
            be replaced.
        keep: with `versioned`, how many of our versions to keep.

    Raises:
        TypeError, ValueError: an argument of the wrong type or value.
        DestinationError: an object store no installed file system reaches.
    """

    def __init__(self, export_dir, *, versioned=False, overwrite=False, keep=None):
        if not isinstance(export_dir, str) and not hasattr(export_dir, "__fspath__"):
            raise TypeError(
                f"export_dir must be a path string; received {export_dir!r} of type "
                f"{type(export_dir).__name__}."
            )
        self.given = str(os.fspath(export_dir))
        if not self.given:
            raise ValueError("export_dir must be a non-empty path; received ''.")
        self.versioned, self.keep = check_version_options(versioned, keep)
        self.overwrite = check_bool("overwrite", overwrite)
        self.local = storage.is_local(self.given)
        # "model/." and "a/b/.." name the folder they resolve to: its name and
        # parent are where the temporaries go, never inside it.
        self.path = os.path.normpath(self.given) if self.local else self.given.rstrip("/")
        object_stores.check_reachable(self.path)
        if not self.local and not object_stores.handles(self.path):
            _check_tensorflow_scheme(self.path, self.given)
        self.parent, self.name = placement.split_path(self.path)
        # Temporaries (staging, retired copies, writer markers) on the
        # destination's own file system: inside a versioned base directory
        # (hidden, non-numeric, so TF Serving ignores them), else beside it.
        self.temporaries = (self.path, "") if self.versioned else (self.parent, "." + self.name)
        self.placement = (LocalPlacement if self.local else StorePlacement)(self)

    def __repr__(self):
        return (f"Destination({self.path!r}, versioned={self.versioned}, overwrite={self.overwrite}, "
                f"keep={self.keep})")

    def temporary(self, mark, token):
        """The path of one temporary (`placement.STAGING_MARK`, ...) of writer `token`."""
        directory, prefix = self.temporaries
        return join(directory, f"{prefix}{mark}{token}")

    # -- checks ---------------------------------------------------------------

    def check(self):
        """Refuses a destination that would clobber something not ours.

        Raises:
            DestinationError (a ValueError and FileExistsError): `export_dir`
                is a file; or, non-versioned, a symbolic link (also written
                with a trailing slash), a mount point, a directory with a
                mount point inside, the working directory or one around it,
                or a non-empty directory that is not a previous export of
                this package (unless `overwrite`); or, versioned, a
                non-versioned export.
        """
        if not self.versioned:
            self._check_not_around_working_directory()
        if storage.is_symlink(self.given) and not self.versioned:
            raise DestinationError(
                f"export_dir={self.given!r} is a symbolic link; a non-versioned export "
                "replaces it as a whole, so pass the real directory path."
            )
        if not storage.exists(self.path):
            self._check_ancestors()
            return
        if not storage.isdir(self.path):
            raise DestinationError(
                f"export_dir={self.given!r} is a file; it must be a directory "
                "path (existing or not)."
            )
        if self.versioned:
            if storage.exists(join(self.path, placement.SAVED_MODEL_FILE)):
                raise DestinationError(
                    f"export_dir={self.given!r} holds a SavedModel itself; versioned=True "
                    "writes numbered SavedModels inside a base directory. Use another path."
                )
            return
        self._check_no_mount()
        if self.overwrite or placement.is_our_export(self.path) or not storage.listdir(self.path):
            return
        raise DestinationError(
            f"export_dir={self.given!r} is a non-empty directory that is not an "
            "export of xai-callback; refusing to replace it. Choose another path or "
            "pass overwrite=True."
        )

    def _check_not_around_working_directory(self):
        """A non-versioned export replaces its folder as a whole: never the
        folder the process works in (its staging copy would even land inside it)."""
        if not self.local:
            return
        absolute = os.path.abspath(self.path)
        where = "the root directory" if absolute == os.path.dirname(absolute) else None
        cwd = os.getcwd()
        if where is None and (cwd == absolute or cwd.startswith(absolute.rstrip("/") + "/")):
            where = ("the current working directory" if cwd == absolute
                     else f"a folder around the current working directory ({cwd!r})")
        if where is None:
            return
        raise DestinationError(
            f"export_dir={self.given!r} is {where} ({absolute!r}); a non-versioned export "
            "replaces its directory as a whole, and is staged beside it. Export to a folder "
            f"inside it, e.g. {os.path.join(self.given, 'model')!r}, or pass versioned=True "
            "(numbered exports are written inside it)."
        )

    def _check_no_mount(self):
        """A mount point cannot be renamed (EBUSY) nor renamed onto (EXDEV)."""
        if not self.local:
            return
        name = self.given.rstrip("/")
        if storage.is_mount(name):
            raise DestinationError(
                f"export_dir={self.given!r} is a mount point (e.g. a Docker or Kubernetes "
                "volume): a non-versioned export replaces its directory as a whole, which a mount "
                "point does not allow. Pass versioned=True (numbered exports are written inside "
                f"it, as TF Serving reads them) or export to a folder inside it, e.g. {name + '/model'!r}."
            )
        for directory, subdirs, _ in os.walk(name):
            for sub in subdirs:
                if os.path.ismount(os.path.join(directory, sub)):
                    raise DestinationError(
                        f"export_dir={self.given!r} has a mount point inside it "
                        f"({os.path.join(directory, sub)!r}); replacing the export would move or "
                        "delete that volume's files. Mount it elsewhere or choose another export_dir."
                    )

    def _check_ancestors(self):
        """A local path below a file can never be created: say so now."""
        if not self.local:
            return
        parent = _nearest_existing(os.path.dirname(os.path.abspath(self.path)))
        if storage.exists(parent) and not storage.isdir(parent):
            raise DestinationError(
                f"export_dir={self.given!r} lies below {parent!r}, which is a file, "
                "so it can never be created."
            )

    def probe(self):
        """Creates and removes a file where the export will be staged and put.

        Local: in the directory of the temporaries (or the nearest existing
        folder above it, which the export would create it in). Object
        stores: beside the export in the store, and in the local staging
        folder. Costs one create and one delete each.

        Raises:
            DestinationError: the file cannot be created, with the reason
                (read-only file system, permission denied, no such bucket).
        """
        token = uuid.uuid4().hex[:16]
        places = [self.temporary(placement.PROBE_MARK, token)]
        if not self.local:
            staging_dir, prefix = self.placement.staging_area()
            places.append(join(staging_dir, f"{prefix}{placement.PROBE_MARK}{token}"))
        for path in places:
            if storage.is_local(path):
                directory, name = os.path.split(path)
                path = os.path.join(_nearest_existing(directory), name)
            try:
                _create_and_remove(path)
            except storage.ERRORS as e:
                reason = getattr(e, "strerror", None) or getattr(e, "message", None) or str(e)
                raise DestinationError(
                    f"export_dir={self.given!r} cannot be written: creating {path!r} failed "
                    f"({type(e).__name__}: {reason}). Choose a writable export_dir (or make this "
                    "one writable) before training."
                ) from e


def _check_tensorflow_scheme(path, given):
    """A scheme neither fsspec nor TensorFlow's gfile knows: say so now."""
    try:
        storage.exists(path)
    except storage.ERRORS as e:
        if "not implemented" not in str(e):
            return  # reachable, but e.g. not readable now: the probe says why
        raise DestinationError(
            f"export_dir={given!r}: no file system for {object_stores.scheme_of(path)}:// "
            f"(TensorFlow: {getattr(e, 'message', e)}). Use a local path, s3://, gs:// or abfs:// "
            f"(extras [s3], [gcs], [azure]), or a scheme TensorFlow has (ram://, hdfs://)."
        ) from e


def _nearest_existing(directory):
    """`directory`, or its nearest existing ancestor (local)."""
    directory = os.path.abspath(directory)
    while not os.path.lexists(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    return directory


def _create_and_remove(path):
    if storage.is_local(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(path)
        return
    storage.write_text(path, "")
    storage.remove(path)
