"""Object stores through fsspec: `s3://` (s3fs), `gs://` (gcsfs), `abfs://` (adlfs).

TensorFlow 2.21 has no S3 file system (tensorflow-io no longer loads with it),
and its built-in `gs://` client cannot be pointed at another endpoint. So
exports are staged and verified on local disk and then copied to the store
with fsspec, the ecosystem's maintained file-system layer; `storage` sends
every call on such a path here. Credentials and endpoints come from each
library's own settings (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...;
`GOOGLE_APPLICATION_CREDENTIALS`, `STORAGE_EMULATOR_HOST`; `AZURE_STORAGE_*`).

`gs://` without gcsfs falls back to TensorFlow's built-in client (gfile);
`s3://` and `abfs://` without their package are refused (`check_reachable`),
naming the extra to install.
"""

import functools
import importlib.util
import os

from xai_callback.errors import DestinationError

# scheme -> (the fsspec package, the extra of xai-callback that installs it)
SCHEMES = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
    "az": ("adlfs", "azure"),
}
# Schemes TensorFlow reads itself when their fsspec package is missing.
TENSORFLOW_BUILT_IN = ("gs",)


def scheme_of(path):
    """`"s3"` for `s3://bucket/key`; None for a local path."""
    path = str(path)
    return path.split("://", 1)[0].lower() if "://" in path else None


@functools.lru_cache(maxsize=None)
def _installed(package):
    return importlib.util.find_spec(package) is not None


def handles(path):
    """True when `path` goes through fsspec (its scheme's package is installed)."""
    scheme = scheme_of(path)
    return scheme in SCHEMES and _installed(SCHEMES[scheme][0])


def check_reachable(path, argument="export_dir"):
    """Refuses a path on an object store no installed file system can reach.

    Raises:
        DestinationError: `s3://` without s3fs, `abfs://` without adlfs (the
            message names the extra to install).
    """
    scheme = scheme_of(path)
    if scheme not in SCHEMES or handles(path) or scheme in TENSORFLOW_BUILT_IN:
        return
    package, extra = SCHEMES[scheme]
    raise DestinationError(
        f"{argument}={str(path)!r}: no file system for {scheme}:// is installed (TensorFlow has none). "
        f"Install it with: pip install \"xai-callback[{extra}]\" (fsspec's {package})."
    )


# Settings that point a client at another server (emulators, MinIO, ...): a
# file system made before one of them changed would still talk to the old one.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STORAGE_EMULATOR_HOST")


@functools.lru_cache(maxsize=None)
def _file_system(protocol, pid, endpoints):
    import fsspec

    # No listing cache: other processes publish beside us, and what a listing
    # says must be what the store holds now (published_versions is polled).
    return fsspec.filesystem(protocol, use_listings_cache=False, skip_instance_cache=True)


def file_system(path):
    """The fsspec file system of `path` (one per scheme, process and endpoint settings)."""
    endpoints = tuple(os.environ.get(name) for name in ENDPOINT_VARIABLES)
    return _file_system(scheme_of(path), os.getpid(), endpoints)


def _key(path):
    """`bucket/key` without the scheme and trailing slashes, as fsspec lists them."""
    return str(path).split("://", 1)[1].rstrip("/")


def exists(path):
    return file_system(path).exists(_key(path))


def isdir(path):
    return file_system(path).isdir(_key(path))


def listdir(path):
    entries = file_system(path).ls(_key(path), detail=False)
    prefix = _key(path) + "/"
    return sorted({entry.rstrip("/")[len(prefix):].split("/", 1)[0]
                   for entry in entries if entry.rstrip("/").startswith(prefix)})


def list_files(root):
    """Relative paths of the objects under `root` (directories are not objects)."""
    key = _key(root)
    found = file_system(root).find(key, detail=False)
    return sorted(f[len(key) + 1:] for f in found if f.startswith(key + "/") and not f.endswith("/"))


def read_bytes(path):
    return file_system(path).cat_file(_key(path))


def write_bytes(path, data):
    """One PUT: the object appears whole or not at all."""
    file_system(path).pipe_file(_key(path), data)


def upload(local, path):
    file_system(path).put_file(str(local), _key(path))


def download(path, local):
    file_system(path).get_file(_key(path), str(local))


def copy(src, dst):
    """A copy inside the store (server side when both are on one store)."""
    if scheme_of(src) == scheme_of(dst):
        file_system(src).copy(_key(src), _key(dst))
    else:
        write_bytes(dst, read_bytes(src))


def remove(path):
    try:
        file_system(path).rm_file(_key(path))
    except FileNotFoundError:
        pass


def rmtree(path):
    fs = file_system(path)
    try:
        keys = fs.find(_key(path), detail=False)
    except FileNotFoundError:
        return
    if keys:
        fs.rm(keys)
