"""A server explaining with 80 distinct stepCounts: its resident memory before and after.

Run by test_serve_rollout.py in its own process, so other tests' allocations do not blur
the figure. Prints `RESULT {"rss_mb": [before, after], "seconds": [...]}`.
"""

import gc
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import xai_callback  # noqa: E402
from memory_script import resident_mb  # noqa: E402
from models import trained_mlp  # noqa: E402
from serve_helpers import ThreadServer, request  # noqa: E402
from subprocess_runs import print_result  # noqa: E402


def main(values):
    model, x = trained_mlp()
    path = xai_callback.export_explainable_model(model, os.path.join(tempfile.mkdtemp(), "m")).path
    body = {"instances": x[:2].tolist()}
    with ThreadServer(path) as server:
        def explain(steps):
            start = time.perf_counter()
            status, answer, _ = request(server.port, "POST", "/v1/models/m:explain",
                                        {**body, "parameters": {"stepCount": steps}})
            assert status == 200, answer
            return time.perf_counter() - start

        for steps in (97, 98, 99, 100):  # the first traces of every kind
            explain(steps)
        gc.collect()
        before = resident_mb()
        seconds = [explain(steps) for steps in range(1, values + 1)]
        gc.collect()
        after = resident_mb()
        repeated = [explain(50) for _ in range(10)]
    print_result(rss_mb=[before, after], seconds=seconds, repeated=repeated)


if __name__ == "__main__":
    main(int(sys.argv[1]))
