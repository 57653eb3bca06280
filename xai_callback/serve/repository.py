"""The served model: one export, or the newest ready version of a base directory (TF Serving's manager).

A base directory (TF Serving's layout, `base/<number>/`) is polled; the newest
version its `source.VersionSource` calls ready is loaded and warmed up in the
background (`loader.load_served_model`) and then swapped in with one
assignment. Requests that started on the old version keep their reference to
it and finish there, so a switch fails no request. A version that fails to
load is retried after 1, 2, 4, ... seconds (at most `MAX_RETRY_SECONDS`), up to
`max_load_retries` times, as TF Serving's `--max_num_load_retries`; its
retries start again when its files change. Meanwhile the served version
stays. Versions deleted from the directory leave the status.
"""

import logging
import threading
import time

import tensorflow as tf

from xai_callback.names import join
from xai_callback.publish import placement, storage
from xai_callback.serve.errors import ServeError
from xai_callback.serve.loader import load_served_model
from xai_callback.serve.source import VersionSource

log = logging.getLogger("xai_callback.serve")
DEFAULT_MODEL_NAME = "model"  # TF Serving's default MODEL_NAME
MAX_RETRY_SECONDS = 60.0


class _Failure:
    """A version's failed loads: the last error, how many, when to try again."""

    def __init__(self, message, fingerprint):
        self.message = message
        self.fingerprint = fingerprint
        self.attempts = 0
        self.next_try = 0.0


def default_model_name(path):
    """The base directory's name (`exports/churn/3` and `exports/churn` -> "churn")."""
    parts = [p for p in str(path).split("://")[-1].rstrip("/").split("/") if p]
    if parts and placement.VERSION_NAME.match(parts[-1]) and is_export(path):
        parts = parts[:-1]
    return parts[-1] if parts else DEFAULT_MODEL_NAME


def require_path(path):
    """`path`, or FileNotFoundError when nothing is there to serve."""
    if not storage.exists(path):
        raise FileNotFoundError(f"No export or base directory at {path!r}.")
    return path


def is_export(path):
    return storage.exists(join(path, placement.SAVED_MODEL_FILE))


