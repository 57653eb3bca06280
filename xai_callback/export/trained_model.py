"""The export is the model being trained: exported functions compared with it.

What gets exported is built from functions: by default the model itself,
else what the user passed (`model_fn`, `serving_fn`, `preprocess_fn`). A
`model_fn` that closes over another model traces, runs and verifies against
itself; only its outputs tell. So `serving_default` and `xai_model` (through
`xai_preprocess`) are run on the verification sample and compared with the
model `fit` trains: before the first batch on the live functions built from
user functions, and after writing on the reloaded export, whatever built it.

Only the output keys both sides have are compared: a `serving_fn` may add
outputs (a label, a class name) and a `model_fn` may export another quantity
under another key (`"logits"`). A user function sharing no output key with
the model, or whose inputs the model's cannot be made from, is not compared,
and `check_live` says so in a warning.
"""

import warnings

import tensorflow as tf

from xai_callback.contract.checks import explained_inputs_from_sample
from xai_callback.errors import ExportVerificationError, SignatureError, short_message
from xai_callback.names import SERVING_DEFAULT, XAI_MODEL, XAI_PREPROCESS
from xai_callback.signatures.compare import check_close
from xai_callback.signatures.keras_models import model_signature_function

TRAINED = "the model being trained"
# How each user function is set right when it computes something else.
_HINTS = {
    "model_fn": ("A model_fn must compute the model passed to fit (call that model, not another "
                 "one); to export another quantity (logits, a post-processed score), return it "
                 "under another output key."),
    "serving_fn": ("serving_fn must return the model's outputs under the model's output keys; "
                   "outputs under other keys are not compared."),
}
# What running a function on the sample may raise when it does not fit.
_RUN_ERRORS = (tf.errors.OpError, TypeError, ValueError)


