"""tf-keras (Keras 2) run for test_keras_internals.py; needs TF_USE_LEGACY_KERAS=1.

Usage: python keras_internals_script.py

Reads every private tf-keras fact `xai_callback.callbacks.keras_internals`
relies on, inside a real tf-keras `fit`, and prints RESULT json for the parent
test to assert on.
"""

import io
import os
import sys
from contextlib import redirect_stdout

assert os.environ.get("TF_USE_LEGACY_KERAS") == "1", "run with TF_USE_LEGACY_KERAS=1"

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402

from xai_callback.callbacks import keras_internals, monitor  # noqa: E402
from subprocess_runs import print_result  # noqa: E402

EPOCHS = 3


def build(optimizer="adam"):
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((4,), name="feats")
    hidden = tf_keras.layers.Dense(8, activation="tanh")(inputs)
    outputs = tf_keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)
    model = tf_keras.Model(inputs, outputs)
    model.compile(optimizer, "binary_crossentropy",
                  metrics=[tf_keras.metrics.AUC(name="roc"), tf_keras.metrics.MeanSquaredError(name="err")])
    return model


class Probe(tf_keras.callbacks.Callback):
    """Reads the internals where the export callback does."""

    def on_train_begin(self, logs=None):
        found = keras_internals.fit_locals(self.model)
        self.fit = None if found is None else {
            "has_validation_data": found["has_validation_data"],
            "validation_freq": found["validation_freq"],
            "epochs": found["epochs"],
            "initial_epoch": found["initial_epoch"],
            "finds_itself": any(c is self for c in found["callbacks"]),
        }
        self.metrics_at_begin = sorted(name for name, _ in keras_internals.compiled_metrics(self.model))
        self.directions = {name: monitor.direction_of(name, self.model) for name in ("val_roc", "err", "loss")}

    def on_epoch_end(self, epoch, logs=None):
        self.ema = keras_internals.ema_weights(self.model)
        self.raw = self.model.get_weights()


def main():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    probe = Probe()
    build().fit(x, y, epochs=EPOCHS, initial_epoch=1, validation_split=0.25, validation_freq=2,
                batch_size=16, verbose=0, callbacks=[probe])
    ema_probe = Probe()
    model = build(tf_keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.9))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ema_probe])
    final = model.get_weights()  # tf-keras wrote the averages into the model at the end of fit
    plain = build()
    plain.fit(x, y, epochs=1, batch_size=16, verbose=0)
    printed = io.StringIO()
    with redirect_stdout(printed):
        keras_internals.print_msg("printed by print_msg")
    print_result(
        fit=probe.fit,
        metrics_at_begin=probe.metrics_at_begin,
        directions=probe.directions,
        ema_found=ema_probe.ema is not None,
        ema_is_final=ema_probe.ema is not None and all(
            np.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(ema_probe.ema, final)),
        ema_differs_from_raw=ema_probe.ema is not None and not all(
            np.allclose(a, b) for a, b in zip(ema_probe.ema, ema_probe.raw)),
        no_ema_without_use_ema=keras_internals.ema_weights(plain) is None,
        printed="printed by print_msg" in printed.getvalue(),
        is_keras3_trainer=isinstance(model, keras_internals.keras3_trainer_class() or ()),
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
