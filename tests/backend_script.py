"""Keras 3 on JAX or PyTorch, for test_backends.py; run with KERAS_BACKEND=jax|torch.

Usage: python backend_script.py OUT_DIR

1. Trains a tiny model with `XaiExportCallback(save_best_only=True)` and a
   TensorFlow `preprocess_fn`, on data whose last epoch trains on flipped
   labels (so the best epoch is not the last). Writes OUT_DIR/arrays.npz:
   per-epoch weights, validation inputs and the predictions of the best and
   final weights, and integrated gradients of the best weights computed with
   the backend's own autodiff (`jax.grad` / torch autograd).
2. Fits models the export cannot convert and reports the refusal.
3. Exports the trained model outside fit; on JAX also a model with a layer
   defined in `__main__` (fine in process), one jax2tf cannot differentiate
   (exported through the TensorFlow subprocess instead), and refuses an
   unknown XAI_CALLBACK_JAX_ROUTE.
4. Through the TensorFlow subprocess route (on JAX forced by
   XAI_CALLBACK_JAX_ROUTE): trains a model with adapted state that is not a
   weight (Normalization statistics; on PyTorch an IntegerLookup vocabulary)
   and records its live predictions; fits a model whose layer keeps state
   its `.keras` file does not hold, and reports the refusal.
The warnings raised during 1 and during 3 are reported. Prints RESULT json.
"""

import os
import sys
import time
import warnings

BACKEND = os.environ.get("KERAS_BACKEND")
assert BACKEND in ("jax", "torch"), "run with KERAS_BACKEND=jax or torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import xai_callback  # noqa: E402
from backend_models import (  # noqa: E402
    HalveThrice, HostTanh, ShiftByAttribute, TorchTanh, adapted_model, csv_lines, data, mlp, parse_csv)
from subprocess_runs import print_result  # noqa: E402

ROWS, BATCH, EPOCHS, IG_STEPS, EXPLAINED = 128, 32, 3, 50, 3


@keras.saving.register_keras_serializable(package="xai_tests_main")
class MainScale(keras.layers.Layer):
    """Defined in __main__: a TensorFlow subprocess cannot import it."""

    def call(self, x):
        return 0.5 * x


def train_best_epoch(out_dir):
    x, y = data(ROWS)
    x_val, y_val = data(64, seed=1)
    # Epochs 1-2 learn y, epoch 3 learns 1 - y: val_loss is best before the end.
    train = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([x, x, x]), np.concatenate([y, y, 1.0 - y]))
    ).batch(BATCH)
    model = mlp()
    lines = csv_lines(x_val[:EXPLAINED])
    callback = xai_callback.XaiExportCallback(
        os.path.join(out_dir, "export"), monitor="val_loss", save_best_only=True,
        preprocess_fn=parse_csv, sample={"csv": lines},
    )
    epoch_weights = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch_weights.append(copy_weights(model))
    )
    start = time.perf_counter()
    history = model.fit(train, validation_data=(x_val, y_val), epochs=EPOCHS,
                        steps_per_epoch=ROWS // BATCH, callbacks=[callback, record], verbose=0)
    fit_seconds = time.perf_counter() - start
    final_predictions = np.asarray(model.predict(x_val, verbose=0))
    model.set_weights(epoch_weights[callback.best_epoch])
    arrays = {
        "x_val": x_val,
        "best_predictions": np.asarray(model.predict(x_val, verbose=0)),
        "final_predictions": final_predictions,
        "live_ig": np.stack([integrated_gradients(model, row) for row in x_val[:EXPLAINED]]),
    }
    for epoch, weights in enumerate(epoch_weights):
        for i, w in enumerate(weights):
            arrays[f"epoch{epoch}_w{i}"] = w
    np.savez(os.path.join(out_dir, "arrays.npz"), **arrays)
    return model, callback, history, lines, fit_seconds


def copy_weights(model):
    # Not get_weights(): on JAX/torch it raises NumPy 2's copy-keyword DeprecationWarning.
    return [keras.ops.convert_to_numpy(v.value) for v in model.weights]


def live_input_gradient(model, x):
    """d sum(score) / d x by the backend's own autodiff."""
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.grad(lambda a: model(a, training=False).sum())(x))
    import torch

    t = torch.tensor(x, requires_grad=True)
    model(t, training=False).sum().backward()
    return t.grad.numpy()


def integrated_gradients(model, row):
    """Trapezoid IG from a zero baseline on IG_STEPS intervals (the export's default spec)."""
    alphas = np.linspace(0.0, 1.0, IG_STEPS + 1, dtype="float32")
    weights = np.full(IG_STEPS + 1, 1.0 / IG_STEPS)
    weights[[0, -1]] *= 0.5
    # Rows are independent in inference, so one batched gradient gives each point's.
    grads = live_input_gradient(model, alphas[:, None] * row[None, :]).astype("float64")
    return row.astype("float64") * (weights[:, None] * grads).sum(axis=0)


