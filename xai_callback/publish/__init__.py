"""Publishing an export so readers never see half of one.

- `storage.py`: the file-system calls (`tf.io.gfile`; local atomic renames, fsync, locks).
- `placement.py`: staging, publishing, versions, keeping the N best.
- `writers.py`: liveness markers of writers (whose temporaries may be cleaned).
- `provenance.py`: what an export records about itself (versions, training, files).
"""
