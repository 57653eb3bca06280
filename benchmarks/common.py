"""Shared helpers of the benchmarks: models, interleaved timing, statistics, tables."""

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

RESULT_MARK = "BENCH-RESULT "


# The repository this file is in (benchmarks/ is at its top).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def base_parser(description):
    """An argument parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke check")
    return parser


def build_mlp(n_features, hidden, seed=0):
    """A compiled binary-classification MLP with input 'features' and output 'score'."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((n_features,), name="features")
    x = inputs
    for units in hidden:
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy")
    return model


def make_data(rows, n_features, seed=0):
    """Deterministic tabular data with a learnable, noisy label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, n_features)).astype("float32")
    w = rng.normal(size=n_features)
    y = (x @ w + rng.normal(scale=1.0, size=rows) > 0).astype("float32")
    return x, y


def timed(fn, *args, **kwargs):
    """Runs `fn` after a GC; returns ({'wall': s, 'cpu': s of the whole process, all threads}, result)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}, result


def interleaved(names, repeats, run_one, warmup=True):
    """Calls `run_one(name)` once per variant per round, rotating the order (after an untimed warm-up round)."""
    if warmup:
        for name in names:
            run_one(name)
    results = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            results[name].append(run_one(name))
    return results


def baseline_tree(ref, folder):
    """The repository's `xai_callback` at `ref`, extracted into `folder`."""
    archive = subprocess.run(["git", "-C", REPO, "archive", ref, "xai_callback"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def run_fresh(script, *args, env=None):
    """Runs `script` in a fresh Python process; returns the dict it reported with `report()`.

    `env`: variables set for that process (e.g. KERAS_BACKEND) on top of this one's.
    """
    proc = subprocess.run(
        [sys.executable, script, *map(str, args)], capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})},
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    raise RuntimeError(f"{script} {' '.join(map(str, args))} failed:\n{proc.stderr[-3000:]}")


def report(result):
    """Prints a worker's result for `run_fresh` to pick up."""
    print(RESULT_MARK + json.dumps(result), flush=True)


def column(results, key):
    """One field of a list of dict measurements."""
    return [r[key] for r in results]


def paired_ratios(values, baseline):
    """Per-round ratios of two interleaved series."""
    return [v / b for v, b in zip(values, baseline)]


def paired_differences(values, baseline):
    """Per-round differences of two interleaved series."""
    return [v - b for v, b in zip(values, baseline)]


def summary(values):
    """Median, quartiles, min and max."""
    a = np.asarray(values, dtype=float)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median": med, "q1": q1, "q3": q3, "min": a.min(), "max": a.max(), "n": len(a)}


def fmt_seconds(values, unit="s", scale=1.0, digits=3):
    """'median [min–max]' of a series of seconds."""
    s = summary(np.asarray(values) * scale)
    return f"{s['median']:.{digits}f} {unit} [{s['min']:.{digits}f}–{s['max']:.{digits}f}]"


def fmt_ms(values):
    """'median [min–max]' in milliseconds."""
    return fmt_seconds(values, unit="ms", scale=1000.0, digits=1)


def fmt_ratio(ratios):
    """'1.04× [1.01–1.07]' of a series of ratios."""
    s = summary(ratios)
    return f"{s['median']:.3f}× [{s['min']:.3f}–{s['max']:.3f}]"


def fmt_percent(ratios):
    """'+1.2 % [−0.4 – +2.9]' of a series of ratios (overhead over 1)."""
    s = summary((np.asarray(ratios) - 1.0) * 100.0)
    return f"{s['median']:+.2f} % [{s['min']:+.2f} – {s['max']:+.2f}]"


def markdown_table(headers, rows):
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_note():
    """One line on where the numbers come from."""
    import importlib.metadata

    import tensorflow as tf
    import keras

    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    others = []
    for package in ("jax", "torch"):
        try:
            others.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only; "
        f"Python {platform.python_version()}, TF {tf.__version__}, Keras {keras.__version__}"
        f"{''.join(', ' + o for o in others)}; load average at end {load}"
    )
