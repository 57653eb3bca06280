"""`xai-callback serve` under load: 8 concurrent clients on 127.0.0.1 against in-process calls.

For each model, interleaved rounds (benchmarks/common.py) of fixed-length
phases, each with 8 concurrent callers (threads, one keep-alive connection
each) sending the same batches:
- server predict, batching on (default) and off (`--no-batching`): Vertex
  `:predict` with `ROWS` instances per request;
- in-process predict: `serving_default` called on the same batches as
  prebuilt tensors (the issue's baseline), by 8 threads and by 1 thread;
- server explain (`:explain`, one instance, the export's IG with 50 steps)
  and in-process `explain_instances` on the same instances, by 8 threads
  (same load) and by 1 caller (latency without load).
Figures: requests/s, p50 and p99 latency, errors (non-200 answers), server
CPU per request; ratios per round against the same round's baseline.

Models: "tiny" (MLP 4-8-1, a call costs well under a millisecond, so the
HTTP and JSON work per request dominates) and "wide" (MLP 64-1024-1024-10,
about a millisecond per call).

Run:  .venv/bin/python benchmarks/bench_serve.py [--repeats 3] [--seconds 5] [--quick]
(--quick: the tiny model, 1 round of 1 s phases; < 2 min)
"""

import concurrent.futures
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import common

import numpy as np  # noqa: E402  (common quiets TF first)
import tensorflow as tf  # noqa: E402

from xai_callback import export_explainable_model, storage  # noqa: E402
from xai_callback.explain import load_explainer  # noqa: E402

CLIENTS = 8
ROWS = 8  # instances per predict request
START_TIMEOUT = 180
MODELS = {"tiny": (4, [8], 1), "wide": (64, [1024, 1024], 10)}
VERTEX = "/v1/projects/p/locations/l/endpoints/e"


def build_export(path, n_features, hidden, classes):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((n_features,), name="features")
    x = inputs
    for units in hidden:
        x = keras.layers.Dense(units, activation="tanh")(x)
    activation = "sigmoid" if classes == 1 else "softmax"
    outputs = keras.layers.Dense(classes, activation=activation, name="score")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy" if classes == 1 else "sparse_categorical_crossentropy")
    data, labels = common.make_data(256, n_features)
    model.fit(data, labels if classes == 1 else (labels * (classes - 1)).astype("int32"),
              epochs=1, verbose=0)
    return export_explainable_model(model, path).path


class ServerProcess:
    """`xai-callback serve` in its own process on a free port."""

    def __init__(self, path, *flags):
        self.port = free_port()
        command = [sys.executable, "-m", "xai_callback.cli", "serve", path, "--port", str(self.port),
                   "--model-name", "m", "--no-access-log", *flags]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"server did not start: {self.process.stderr.read()[-2000:]}")
            time.sleep(0.2)

    def _ready(self):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_load(callers, seconds, make_call):
    """`callers` threads calling `make_call(i)()` until `seconds` pass; latencies and errors."""
    start_barrier = threading.Barrier(callers)
    results = [None] * callers

    def worker(i):
        try:
            call = make_call(i)
            call()  # warm the connection / traces
        except BaseException as e:
            start_barrier.abort()  # the others stop waiting
            raise RuntimeError(f"caller {i} failed before the load started: {e!r}") from e
        latencies, errors = [], 0
        start_barrier.wait()
        end = time.perf_counter() + seconds
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            ok = call()
            latencies.append(time.perf_counter() - t0)
            errors += not ok
        results[i] = (latencies, errors)

    with concurrent.futures.ThreadPoolExecutor(callers) as pool:
        futures = [pool.submit(worker, i) for i in range(callers)]
    failures = [f.exception() for f in futures if f.exception() is not None]
    first = next((e for e in failures if not isinstance(e, threading.BrokenBarrierError)), None)
    if failures:
        raise first or failures[0]
    latencies = np.concatenate([np.asarray(r[0]) for r in results])
    return {
        "rps": len(latencies) / seconds,
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "errors": int(sum(r[1] for r in results)),
        "requests": int(len(latencies)),
    }


