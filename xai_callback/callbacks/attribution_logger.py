"""`AttributionLogger`: what the model leans on, in TensorBoard, at the end of each epoch.

A companion of `XaiExportCallback` (and usable alone): it explains a held
sample with the live model through the same engine and signatures the export
will have (`xai_model`, `xai_preprocess`, the split of Keras preprocessing
layers, the explanation spec), and logs the global importance of that sample:

| summary | for |
|---|---|
| scalars `xai/importance/<feature>` (mean |attribution|) and `xai/share/<feature>` | every feature; `<feature>[i]` per element of small vector features |
| image `xai/attribution_map/<feature>` (mean |attribution| over the sample, then the first instances) | features of rank 2 or 3 (images) |
| text `xai/tokens/<feature>` (the tokens with the largest mean |attribution|, and the first instances' tokens with theirs) | token features (text) |
| scalar `xai/seconds` | the time the logging took that epoch |

It is off unless added to `fit`'s callbacks; its cost per epoch is measured in
benchmarks/results/batch.md (`every_n_epochs` spaces it out).
"""

import inspect
import time
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xai_callback._keras import keras_module
from xai_callback.arguments import check_int, check_str
from xai_callback.batch.importance import importance_of
from xai_callback.explain import Explainer
from xai_callback.export.engine import ExplainableExporter
from xai_callback.names import XAI_MODEL, XAI_PREPROCESS
from xai_callback.signatures.inputs import as_input_dict

ELEMENT_SCALARS_UP_TO = 32  # vector features up to this size also get a scalar per element
# The exporter's options that make no sense here (the logger writes no export).
NOT_FOR_THE_LOGGER = ("sample", "verify", "explain_signature", "overwrite", "versioned", "keep",
                      "store_sample", "legacy_metadata")


