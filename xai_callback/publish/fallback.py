"""When an export fails after training, the trained weights are saved instead.

A weights file is whole or absent: it is written under a hidden temporary
name and renamed into place only once complete (object stores: written
locally, then uploaded in one PUT, which the store makes visible whole or not
at all). A failed attempt (a full disk, `ulimit -f`) leaves no file under the
name an error reports.
"""

import os
import tempfile
import uuid

from xai_callback._keras import weights_file_bytes
from xai_callback.errors import ExportFailedError
from xai_callback.names import join
from xai_callback.publish import placement, storage

# Keras 3 saves weights only to names ending so (tf-keras picks HDF5 by it).
WEIGHTS_SUFFIX = ".weights.h5"


def save_fallback_weights(model, export_dir, cause=None, versioned=False):
    """Saves `model`'s weights on the export's own file system, else in the temp folder.

    Tried in order: inside a versioned base directory (or a mounted
    `export_dir`), where TF Serving ignores the non-numeric file; next to
    `export_dir`; the system temp folder.

    Example:

    ```python
    path = save_fallback_weights(model, "exports/churn", cause="disk full")
    model.load_weights(path)
    ```

    Args:
        model: the Keras model whose weights to keep.
        export_dir: the export that failed.
        cause: what failed, quoted when nothing could be saved.
        versioned: whether `export_dir` is a versioned base directory.

    Returns:
        The path written (a complete file).

    Raises:
        ExportFailedError: no place was writable; names every place tried,
            its error and `cause`.
    """
    parent, name = placement.split_path(export_dir)
    token = uuid.uuid4().hex[:8]
    # Bounded so an over-long export name cannot make the fallback fail too.
    filename = f"{name[:80]}.xai-fallback-{token}{WEIGHTS_SUFFIX}"
    places = [parent, tempfile.gettempdir()]
    if (versioned or storage.is_mount(export_dir)) and storage.isdir(export_dir):
        places.insert(0, str(export_dir).rstrip("/"))
    errors = []
    for directory in places:
        path = join(directory, filename)
        try:
            storage.makedirs(directory)
            save_whole(model, path)
            return path
        except Exception as e:  # noqa: BLE001 - try the next place
            errors.append(f"{path}: {type(e).__name__}: {e}")
    raise ExportFailedError(
        f"Exporting to {export_dir!r} failed ({cause}) and the weights could not be "
        "saved anywhere (no file was left under these names): " + "; ".join(errors)
    )


def save_whole(model, path):
    """`model.save_weights(path)`, with `path` appearing only once complete.

    The file is made in memory where Keras allows (`_keras.weights_file_bytes`)
    and written with plain I/O; otherwise Keras writes it under the temporary
    name.
    """
    data = weights_file_bytes(model)
    if not storage.is_local(path):
        if data is not None:
            storage.write_bytes(path, data)  # one PUT
            return
        local = tempfile.mkdtemp(prefix="xai-fallback-")
        try:
            written = os.path.join(local, os.path.basename(path))
            model.save_weights(written)
            storage.copy_file(written, path)
        finally:
            storage.rmtree(local)
        return
    directory, name = os.path.split(path)
    partial = os.path.join(directory, f".{name[:-len(WEIGHTS_SUFFIX)]}.partial{WEIGHTS_SUFFIX}")
    try:
        if data is None:
            model.save_weights(partial)
        else:
            _write_file(partial, data)
        storage.sync_file(partial)
        os.rename(partial, path)
    except BaseException:
        storage.remove(partial)
        raise
    storage.sync_dir(directory)


def _write_file(path, data):
    """Writes all of `data` to a new file; a short write (EFBIG, ENOSPC) raises OSError."""
    with open(path, "xb") as f:
        f.write(data)
