"""Loading one version: the SavedModel, its explainer, its SignatureDefs, a warm-up on its stored sample.

The loader of TF Serving's source -> loader -> manager: `source.VersionSource`
says which versions are ready to load, `repository.ModelRepository` decides
which one to serve and swaps it in.
"""

import dataclasses
import logging

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from xai_callback.contract.loaded import load_export
from xai_callback.publish.local_copy import local_copy
from xai_callback.errors import ExportVerificationError
from xai_callback.explain import load_explainer
from xai_callback.names import SAMPLE_FILE, SERVING_DEFAULT, extra_path, join
from xai_callback.publish import placement, storage
from xai_callback.serve.codec import SignatureInputs
from xai_callback.serve.runner import call_signature
from xai_callback.signatures.specs import signature_io
from xai_callback.signatures.tensor_io import decode_tensor_dict

log = logging.getLogger("xai_callback.serve")
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
    path = local_copy(path)  # s3://, gs:// (fsspec): TensorFlow loads a local copy
    explainer, problem = None, None
    # Once, for the explainer and its validation too; loops' gradients as explain takes them.
    saved_model = load_export(path)
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