def refusal(out_dir, name, extra_layer):
    """fit with a model the export cannot convert: what was raised, and how many batches ran."""
    model = mlp(extra_layer=extra_layer)
    x, y = data(32)
    callback = xai_callback.XaiExportCallback(os.path.join(out_dir, name))
    start = time.perf_counter()
    try:
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    except Exception as e:  # noqa: BLE001 - reported to the parent test
        outcome = {"error_type": type(e).__name__, "message": str(e),
                   "layer": getattr(e, "layer", None)}
    else:
        outcome = {"error_type": None, "message": "", "layer": None}
    outcome["iterations"] = int(keras.ops.convert_to_numpy(model.optimizer.iterations.value))
    outcome["seconds"] = time.perf_counter() - start
    outcome["export_exists"] = os.path.exists(os.path.join(out_dir, name))
    return outcome


def standalone_exports(out_dir, model):
    """`export_explainable_model` outside fit; on JAX also: a layer defined in
    `__main__` (fine in process), a model jax2tf cannot differentiate (falls
    back to the subprocess route) and an unknown route name."""
    start = time.perf_counter()
    plain = xai_callback.export_explainable_model(model, os.path.join(out_dir, "standalone"))
    results = {"standalone_export": plain.path, "standalone_seconds": time.perf_counter() - start}
    if BACKEND != "jax":
        return results
    main_model = mlp(extra_layer=MainScale(name="main_scale"))
    results["main_layer_export"] = xai_callback.export_explainable_model(
        main_model, os.path.join(out_dir, "main_layer")).path
    loop_model = mlp(extra_layer=HalveThrice(name="halve_thrice"))
    x, y = data(64)
    loop_model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    start = time.perf_counter()
    fallback = xai_callback.export_explainable_model(loop_model, os.path.join(out_dir, "fallback"))
    results.update(fallback_export=fallback.path, fallback_seconds=time.perf_counter() - start,
                   fallback_x=x[:8].tolist(),
                   fallback_predictions=np.asarray(loop_model.predict(x[:8], verbose=0)).tolist())
    os.environ["XAI_CALLBACK_JAX_ROUTE"] = "fast"
    try:
        xai_callback.export_explainable_model(model, os.path.join(out_dir, "unknown_route"))
    except Exception as e:  # noqa: BLE001 - reported to the parent test
        results["unknown_route"] = {"error_type": type(e).__name__, "message": str(e)}
    finally:
        del os.environ["XAI_CALLBACK_JAX_ROUTE"]
    return results


def state_exports(out_dir):
    """Step 4, on the TensorFlow subprocess route."""
    previous = os.environ.get("XAI_CALLBACK_JAX_ROUTE")
    os.environ["XAI_CALLBACK_JAX_ROUTE"] = "tf_subprocess"
    try:
        model, x, y = adapted_model()
        method = xai_callback.IntegratedGradients() if BACKEND == "jax" else xai_callback.SampledShapley(
            path_count=10)  # an int input (the lookup's ids) takes no gradients
        callback = xai_callback.XaiExportCallback(os.path.join(out_dir, "adapted"),
                                                  explanation_spec=xai_callback.ExplanationSpec(method=method))
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
        instances = [{k: v[i].tolist() for k, v in x.items()} for i in range(3)]
        results = {"adapted_export": callback.last_export.path, "adapted_instances": instances,
                   "adapted_predictions": np.asarray(model.predict({k: v[:3] for k, v in x.items()},
                                                                   verbose=0)).tolist()}
        shifted = ShiftByAttribute(name="shift_by_attribute")
        shifted.shift = 3.0
        results["unsaved_state"] = refusal(out_dir, "unsaved_state", shifted)
        return results
    finally:
        if previous is None:
            del os.environ["XAI_CALLBACK_JAX_ROUTE"]
        else:
            os.environ["XAI_CALLBACK_JAX_ROUTE"] = previous


def recording(run, *args):
    """`(run(*args), warnings raised meanwhile as text)`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(*args)
    return result, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]


def main(out_dir):
    (model, callback, history, lines, fit_seconds), fit_warnings = recording(train_best_epoch, out_dir)
    results = {
        "backend": keras.backend.backend(),
        "history": history.history,
        "best_epoch": callback.best_epoch,
        "provenance": callback.last_export.provenance,
        "export_path": callback.last_export.path,
        "lines": lines,
        "fit_seconds": fit_seconds,
        "export_dir_listing": sorted(os.listdir(out_dir)),
        "fit_warnings": fit_warnings,
    }
    if BACKEND == "jax":
        results["refused"] = refusal(out_dir, "refused", HostTanh(name="host_tanh"))
    else:
        results["refused"] = refusal(out_dir, "refused", TorchTanh(name="torch_tanh"))
        results["refused_main"] = refusal(out_dir, "refused_main", MainScale(name="main_scale"))
    exports, results["export_warnings"] = recording(standalone_exports, out_dir, model)
    results.update(exports)
    results.update(state_exports(out_dir))
    print_result(**results)


if __name__ == "__main__":
    main(sys.argv[1])