class TrainedModel:
    """The model `fit` trains, called on the verification sample.

    Example:

    ```python
    trained = TrainedModel.for_export(exporter.functions, user={"model_fn": fn},
                                      converter=exporter.converter)
    trained.check_live(exporter.functions, sample)   # before the first batch
    trained.check_export(loaded.signatures, sample)  # after writing
    ```

    Args:
        make_function: `() -> SignatureFunction` calling the live model, keyed
            by its inputs; called once, when first needed.
        preprocess: the live `SignatureFunction` whose outputs feed the
            model (a `preprocess_fn`), or None.
        roles: `{signature name: the argument it was built from}` for the
            signatures built from user functions (`{"xai_model": "model_fn"}`).
        rtol, atol: tolerances of the comparisons (`np.isclose` semantics).
    """

    def __init__(self, make_function, preprocess=None, roles=None, rtol=1e-4, atol=1e-5):
        self._make_function = make_function
        self._function = None
        self._unavailable = None
        self.preprocess = preprocess
        self.roles = dict(roles or {})
        self.rtol, self.atol = rtol, atol

    @classmethod
    def for_export(cls, functions, user, converter, source=None, rtol=1e-4, atol=1e-5):
        """The trained model of an exporter's `functions`.

        Args:
            functions: `{signature name: SignatureFunction}` to be exported.
            user: `{"serving_fn", "model_fn", ...: what the user passed or None}`.
            converter: the exporter's backend converter (`signature_function`
                calls the live model, or its checked TensorFlow copy).
            source: with the automatic split, the Keras model the raw inputs
                feed (the model, or a Keras `preprocess_fn` composed with it).
        """
        roles = {name: argument for name, argument in ((XAI_MODEL, "model_fn"), (SERVING_DEFAULT, "serving_fn"))
                 if user.get(argument) is not None}
        if source is not None:
            if user.get("serving_fn") is None:
                return cls(lambda: functions[SERVING_DEFAULT], None, roles, rtol, atol)  # the source itself
            return cls(lambda: model_signature_function(source, name=TRAINED), None, roles, rtol, atol)
        if user.get("model_fn") is None:
            make = lambda: functions[XAI_MODEL]  # noqa: E731 - the model itself is xai_model
        else:
            make = lambda: converter.signature_function(name=TRAINED)  # noqa: E731
        return cls(make, functions.get(XAI_PREPROCESS), roles, rtol, atol)

    def _live_function(self):
        """The model as a signature function, or None (`_unavailable` says why)."""
        if self._function is None and self._unavailable is None:
            try:
                self._function = self._make_function()
            except SignatureError as e:  # e.g. a subclassed model with no defined inputs
                self._unavailable = f"the model cannot be called as a signature ({short_message(e)})"
        return self._function

    def outputs_on(self, sample):
        """`(outputs, fed)`: the model's outputs on `sample` and how it was
        fed; `(None, why)` when its inputs cannot be made from `sample`.

        Fed with the preprocess output when it fits the model's inputs (the
        model was trained on it), else with the sample itself (a model that
        takes the raw inputs, e.g. one split by hand).
        """
        function = self._live_function()
        if function is None:
            return None, self._unavailable
        specs = function.input_specs
        try:
            candidates = []
            if self.preprocess is not None and set(self.preprocess.input_specs) <= set(sample):
                candidates.append((self.preprocess.call_dict(sample), f"on {self.preprocess.name}'s output"))
            candidates.append((sample, "on the sample"))
            for values, fed in candidates:
                if set(specs) <= set(values):
                    feed = {key: values[key] for key in specs}
                elif len(specs) == 1 == len(values):  # one input, named otherwise
                    feed = {next(iter(specs)): next(iter(values.values()))}
                else:
                    continue
                if all(_fits(value, specs[key]) for key, value in feed.items()):
                    return function.call_dict(feed), fed
        except _RUN_ERRORS as e:
            return None, f"the model does not run on the sample ({type(e).__name__}: {short_message(e)})"
        taken = {key: spec.dtype.name for key, spec in specs.items()}
        given = {key: tf.as_dtype(value.dtype).name for key, value in sample.items()}
        return None, f"the model's inputs {taken} cannot be made from the sample's {given}"

    def check_live(self, functions, sample):
        """Before training: each signature built from a user function equals the model.

        Raises:
            SignatureError: naming the function, the output and the values.

        Warns when a user function cannot be compared (and says why).
        """
        if not self.roles:
            return
        live = {name: fn.concrete_function() for name, fn in functions.items()}
        for note in self._compare(live, sample, [n for n in (XAI_MODEL, SERVING_DEFAULT) if n in self.roles],
                                  SignatureError, before=True):
            warnings.warn(note, stacklevel=4)

    def check_export(self, signatures, sample):
        """After writing: the reloaded `xai_model` and `serving_default` equal the model.

        Raises:
            ExportVerificationError: naming the signature, the output and the values.
        """
        self._compare(signatures, sample, (XAI_MODEL, SERVING_DEFAULT), ExportVerificationError, before=False)

    def _compare(self, signatures, sample, names, error, before):
        """Compares `names` of `signatures` with the model; returns notes of what was not compared."""
        reference, fed = self.outputs_on(sample)
        if reference is None:
            return [f"{self._who(name, before)} is not compared with {TRAINED}: {fed}." for name in names]
        notes = []
        for name in names:
            if name not in signatures:
                continue
            inputs = sample if name == SERVING_DEFAULT else explained_inputs_from_sample(signatures, sample)
            if inputs is None:
                notes.append(f"{self._who(name, before)} is not compared with {TRAINED}: its inputs cannot "
                             f"be made from the sample's {sorted(sample)}.")
                continue
            outputs = signatures[name](**inputs)
            common = sorted(set(outputs) & set(reference))
            if not common:
                notes.append(f"{self._who(name, before)} is not compared with {TRAINED}: its outputs "
                             f"{sorted(outputs)} share no key with the model's {sorted(reference)}.")
                continue
            for key in common:
                try:
                    check_close(outputs[key], reference[key], name, key, f"{TRAINED} ({fed})",
                                self.rtol, self.atol)
                except ExportVerificationError as e:
                    raise error(
                        f"{self._who(name, before)} does not compute what {TRAINED} computes: {e} "
                        f"Compared on the outputs both have: {common}. "
                        f"{_HINTS.get(self.roles.get(name), '')}".rstrip(),
                        **({"signature": name, "key": key} if error is ExportVerificationError else {}),
                    ) from None
        return notes

    def _who(self, name, before):
        role = self.roles.get(name)
        if before:
            return f"{role} (exported as '{name}')" if role else f"'{name}'"
        return f"The exported '{name}'" + (f" (built from {role})" if role else "")


def _fits(value, spec):
    return value.dtype == spec.dtype and spec.shape.is_compatible_with(value.shape)