class ModelRepository:
    """Loads and serves the model at `path`; polls a base directory for new versions.

    Example:

    ```python
    repository = ModelRepository("exports/churn", poll_seconds=2.0)
    repository.start()          # loads in the background
    model = repository.get("churn")
    ```

    Args:
        path: one export, or a base directory of numbered versions.
        name: the served model name. Defaults to None: `default_model_name`.
        poll_seconds: how often a base directory is checked.
        on_fatal: `on_fatal(message)`, called when nothing can be served
            (a fixed export failed to load; every version of a base
            directory failed all its retries).
        loader: `loader(path, version) -> ServedModel`.
        settle_seconds: see `source.VersionSource`.
        max_load_retries: retries of a failed load (0: none).
        retry_seconds: the first retry's delay; each next one doubles it.
        on_change: `on_change(version)`, called after a version is swapped in.

    Raises:
        FileNotFoundError: `path` does not exist.
    """

    def __init__(self, path, name=None, poll_seconds=2.0, on_fatal=None, loader=load_served_model,
                 settle_seconds=10.0, max_load_retries=5, retry_seconds=1.0, on_change=None):
        self.path = require_path(str(path).rstrip("/") or str(path))
        self.fixed = is_export(self.path)
        self.name = name or default_model_name(self.path)
        self.poll_seconds = poll_seconds
        self.on_fatal = on_fatal
        self.loader = loader
        self.max_load_retries = max_load_retries
        self.retry_seconds = retry_seconds
        self.on_change = on_change
        self.source = VersionSource(self.path, settle_seconds)
        self.current = None
        self.failed = {}  # version -> _Failure
        self.loading = None
        self._stop = threading.Event()
        self._thread = None

    # -- lifecycle ----------------------------------------------------------

    def start(self):
        """Loads and polls in a background thread (once: a second call does nothing)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="xai-serve-versions", daemon=True)
        self._thread.start()

    def stop(self, timeout=10.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def ready(self):
        return self.current is not None

    def _run(self):
        if self.fixed:
            if not self._load(self.path, _fixed_version(self.path)) and self.on_fatal is not None:
                self.on_fatal(f"cannot load {self.path}: {self.failed[_fixed_version(self.path)].message}")
            return
        waiting_logged = False
        while not self._stop.is_set():
            try:
                self.poll()
            except (tf.errors.OpError, OSError) as e:
                log.warning("cannot list versions under %s: %s", self.path, e)
            if self.current is None and not self.loading and not waiting_logged:
                log.warning("no complete version under %s yet; waiting for one "
                            "(checking every %s s)", self.path, self.poll_seconds)
                waiting_logged = True
            self._stop.wait(self.poll_seconds)

    def poll(self):
        """One look at the base directory: serves the newest version that is ready and loads."""
        present = self.source.versions()
        for gone in set(self.failed) - set(present):
            del self.failed[gone]  # deleted versions leave the status
        for version in present:  # newest first
            if self.current is not None and self.current.version == version:
                return
            if not self._may_try(version) or not self.source.ready(version):
                continue
            if self._load(self.source.path(version), version):
                log.info("now serving version %s of %s", version, self.name)
                return
        if self.current is None and present and all(self._exhausted(v) for v in present):
            if self.on_fatal is not None:
                self.on_fatal(f"no version under {self.path} could be loaded: {self.waiting_for()}")

    def _may_try(self, version):
        failure = self.failed.get(version)
        if failure is None:
            return True
        if failure.attempts > self.max_load_retries:
            fingerprint = self.source.fingerprint(version)
            if fingerprint == failure.fingerprint:
                return False  # retries used up, and nothing changed since
            failure.attempts, failure.next_try = 0, 0.0  # its files changed: a new copy
        return time.monotonic() >= failure.next_try

    def _exhausted(self, version):
        failure = self.failed.get(version)
        return failure is not None and failure.attempts > self.max_load_retries

    def _load(self, path, version):
        self.loading = version
        try:
            model = self.loader(path, version)
        except Exception as e:  # noqa: BLE001 - any load failure leaves the old version serving
            self._record_failure(version, f"{type(e).__name__}: {e}")
            return False
        finally:
            self.loading = None
        self.failed.pop(version, None)
        self.current = model  # one assignment: requests see the old or the new version
        if self.on_change is not None:
            self.on_change(model.version)
        return True

    def _record_failure(self, version, message):
        failure = self.failed.get(version)
        if failure is None:
            failure = self.failed[version] = _Failure(message, None)
        failure.message = message
        failure.attempts += 1
        if not self.fixed:
            failure.fingerprint = self.source.fingerprint(version)
        delay = min(self.retry_seconds * 2 ** (failure.attempts - 1), MAX_RETRY_SECONDS)
        failure.next_try = time.monotonic() + delay
        retrying = failure.attempts <= self.max_load_retries and not self.fixed
        log.error("cannot load version %s of %s: %s%s", version, self.name, message,
                  f"; retry {failure.attempts} of {self.max_load_retries} in {delay:g} s" if retrying else "")

    # -- lookups --------------------------------------------------------------

    def get(self, name, version=None):
        """The served model for `/v1/models/{name}[/versions/{version}]`.

        Raises:
            ServeError: 404 for another name or version, 503 before the first
                version is loaded.
        """
        self.check_name(name)
        current = self.current
        if current is None:
            raise ServeError(503, f"Model '{self.name}' is not ready yet: {self.waiting_for()}.")
        if version is not None and int(version) != current.version:
            raise ServeError(
                404, f"Version {version} of model '{self.name}' is not served; this server "
                     f"serves version {current.version} (the newest complete one).")
        return current

    def check_name(self, name):
        if name != self.name:
            raise ServeError(404, f"Model '{name}' is not served here; this server serves "
                                  f"'{self.name}'.")

    def waiting_for(self):
        if self.loading is not None:
            return f"version {self.loading} is loading"
        failed = dict(self.failed)  # the polling thread may change it meanwhile
        if failed:
            return "loading failed: " + "; ".join(f"version {v}: {f.message}" for v, f in failed.items())
        return f"no complete version under {self.path} yet"

    def status(self, version=None):
        """TF Serving's `model_version_status` list."""
        entries = {}
        for number, failure in dict(self.failed).items():
            if failure.attempts > self.max_load_retries or self.fixed:
                entries[number] = _status(number, "END", "UNKNOWN", failure.message)
            else:
                entries[number] = _status(number, "LOADING", "UNKNOWN", f"{failure.message} (retrying)")
        if self.loading is not None:
            entries[self.loading] = _status(self.loading, "LOADING")
        if self.current is not None:
            entries[self.current.version] = _status(self.current.version, "AVAILABLE")
        if version is not None:
            if int(version) not in entries:
                raise ServeError(404, f"Version {version} of model '{self.name}' is not known "
                                      f"here (known: {sorted(entries)}).")
            return [entries[int(version)]]
        return [entries[v] for v in sorted(entries, reverse=True)]


def _status(version, state, code="OK", message=""):
    return {"version": str(version), "state": state,
            "status": {"error_code": code, "error_message": message}}


def _fixed_version(path):
    name = str(path).rstrip("/").rsplit("/", 1)[-1]
    return int(name) if placement.VERSION_NAME.match(name) else 1