class AttributionLogger(keras_module().callbacks.Callback):
    """Logs the global feature importance of a held sample to TensorBoard each epoch.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[
        XaiExportCallback("exports/churn"),
        AttributionLogger("logs/xai", sample=x_val[:64]),
    ])
    # tensorboard --logdir logs
    ```

    Args:
        log_dir: the TensorBoard log folder (local, `gs://`, ...).
        sample: the held batch to explain, as `model.predict` takes it (a
            dict by input name, extra keys such as a label ignored; an array
            for one input). Keep it small: it is explained every logged epoch.
        every_n_epochs: log every n-th epoch (and never between). Defaults to 1.
        method: attribution method name (as `xai_callback.explain` takes it);
            None: the explanation spec's. Defaults to None.
        top_tokens: tokens listed per token feature. Defaults to 20.
        max_images: instances whose attribution map is logged besides the
            mean map. Defaults to 3.
        **export_options: as `XaiExportCallback` takes them (`preprocess_fn`,
            `model_fn`, `output_key`, `explanation_spec`, `split`, `track`, ...),
            so the logger explains what the export will explain.

    Raises:
        TypeError, ValueError: a bad argument, named with its value.
    """

    def __init__(self, log_dir, sample, *, every_n_epochs=1, method=None, top_tokens=20, max_images=3,
                 **export_options):
        super().__init__()
        self.log_dir = check_str("log_dir", log_dir)
        if sample is None:
            raise ValueError("sample must be a held batch of the model's inputs to explain each "
                             "epoch (e.g. sample=x_val[:64]); received sample=None.")
        self.sample = sample
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, minimum=1)
        self.method = check_str("method", method, optional=True)
        self.top_tokens = check_int("top_tokens", top_tokens, minimum=1)
        self.max_images = check_int("max_images", max_images, minimum=0)
        known = set(inspect.signature(ExplainableExporter.__init__).parameters) - {"self", "model"}
        unknown = sorted(set(export_options) - known)
        refused = sorted(set(export_options) & set(NOT_FOR_THE_LOGGER))
        if unknown or refused:
            raise TypeError(f"AttributionLogger got options {unknown + refused} it does not take; it "
                            f"takes the export's {sorted(known - set(NOT_FOR_THE_LOGGER))}.")
        self.export_options = export_options
        self.seconds = []  # time spent logging, per logged epoch
        self._explainer = None

    def on_train_begin(self, logs=None):
        exporter = ExplainableExporter(self.model, verify=False, **self.export_options).prepare()
        functions = exporter.functions
        preprocess = functions.get(XAI_PREPROCESS)
        first = preprocess if preprocess is not None else functions[XAI_MODEL]
        sample = self.sample
        if isinstance(sample, Mapping):
            sample = {key: sample[key] for key in first.input_specs if key in sample}
        self._inputs = as_input_dict(sample, first.input_specs, owner="AttributionLogger sample")
        plan = exporter.preprocessing.plan
        self._exporter = exporter
        self._explainer = Explainer(
            functions[XAI_MODEL].concrete_function(),
            preprocess_fn=preprocess.concrete_function() if preprocess is not None else None,
            xai_features=plan.features_description() if plan is not None else None)
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        if self._explainer is None or (epoch + 1) % self.every_n_epochs:
            return
        start = time.perf_counter()
        self.log_epoch(epoch)
        self.seconds.append(time.perf_counter() - start)
        with self._writer.as_default(step=epoch):
            tf.summary.scalar("xai/seconds", self.seconds[-1])
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._explainer is not None:
            self._writer.close()

    def log_epoch(self, epoch):
        """Explains the sample with the current weights and writes the summaries of `epoch`."""
        exporter = self._exporter
        exporter.converter.sync()  # JAX/PyTorch: the current weights into the TensorFlow copy
        # Built every epoch, as every export does: embedding baselines are rows training moves.
        self._explainer.metadata, self._explainer.parameters = exporter.build_spec()
        response = self._explainer.explain(self._inputs, method=self.method)
        explanations = response.to_dict()["explanations"]
        total = importance_of(explanations, keep_maps=True)
        summary = total.summary()
        with self._writer.as_default(step=epoch):
            for name, entry in summary["features"].items():
                tf.summary.scalar(f"xai/importance/{name}", entry["meanAbsAttribution"])
                tf.summary.scalar(f"xai/share/{name}", entry["share"])
            for name, mean_map in total.mean_maps().items():
                if name in (summary.get("tokens") or {}):
                    continue
                if mean_map.ndim == 1 and mean_map.size <= ELEMENT_SCALARS_UP_TO:
                    for i, value in enumerate(mean_map):
                        tf.summary.scalar(f"xai/importance/{name}[{i}]", float(value))
                elif mean_map.ndim in (2, 3):
                    maps = [mean_map] + [np.abs(np.asarray(e.attributions[0].feature_attributions[name],
                                                           np.float64))
                                         for e in response.explanations[:self.max_images]]
                    tf.summary.image(f"xai/attribution_map/{name}", _as_images(maps),
                                     max_outputs=len(maps),
                                     description="mean |attribution| over the sample, then instances")
            for name, tokens in (summary.get("tokens") or {}).items():
                tf.summary.text(f"xai/tokens/{name}", self._token_text(name, tokens, response))


    def _token_text(self, name, tokens, response):
        rows = ["| token | mean abs attribution | count |", "|---|---|---|"]
        rows += [f"| {token} | {entry['meanAbsAttribution']:.4g} | {entry['count']} |"
                 for token, entry in list(tokens.items())[:self.top_tokens]]
        for explanation in response.explanations[:self.max_images]:
            values = np.ravel(explanation.attributions[0].feature_attributions[name])
            words = [f"{token} ({value:+.3g})" for token, value in zip(explanation.tokens[name], values)
                     if token != ""]
            rows += ["", " ".join(words)]
        return "\n".join(rows)


def _as_images(maps):
    """Attribution maps `[H, W(, C)]` -> `[n, H, W, 1]` in [0, 1] (channels summed, each map scaled)."""
    images = []
    for value in maps:
        value = np.nan_to_num(value.sum(axis=-1) if value.ndim == 3 else value)
        top = value.max()
        images.append((value / top if top > 0 else value)[..., None])
    return np.stack(images).astype(np.float32)