def http_caller(port, path, body):
    """A caller with its own keep-alive connection; returns True on a 200 answer."""
    data = json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}

    def call():
        connection.request("POST", path, body=data, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status == 200

    return call


def measure(model_name, export_dir, repeats, seconds):
    n_features = MODELS[model_name][0]
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(ROWS, n_features)).astype(np.float32) for _ in range(CLIENTS)]
    singles = [b[:1].tolist() for b in batches]
    explainer = load_explainer(export_dir)
    # Traced once, alone: concurrent first calls race in TF's gradient construction.
    explainer.explain_instances(singles[0])
    serving = explainer.saved_model.signatures["serving_default"]
    tensors = [{"features": tf.constant(b)} for b in batches]
    servers = {"batched": ServerProcess(export_dir), "unbatched": ServerProcess(export_dir, "--no-batching")}

    def server_phase(server, verb, bodies, callers=CLIENTS):
        def run():
            before = server.cpu_seconds()
            result = run_load(callers, seconds, lambda i: http_caller(
                server.port, VERTEX + verb, bodies[i]))
            result["cpu_ms"] = (server.cpu_seconds() - before) / max(result["requests"], 1) * 1e3
            return result
        return run

    def in_process(fn, callers=CLIENTS):
        def run():
            before = time.process_time()
            result = run_load(callers, seconds, lambda i: (lambda: fn(i) is not None))
            result["cpu_ms"] = (time.process_time() - before) / max(result["requests"], 1) * 1e3
            return result
        return run

    predict_bodies = [{"instances": b.tolist()} for b in batches]
    explain_bodies = [{"instances": s} for s in singles]
    phases = {
        "predict_server": server_phase(servers["batched"], ":predict", predict_bodies),
        "predict_server_unbatched": server_phase(servers["unbatched"], ":predict", predict_bodies),
        "predict_inprocess": in_process(lambda i: serving(**tensors[i])),
        "predict_inprocess_1": in_process(lambda i: serving(**tensors[i]), callers=1),
        "explain_server": server_phase(servers["batched"], ":explain", explain_bodies),
        "explain_inprocess": in_process(lambda i: explainer.explain_instances(singles[i])),
        "explain_server_1": server_phase(servers["batched"], ":explain", explain_bodies, callers=1),
        "explain_inprocess_1": in_process(lambda i: explainer.explain_instances(singles[i]), callers=1),
    }
    try:
        results = common.interleaved(list(phases), repeats, lambda name: phases[name](), warmup=False)
    finally:
        for server in servers.values():
            server.stop()
    return results


def print_results(model_name, results, seconds):
    n_features, hidden, classes = MODELS[model_name]
    shape = "-".join(str(v) for v in [n_features, *hidden, classes])
    print(f"\n### `serve` under load: {model_name} model (MLP {shape})\n")
    print(f"{CLIENTS} concurrent callers (1 where marked), {seconds} s per phase, "
          f"{len(results['predict_server'])} interleaved rounds: medians [min–max] over rounds; "
          f"predict requests carry {ROWS} instances, explain requests 1 (IG, 50 steps).\n")
    labels = {
        "predict_server": "server `:predict` (batching on, default)",
        "predict_server_unbatched": "server `:predict`, `--no-batching`",
        "predict_inprocess": "in-process `serving_default`, 8 threads (baseline)",
        "predict_inprocess_1": "in-process `serving_default`, 1 thread",
        "explain_server": "server `:explain`",
        "explain_inprocess": "in-process `explain_instances`, 8 threads (baseline)",
        "explain_server_1": "server `:explain`, 1 caller",
        "explain_inprocess_1": "in-process `explain_instances`, 1 caller (baseline of the row above)",
    }
    baselines = {"predict": "predict_inprocess", "explain": "explain_inprocess"}
    rows = []
    for name, label in labels.items():
        series = results[name]
        base = results[baselines[name.split("_")[0]] + ("_1" if name.endswith("_1") else "")]
        rps = common.column(series, "rps")
        p50 = common.column(series, "p50")
        rows.append([
            label,
            _median_range(rps, "{:.0f}"),
            common.fmt_ratio(common.paired_ratios(rps, common.column(base, "rps"))),
            common.fmt_ms(p50),
            common.fmt_ratio(common.paired_ratios(p50, common.column(base, "p50"))),
            common.fmt_ms(common.column(series, "p99")),
            sum(common.column(series, "errors")),
            _median_range(common.column(series, "cpu_ms"), "{:.2f}"),
        ])
    print(common.markdown_table(
        ["variant", "requests/s", "throughput ratio", "p50 latency", "p50 ratio", "p99 latency",
         "errors", "CPU ms/request"], rows))
    print("\nCPU ms/request: the server process's CPU time (all threads) per answered request; "
          "in process, the CPU time of the calls (plus warm-up calls) per call. Ratios are per round "
          "against the baseline of the same round.")


def _median_range(values, fmt):
    s = common.summary(values)
    return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}–{fmt.format(s['max'])}]"


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one phase (default 5)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["tiny", "wide"])
    args = parser.parse_args()
    repeats, seconds, names = args.repeats, args.seconds, args.models
    if args.quick:
        repeats, seconds, names = 1, 1.0, ["tiny"]
    work = tempfile.mkdtemp(prefix="bench_serve_")
    try:
        for name in names:
            export_dir = build_export(os.path.join(work, name), *MODELS[name])
            print_results(name, measure(name, export_dir, repeats, seconds), seconds)
    finally:
        storage.rmtree(work)
    print(f"\n{common.machine_note()}")


if __name__ == "__main__":
    main()
