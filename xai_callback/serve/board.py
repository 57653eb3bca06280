"""What each worker serves (`--workers N`), on a board every worker reads: readiness of the whole service.

The supervisor gives the workers one directory (`STATE_DIR_ENV`) and each its
index (`WORKER_ENV`). A worker writes `<index>.json` (its pid and the version
it serves) whenever it swaps a version in; `/readyz` of any worker answers 200
only when every worker has written a version, so a load balancer never sends
a request to a worker still loading. The supervisor deletes a dead worker's
file before restarting it.
"""

import json
import os

STATE_DIR_ENV = "XAI_CALLBACK_SERVE_STATE_DIR"
WORKER_ENV = "XAI_CALLBACK_SERVE_WORKER"
WORKERS_ENV = "XAI_CALLBACK_SERVE_WORKERS"


class WorkerBoard:
    """The workers' states in `directory`.

    Example:

    ```python
    board = WorkerBoard.from_environment()     # None outside a --workers N worker
    board.publish(3)
    board.not_ready()                          # "worker 1 has no version loaded yet", or None
    ```

    Args:
        directory: the shared directory.
        index: this worker's index (0..workers-1), or None for the supervisor.
        workers: how many workers there are.
    """

    def __init__(self, directory, index, workers):
        self.directory = directory
        self.index = index
        self.workers = workers

    @classmethod
    def from_environment(cls, environ=None):
        environ = os.environ if environ is None else environ
        if not environ.get(STATE_DIR_ENV):
            return None
        return cls(environ[STATE_DIR_ENV], int(environ[WORKER_ENV]), int(environ[WORKERS_ENV]))

    def file(self, index):
        return os.path.join(self.directory, f"{index}.json")

    def publish(self, version):
        """Writes this worker's state (atomically: readers see the old or the new file)."""
        temporary = self.file(self.index) + f".{os.getpid()}.tmp"
        with open(temporary, "w") as f:
            json.dump({"pid": os.getpid(), "version": version}, f)
        os.replace(temporary, self.file(self.index))

    def clear(self, index):
        """Forgets worker `index` (it died; its successor writes again once loaded)."""
        try:
            os.remove(self.file(index))
        except FileNotFoundError:
            pass

    def read(self, index):
        try:
            with open(self.file(index)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def states(self):
        """`[{"worker", "pid", "version"}]`, one per worker (pid and version None until loaded)."""
        return [{"worker": i, **(self.read(i) or {"pid": None, "version": None})} for i in range(self.workers)]

    def not_ready(self):
        """Why not every worker serves a version, or None."""
        waiting = [s["worker"] for s in self.states() if s["version"] is None]
        if waiting:
            return f"worker {waiting[0]} of {self.workers} has no version loaded yet"
        return None
