"""File operations on export paths, all through `tf.io.gfile`.

Going through gfile (never `os`/`shutil`) is what lets `export_dir` be a
`gs://`, `s3://` (with tensorflow-io), `hdfs://` or `ram://` path.
"""

import json

import tensorflow as tf

from xai_callback.layout import join

gfile = tf.io.gfile


def exists(path):
    return gfile.exists(str(path))


def isdir(path):
    return gfile.isdir(str(path))


def makedirs(path):
    gfile.makedirs(str(path))


def listdir(path):
    names = [name.rstrip("/") for name in gfile.listdir(str(path))]
    if str(path).startswith("ram://"):
        # TF's in-memory file system matches by string prefix, so listing
        # "x/assets" also yields ".extra" from "x/assets.extra/...".
        names = [n for n in names if gfile.exists(join(path, n))]
    return names


def rmtree(path):
    """Deletes a tree; a path that is already gone is fine."""
    try:
        if gfile.exists(str(path)):
            gfile.rmtree(str(path))
    except tf.errors.NotFoundError:
        pass


def rename(src, dst, overwrite=False):
    gfile.rename(str(src), str(dst), overwrite=overwrite)


def read_text(path):
    with gfile.GFile(str(path), "r") as f:
        return f.read()


def write_text(path, text):
    with gfile.GFile(str(path), "w") as f:
        f.write(text)


def read_json(path):
    return json.loads(read_text(path))


def write_json(path, obj):
    """Writes `obj` as indented JSON; the json module does all escaping."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def copytree(src, dst):
    """Recursively copies a directory tree (gfile has no copytree)."""
    makedirs(dst)
    for name in listdir(src):
        s, d = join(src, name), join(dst, name)
        if isdir(s):
            copytree(s, d)
        else:
            gfile.copy(s, d, overwrite=True)
