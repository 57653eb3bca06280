"""The served model: one export, or the newest complete version of a base directory.

A base directory (TF Serving's layout, `base/<number>/`) is polled; a newer
complete version (see `xai_callback.publish.placement.newest_published_version`: never a
staging copy or a half-written directory) is loaded and warmed up in the
background and then swapped in with one assignment. Requests that started on
the old version keep their reference to it and finish there, so a switch
fails no request. A version that fails to load is logged and skipped; the old
one stays.
"""

import dataclasses
import logging
import threading

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from xai_callback.publish import placement, storage
from xai_callback.publish.local_copy import local_copy
from xai_callback.errors import ExportVerificationError
from xai_callback.names import SAMPLE_FILE, SERVING_DEFAULT, extra_path, join
from xai_callback.serve.codec import SignatureInputs
from xai_callback.serve.errors import ServeError
from xai_callback.serve.runner import call_signature
from xai_callback.signatures.tensor_io import decode_tensor_dict
from xai_callback.signatures.specs import signature_io

log = logging.getLogger("xai_callback.serve")
DEFAULT_MODEL_NAME = "model"  # TF Serving's default MODEL_NAME
WARM_UP_CALLS = 3  # the first call of a loaded signature is slower than the next ones


@dataclasses.dataclass
class ServedModel:
    """One loaded version.

    Attributes:
        version: its number (a fixed export's numeric directory name, else 1).
        path: where it was loaded from.
        signatures: `{name: concrete function}` of the SavedModel.
        signature_defs: `{name: SignatureDef as TF Serving's JSON}`.
        explainer: the `ExportExplainer`, or None when the export cannot be
            explained (see `explain_problem`).
        explain_problem: why `:explain` is refused, or None.
        call_times: `{signature name: recent call wall times in seconds}`
            (see `runner.ModelRunner.inline`).
    """

    version: int
    path: str
    signatures: dict
    signature_defs: dict
    explainer: object = None
    explain_problem: str = None
    saved_model: object = dataclasses.field(default=None, repr=False)
    call_times: dict = dataclasses.field(default_factory=dict, repr=False)
    _inputs: dict = dataclasses.field(default_factory=dict, repr=False)

    def inputs(self, signature_name):
        """The `codec.SignatureInputs` of a signature (prepared once)."""
        inputs = self._inputs.get(signature_name)
        if inputs is None:
            specs = signature_io(self.signatures[signature_name])[0]
            inputs = self._inputs[signature_name] = SignatureInputs(signature_name, specs)
        return inputs


def load_served_model(path, version):
    """Loads an export (and its explainer) and warms it up on its stored sample."""
    from xai_callback.explain import load_explainer

    path = local_copy(path)  # s3://, gs:// (fsspec): TensorFlow loads a local copy
    explainer, problem = None, None
    saved_model = tf.saved_model.load(path)  # once, for the explainer and its validation too
    try:
        explainer = load_explainer(path, loaded=saved_model)
    except ExportVerificationError as e:
        problem = str(e)
    if explainer is not None and explainer.validation is not None and explainer.validation.failures:
        problem = "; ".join(f"{r.rule}: {r.reason}" for r in explainer.validation.failures)
        log.warning("%s fails validation, so :explain may refuse it: %s", path, problem)
    model = ServedModel(
        version=version,
        path=path,
        signatures=dict(saved_model.signatures),
        signature_defs=read_signature_defs(path),
        explainer=explainer,
        explain_problem=problem if explainer is None else None,
        saved_model=saved_model,
    )
    _warm_up(model)
    return model


def read_signature_defs(path):
    """`{name: SignatureDef}` in TF Serving's JSON (proto field names)."""
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(join(path, placement.SAVED_MODEL_FILE), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0]
    return {name: json_format.MessageToDict(sig, preserving_proto_field_name=True)
            for name, sig in graph.signature_def.items()}


def _warm_up(model):
    """Runs serving_default (and one explanation) on the stored sample, so the
    first request after a switch traces nothing and serving_default's call
    time is known (`runner.CallTimes`). Exports without one skip it."""
    sample_path = extra_path(model.path, SAMPLE_FILE)
    if SERVING_DEFAULT not in model.signatures or not storage.exists(sample_path):
        return
    sample = decode_tensor_dict(storage.read_json(sample_path))
    arrays = {key: value.numpy() for key, value in sample.items()}
    for _ in range(WARM_UP_CALLS):  # timed: fast signatures are then called on the loop
        (result,) = call_signature(model, SERVING_DEFAULT, [arrays])
        if isinstance(result, Exception):
            raise result
    explainer = model.explainer
    if explainer is None or set(sample) != set(explainer.instance_specs):
        return
    first = {key: value[:1] for key, value in sample.items()}
    try:
        explainer.explain(first)
    except (ValueError, TypeError, ExportVerificationError) as e:
        log.warning("explaining the stored sample of %s failed: %s", model.path, e)


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
            (the first load failed).
        loader: `loader(path, version) -> ServedModel`.

    Raises:
        FileNotFoundError: `path` does not exist.
    """

    def __init__(self, path, name=None, poll_seconds=2.0, on_fatal=None, loader=load_served_model):
        self.path = require_path(str(path).rstrip("/") or str(path))
        self.fixed = is_export(self.path)
        self.name = name or default_model_name(self.path)
        self.poll_seconds = poll_seconds
        self.on_fatal = on_fatal
        self.loader = loader
        self.current = None
        self.failed = {}  # version -> error message
        self.loading = None
        self._stop = threading.Event()
        self._thread = None

    # -- lifecycle ----------------------------------------------------------

    def start(self):
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
            self._load(self.path, _fixed_version(self.path))
            return
        waiting_logged = False
        while not self._stop.is_set():
            try:
                newest = placement.newest_published_version(self.path)
            except (tf.errors.OpError, OSError) as e:
                log.warning("cannot list versions under %s: %s", self.path, e)
                newest = None
            if newest is not None:
                self._switch_to(newest)
            elif self.current is None and not waiting_logged:
                log.warning("no complete version under %s yet; waiting for one "
                            "(checking every %s s)", self.path, self.poll_seconds)
                waiting_logged = True
            self._stop.wait(self.poll_seconds)

    def _switch_to(self, version):
        """Loads `version` when it differs from the served one (newer, or the
        newest left after a roll-back) and has not failed before."""
        if (self.current is not None and self.current.version == version) or version in self.failed:
            return
        path = join(self.path, str(version))
        if self._load(path, version) and self.current.version == version:
            log.info("now serving version %s of %s", version, self.name)

    def _load(self, path, version):
        self.loading = version
        try:
            model = self.loader(path, version)
        except Exception as e:  # noqa: BLE001 - any load failure leaves the old version serving
            message = f"{type(e).__name__}: {e}"
            self.failed[version] = message
            log.error("cannot load version %s from %s: %s", version, path, message)
            if self.current is None and self.on_fatal is not None:
                self.on_fatal(f"cannot load {path}: {message}")
            return False
        finally:
            self.loading = None
        self.current = model  # one assignment: requests see the old or the new version
        return True

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
        failed = self.failed.copy()  # the polling thread may add to it meanwhile
        if failed:
            return "loading failed: " + "; ".join(f"version {v}: {m}" for v, m in failed.items())
        return f"no complete version under {self.path} yet"

    def status(self, version=None):
        """TF Serving's `model_version_status` list."""
        entries = {}
        for number, message in self.failed.copy().items():
            entries[number] = _status(number, "END", "UNKNOWN", message)
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
