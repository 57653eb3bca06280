"""50 verified exports in one `fit` (export_on_improvement), resident memory after each.

Run by test_memory.py in its own process, so other tests' allocations do not
blur the figure. Prints `RESULT {"exported_epochs": [...], "rss_mb": [...]}`.
"""

import gc
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from xai_callback import XaiExportCallback  # noqa: E402
from xai_callback.publish.provenance import read_provenance  # noqa: E402

from fit_helpers import InjectMonitor  # noqa: E402
from models import mlp, tabular_data  # noqa: E402
from subprocess_runs import print_result  # noqa: E402


def resident_mb():
    """VmRSS of this process from /proc, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class RecordAfterExport(keras.callbacks.Callback):
    """After the export callback: which epoch the export holds, and RSS after a GC."""

    def __init__(self, export_dir):
        super().__init__()
        self.export_dir, self.epochs, self.rss = export_dir, [], []

    def on_epoch_end(self, epoch, logs=None):
        gc.collect()
        self.rss.append(resident_mb())
        self.epochs.append(read_provenance(self.export_dir)["training"]["epoch"])


def main(epochs):
    export_dir = os.path.join(tempfile.mkdtemp(prefix="xai_memory_"), "export")
    record = RecordAfterExport(export_dir)
    improving = InjectMonitor("val_score", np.linspace(1.0, 0.0, epochs))  # every epoch is best
    export = XaiExportCallback(export_dir, monitor="val_score", mode="min", save_best_only=True,
                               export_on_improvement=True)
    x, y = tabular_data(rows=16)
    mlp().fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[improving, export, record])
    print_result(exported_epochs=record.epochs, rss_mb=record.rss)


if __name__ == "__main__":
    main(int(sys.argv[1]))
