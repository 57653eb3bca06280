"""A fallback weights write that itself fails: `ulimit -f` (RLIMIT_FSIZE) below the
size of the SavedModel and of the weights file, SIGXFSZ ignored so writes fail
with EFBIG instead of killing the process.

Usage: fallback_limit_script.py EXPORT_DIR TEMP_FOLDER LIMIT_BYTES
Prints `RESULT {"error": message or None, "fallback_path": ...}`.
"""

import os
import resource
import signal
import sys
import tempfile

import keras

from subprocess_runs import print_result
from xai_callback import ExportFailedError, XaiExportCallback
from models import N_FEATURES, tabular_data


def main():
    export_dir, temp_folder, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tempfile.tempdir = temp_folder  # the system temp folder, inside the test's directory
    keras.utils.set_random_seed(0)
    inputs = keras.Input((N_FEATURES,), name="feats")
    hidden = keras.layers.Dense(4096, activation="tanh")(inputs)  # 80 KiB of weights
    model = keras.Model(inputs, keras.layers.Dense(1, name="score")(hidden))
    model.compile("sgd", "mse")
    callback = XaiExportCallback(export_dir)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    x, y = tabular_data(rows=16)
    try:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    except ExportFailedError as e:
        print_result(error=str(e), fallback_path=e.fallback_path)
        return
    print_result(error=None, fallback_path=None, exists=os.path.exists(export_dir))


if __name__ == "__main__":
    main()
