"""tf-keras (Keras 2) run for test_legacy_keras.py; needs TF_USE_LEGACY_KERAS=1.

Usage: python legacy_keras_script.py OUT_DIR

Trains a tiny tf-keras model with `XaiExportCallback(save_best_only=True,
monitor="val_auc")` on data whose last epoch trains on flipped labels, so the
best epoch is not the last one. Writes OUT_DIR/arrays.npz (per-epoch weights,
inputs and the predictions of the best weights) and prints RESULT json. Then
checks tf-keras serialization, tf-keras' own `mode="auto"` guess, and the
refusal of ParameterServerStrategy on an in-process cluster.
"""

import os
import sys

assert os.environ.get("TF_USE_LEGACY_KERAS") == "1", "run with TF_USE_LEGACY_KERAS=1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

import xai_callback  # noqa: E402
from subprocess_runs import free_ports, print_result  # noqa: E402

ROWS, BATCH, EPOCHS = 128, 32, 3


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 4)).astype("float32")
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).astype("float32")
    x_val = rng.normal(size=(64, 4)).astype("float32")
    y_val = (x_val[:, 0] - x_val[:, 1] + 0.5 * x_val[:, 2] > 0).astype("float32")
    # Epochs 1-2 learn y, epoch 3 learns 1 - y: val_auc peaks before the end.
    train = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([x, x, x]), np.concatenate([y, y, 1.0 - y]))
    ).batch(BATCH)
    return train, (x_val, y_val)


def build(strategy=None):
    with strategy.scope() if strategy else _nothing():
        tf_keras.utils.set_random_seed(0)
        inputs = tf_keras.Input((4,), name="feats")
        hidden = tf_keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
        outputs = tf_keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)
        model = tf_keras.Model(inputs, outputs)
        # A metric object: tf-keras 2.21 cannot resolve the string "auc".
        model.compile(tf_keras.optimizers.Adam(0.05), "binary_crossentropy",
                      metrics=[tf_keras.metrics.AUC(name="auc")])
    return model


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def train_best_epoch(out_dir):
    train, (x_val, y_val) = data()
    model = build()
    callback = xai_callback.XaiExportCallback(
        os.path.join(out_dir, "export"), monitor="val_auc", save_best_only=True
    )
    epoch_weights = []
    record = tf_keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch_weights.append(model.get_weights())
    )
    history = model.fit(train, validation_data=(x_val, y_val), epochs=EPOCHS,
                        steps_per_epoch=ROWS // BATCH, callbacks=[callback, record], verbose=0)
    final_predictions = model.predict(x_val, verbose=0)
    best = callback.best_epoch
    model.set_weights(epoch_weights[best])
    best_predictions = model.predict(x_val, verbose=0)
    arrays = {"x_val": x_val, "best_predictions": best_predictions, "final_predictions": final_predictions}
    for epoch, weights in enumerate(epoch_weights):
        for i, w in enumerate(weights):
            arrays[f"epoch{epoch}_w{i}"] = w
    np.savez(os.path.join(out_dir, "arrays.npz"), **arrays)
    return callback, history


def serialization(callback):
    config = tf_keras.saving.serialize_keras_object(callback)
    rebuilt = tf_keras.saving.deserialize_keras_object(config)
    by_name = tf_keras.saving.deserialize_keras_object(
        {"class_name": "xai_callback>XaiExportCallback", "config": callback.get_config()}
    )
    return {
        "registered_name": config.get("registered_name"),
        "rebuilt_class": f"{type(rebuilt).__module__}.{type(rebuilt).__name__}",
        "rebuilt_same_config": rebuilt.get_config() == callback.get_config(),
        "by_name_same_config": by_name.get_config() == callback.get_config(),
    }


def parameter_server_refusal(out_dir):
    """fit under ParameterServerStrategy (in-process 1 worker + 1 ps)."""
    ports = free_ports(2)
    spec = tf.train.ClusterSpec({"worker": [f"localhost:{ports[0]}"], "ps": [f"localhost:{ports[1]}"]})
    servers = [tf.distribute.Server(spec, job_name=job, task_index=0, protocol="grpc", start=True)
               for job in ("worker", "ps")]
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(spec, rpc_layer="grpc")
    strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
    model = build(strategy)
    x = np.zeros((32, 4), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, x[:, 0])).batch(16).repeat()
    callback = xai_callback.XaiExportCallback(os.path.join(out_dir, "pss_export"))
    try:
        model.fit(dataset, epochs=1, steps_per_epoch=2, callbacks=[callback], verbose=0)
    except Exception as e:  # noqa: BLE001 - reported to the parent test
        return {"error_type": type(e).__name__, "message": str(e), "servers": len(servers)}
    return {"error_type": None, "message": "", "servers": len(servers)}


def main(out_dir):
    callback, history = train_best_epoch(out_dir)
    results = {
        "callback_class": f"{type(callback).__module__}.{type(callback).__name__}",
        "is_tf_keras_callback": isinstance(callback, tf_keras.callbacks.Callback),
        "history": history.history,
        "best_epoch": callback.best_epoch,
        "direction": callback.policy.direction,
        "tf_keras_auto_minimises_val_auc": tf_keras.callbacks.ModelCheckpoint(
            os.path.join(out_dir, "ckpt"), monitor="val_auc").monitor_op is np.less,
        "provenance": callback.last_export.provenance,
        "export_path": callback.last_export.path,
        "serialization": serialization(callback),
        "parameter_server": parameter_server_refusal(out_dir),
    }
    print_result(**results)
    sys.stdout.flush()
    os._exit(0)  # The in-process gRPC servers would keep the process alive.


if __name__ == "__main__":
    main(sys.argv[1])
