"""The write protocol: stage, verify, publish, so readers never see half an export.

```python
with staging(destination) as staged:
    write_the_export(staged.path)   # a hidden copy nobody reads
    verify(staged.path)
    staged.publish(ranking)         # in place whole, or not at all
```

A reader (or TF Serving) sees the previous export or the new one, never a
mixture, and never loses the previous one to a failed or killed replace.
Every export lists the files it wrote in its provenance (`files`) and ends
with a commit marker, written last (`xai_callback.publish.placement`). How
a finished copy is put in place depends on the destination's storage:
renames and atomic swaps on local disks (`local_placement`), ordered copies
on object stores (`store_placement`). TOKEN names one writer
(`xai_callback.publish.writers`), whose temporaries are cleaned only once it
is gone (`cleanup`).
"""

import contextlib

from xai_callback.names import join
from xai_callback.publish import cleanup, placement, storage, writers


class Staging:
    """One export being written: a hidden directory and its writer.

    Attributes:
        path: where to write the SavedModel and its files.
        destination: the `Destination` it will be published to.
        provenance: the provenance as published (with the file list), after
            `publish`.
    """

    def __init__(self, destination, path, writer):
        self.destination, self.path, self.writer = destination, path, writer
        self.provenance = None

    def publish(self, ranking=None):
        """Puts the finished, verified staging copy in place; returns its path.

        Args:
            ranking: a `Ranking`. With `only_if_better`, publishes only when
                its value beats every complete export already there
                (compared under a lock on local disks); with
                `destination.keep`, decides which versions are kept.
                Defaults to None: publish, and keep the newest.

        Raises:
            NotPublished: a better export is already in place.
        """
        destination, where = self.destination, self.destination.placement
        only_if_better = ranking is not None and ranking.only_if_better
        with where.publishing(self) as token:
            self.provenance = seal(self.path, token)
            with where.lock() if only_if_better else contextlib.nullcontext():
                if only_if_better:
                    ranking.check_beats_published(destination)
                if not destination.versioned:
                    destination.check()  # again: the folder may have changed during training
                    where.place(self, token)
                    return destination.path
                version = where.claim(self)
                if destination.keep is not None:
                    cleanup.prune_versions(destination, protect=version, ranking=ranking)
        return join(destination.path, str(version))

    def close(self):
        """Deletes what is left of the staging copy and ends its writer."""
        storage.rmtree(self.path)
        self.writer.release()


def begin(destination):
    """Checks the destination, cleans stale temporaries; returns a `Staging`."""
    destination.check()
    directory, prefix = destination.placement.staging_area()
    storage.makedirs(destination.temporaries[0])
    storage.makedirs(directory)
    cleanup.clean_stale(destination)
    writer = writers.Writer(directory, prefix)
    return Staging(destination, join(directory, f"{prefix}{placement.STAGING_MARK}{writer.token}"), writer)


@contextlib.contextmanager
def staging(destination):
    """A `Staging` for one export to `destination`; its leftovers go on exit.

    Example:

    ```python
    with staging(Destination("exports/churn")) as staged:
        tf.saved_model.save(model, staged.path)
        staged.publish()
    ```
    """
    staged = begin(destination)
    try:
        yield staged
    finally:
        staged.close()


def seal(staging, token):
    """Lists the export's files in its provenance, then writes the commit marker.

    Returns the provenance (None for a SavedModel written without one).
    """
    from xai_callback.publish.provenance import write_provenance

    record = placement.read_record(staging)
    if record is not None:
        record["files"] = sorted(set(storage.list_files(staging)) | {placement.COMPLETE})
        record["writer"] = token
        write_provenance(staging, record)
    storage.write_json(join(staging, placement.COMPLETE), {"writer": token})
    return record
