"""tf.distribute runs for test_distribute.py (each in a fresh process).

Usage:
    python distribute_script.py mirrored OUT_DIR
        Keras 3, MirroredStrategy over two logical CPUs: trains with the
        callback, then exports the same weights from a single-device model.
    python distribute_script.py worker OUT_DIR      (TF_CONFIG and
        TF_USE_LEGACY_KERAS=1 set by the parent)
        One worker of a MultiWorkerMirroredStrategy cluster training with the
        callback; Keras 3 `fit` does not run under this strategy (see
        docs/compatibility.md), so the workers use tf-keras.
Prints RESULT json; writes OUT_DIR/<name>.npz with arrays to compare.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

from subprocess_runs import print_result


def mirrored(out_dir):
    # Logical devices must be configured before TensorFlow initialises them.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    import xai_callback
    from models import tabular_data

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,), name="feats")
        hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)
        model = keras.Model(inputs, outputs)
        model.compile("adam", "binary_crossentropy", metrics=["auc"])
        return model

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build()
    x, y = tabular_data(rows=96)
    callback = xai_callback.XaiExportCallback(
        os.path.join(out_dir, "mirrored"), monitor="val_loss", save_best_only=True
    )
    epoch_weights = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch_weights.append(model.get_weights())
    )
    model.fit(x, y, validation_split=0.25, epochs=2, batch_size=16, verbose=0, callbacks=[callback, record])
    best = epoch_weights[callback.best_epoch]

    single = build()  # No strategy: one device.
    single.set_weights(best)
    xai_callback.export_explainable_model(single, os.path.join(out_dir, "single"))
    np.savez(os.path.join(out_dir, "mirrored.npz"), x=x[:16], expected=single.predict(x[:16], verbose=0))
    print_result(
        replicas=strategy.num_replicas_in_sync,
        variable_type=type(model.weights[0].value).__name__,
        best_epoch=callback.best_epoch,
        mirrored=callback.last_export.path,
        single=os.path.join(out_dir, "single"),
    )


def worker(out_dir):
    from legacy_keras_script import EPOCHS, ROWS, BATCH, build, data
    import tf_keras

    import xai_callback
    from xai_callback.export import distribute

    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    train, (x_val, y_val) = data()
    model = build(strategy)
    export_dir = os.path.join(out_dir, "export")
    callback = xai_callback.XaiExportCallback(export_dir, monitor="val_auc", save_best_only=True)
    epoch_weights = []
    record = tf_keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch_weights.append(model.get_weights())
    )
    history = model.fit(train, validation_data=(x_val, y_val), epochs=EPOCHS,
                        steps_per_epoch=ROWS // BATCH, callbacks=[callback, record], verbose=0)
    # Every worker predicts: under this strategy predict is collective too.
    model.set_weights(epoch_weights[callback.best_epoch])
    predictions = model.predict(x_val, verbose=0)
    write_dir = distribute.worker_export_dir(export_dir, strategy)
    arrays = {"x_val": x_val, "best_predictions": predictions}
    arrays.update({f"w{i}": w for i, w in enumerate(epoch_weights[callback.best_epoch])})
    np.savez(os.path.join(out_dir, f"worker{task}.npz"), **arrays)
    print_result(
        task=task,
        is_chief=distribute.is_chief(strategy),
        write_dir=write_dir,
        write_dir_exists_after_fit=os.path.exists(write_dir),
        best_epoch=callback.best_epoch,
        best_value=callback.policy.best,
        val_auc=history.history["val_auc"],
        exported_signatures=sorted(callback.last_export.signatures),
        result_path=callback.last_export.path,
    )


if __name__ == "__main__":
    {"mirrored": mirrored, "worker": worker}[sys.argv[1]](sys.argv[2])
