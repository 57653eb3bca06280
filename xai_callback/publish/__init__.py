"""Publishing an export so readers never see half of one (docs/destinations.md).

- `destination.py`: `Destination`, an `export_dir` resolved and checked once (writability probe included).
- `staging.py`: the write protocol, `with staging(destination) as s: ...; s.publish(ranking)`.
- `local_placement.py`, `store_placement.py`: putting a staged export in place on a local disk
  (renames, atomic swaps, fsync) or an object store (ordered copies); one interface.
- `placement.py`: what is published where (complete exports, versions); the read side.
- `ranking.py`: `Ranking`, "publish only if better" and "keep the N best".
- `cleanup.py`: temporaries of gone writers, versions beyond `keep`.
- `writers.py`: liveness markers of writers (whose temporaries may be cleaned).
- `storage.py`, `object_stores.py`: file operations (gfile; fsspec for s3://, gs://, abfs://).
- `local_copy.py`: a cached local copy of an object-store export, for what loads SavedModels.
- `fallback.py`: the trained weights, whole or absent, when an export fails.
- `provenance.py`: what an export records about itself (versions, training, files).
"""
