"""Export worker for the crash-safety tests: imports TensorFlow once, forks per job.

TensorFlow is imported here but runs no op before forking, which is what makes
fork safe; each forked child builds a tiny model and exports, with the storage
functions wrapped (tests/faults.py) so it SIGKILLs itself at one fault point.
This pays the TensorFlow import (~6-10 s) once instead of once per kill.

Protocol (stdin -> stdout, one JSON object a line):
  {"jobs": [{"dir": ..., "fault": "N" | "N:SECONDS" | null, "versioned": bool,
             "keep": int | null, "rounds": int, "start_at": float | null}, ...],
   "parallel": int}
  -> {"results": [{"dir": ..., "killed": bool, "rc": int, "points": int | null,
                   "trace": [...] | null}, ...]}
"""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402,F401  (imported before fork on purpose)
import xai_callback  # noqa: E402
from faults import Faults  # noqa: E402


def kill_now(operation=None):
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after(seconds):
    def start(operation=None):
        timer = threading.Timer(seconds, kill_now)
        timer.daemon = True
        timer.start()

    return start


def run_job(job, report_fd):
    """`fault` "N" kills at fault point N; "N:SECONDS" that long after reaching it."""
    at, _, delay = (job.get("fault") or "").partition(":")
    action = (kill_after(float(delay)) if delay else kill_now) if at else None
    faults = Faults(at=int(at) if at else None, action=action).install()
    from models import mlp

    model = mlp(seed=1)
    exporter = xai_callback.ExplainableExporter(model, versioned=job["versioned"], keep=job.get("keep"))
    exporter.prepare()
    if job.get("start_at"):
        time.sleep(max(0.0, job["start_at"] - time.time()))
    for round_ in range(job.get("rounds", 1)):
        exporter.export(job["dir"], training_info={"writer": os.getpid(), "round": round_})
    report = {"points": faults.count, "trace": faults.trace}
    os.write(report_fd, json.dumps(report).encode())


def fork_job(job):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        code = 0
        try:
            run_job(job, write_fd)
        except BaseException as e:  # noqa: BLE001 - report and exit
            os.write(write_fd, json.dumps({"error": repr(e)}).encode())
            code = 1
        os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def collect(pid, read_fd, job):
    chunks = []
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    report = json.loads(b"".join(chunks) or b"{}")
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return {"dir": job["dir"], "fault": job.get("fault"), "killed": killed,
            "rc": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1, **report}


def main():
    request = json.loads(sys.stdin.readline())
    jobs, parallel = request["jobs"], request.get("parallel", 1)
    results, running = [], []
    for job in jobs:
        running.append((*fork_job(job), job))
        if len(running) >= parallel:
            results.append(collect(*running.pop(0)))
    results += [collect(*r) for r in running]
    print(json.dumps({"results": results}), flush=True)


if __name__ == "__main__":
    main()
