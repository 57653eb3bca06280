"""`xai-callback serve` under load: 8 concurrent clients on 127.0.0.1 against in-process calls.

For each model, interleaved rounds (benchmarks/common.py) of fixed-length
phases with 8 concurrent keep-alive connections (1 where marked) sending the
same batches:
- server predict: Vertex `:predict` with `ROWS` instances per request, with
  the defaults (Prometheus metrics on), without metrics (`--no-metrics`),
  with every model call in a thread (`--inline-call-ms 0`, the first
  version's behaviour), without batching, and with 2 worker processes; and
  the same batches as Open Inference Protocol (V2) `infer` requests;
- in-process predict: `serving_default` called on the same batches as
  prebuilt tensors (the issue's baseline), by 8 threads and by 1 thread;
- server explain (`:explain`, one instance, the export's IG with 50 steps)
  and in-process `explain_instances` on the same instances, by 8 callers
  (same load) and by 1 (latency without load).
Figures: requests/s, p50 and p99 latency, errors (non-200 answers), CPU per
request of the server processes and, separately, of the load generator;
ratios per round against the same round's baseline.

The load generator is a separate process, so that it competes for the two
cores no more than a real client would: `wrk` (C, event-driven; Debian:
`apt-get install wrk`) when it is on PATH, else a Python asyncio client
(this file with `--client`; it costs several times wrk's CPU per request,
which the table shows). In-process baselines run in this process while the
servers idle.

Models: "tiny" (MLP 4-8-1, a call costs well under a millisecond, so the
HTTP and JSON work per request dominates) and "wide" (MLP 64-1024-1024-10,
about a millisecond per call).

Run:  .venv/bin/python benchmarks/bench_serve.py [--repeats 3] [--seconds 4] [--quick] [--before CHECKOUT]
      [--compare LABEL=CHECKOUT ...]
(--quick: the tiny model, 1 round of 1 s phases; < 2 min. --before: rows served by the package of
another checkout, e.g. `git archive main | tar -x -C /tmp/main`, measured in the same rounds;
--compare: predict rows served by further checkouts, e.g. one idea each, in the same rounds)
"""

import asyncio
import concurrent.futures
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import common

import numpy as np  # noqa: E402  (common quiets TF first)

CLIENTS = 8
ROWS = 8  # instances per predict request
START_TIMEOUT = 180
MODELS = {"tiny": (4, [8], 1), "wide": (64, [1024, 1024], 10)}
VERTEX = "/v1/projects/p/locations/l/endpoints/e"
# wrk: POSTs the bodies of $WRK_BODIES (one per line) in turn; prints its figures as JSON.
WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
local path, counter = os.getenv("WRK_PATH"), 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  counter = counter + 1
  return wrk.format("POST", path, headers, bodies[(counter % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('LOAD-RESULT {"requests": %d, "seconds": %f, "errors": %d, "p50": %f, "p99": %f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1e6, latency:percentile(99) / 1e6))
end
"""


def build_export(path, n_features, hidden, classes):
    import keras

    from xai_callback import export_explainable_model

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
    """`xai-callback serve` in its own process (or processes, with --workers) on a free port."""

    def __init__(self, path, *flags, code=None):
        self.port = free_port()
        command = [sys.executable, "-m", "xai_callback.cli", "serve", path, "--port", str(self.port),
                   "--model-name", "m", "--no-access-log", *flags]
        # code: another checkout of the package to serve with, e.g. the code before a change. Its
        # directory is the working directory too: `python -m` puts that first on sys.path.
        env = None if code is None else dict(os.environ, PYTHONPATH=os.path.abspath(code))
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, env=env, cwd=code and os.path.abspath(code))
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
        """CPU time of the server and its worker processes (all threads)."""
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # a worker that just ended
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_generator():
    """"wrk" when installed, else "python" (this file's asyncio client)."""
    return "wrk" if shutil.which("wrk") else "python"


def run_http_load(port, path, bodies_file, seconds, connections, work):
    """Load from a separate process; its figures plus its own CPU time."""
    if load_generator() == "wrk":
        script = os.path.join(work, "post.lua")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(WRK_SCRIPT)
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(int(round(seconds)), 1)}s",
                   "--timeout", "60s", "-s", script, f"http://127.0.0.1:{port}"]
    else:
        command = [sys.executable, os.path.abspath(__file__), "--client", str(port), path, bodies_file,
                   str(seconds), str(connections)]
    env = dict(os.environ, WRK_BODIES=bodies_file, WRK_PATH=path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"LOAD-RESULT (\{.*\})", proc.stdout)
    if not match:
        raise RuntimeError(f"load generator failed: {proc.stdout[-1000:]} {proc.stderr[-2000:]}")
    result = json.loads(match.group(1))
    result["client_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def client_main(port, path, bodies_file, seconds, connections):
    """The Python load generator: `connections` keep-alive connections in one asyncio loop."""
    with open(bodies_file, "rb") as f:
        bodies = [line.strip() for line in f if line.strip()]
    requests = [b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(b), b) for b in bodies]

    async def connection(index, start, end):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        latencies, errors, k = [], 0, index
        await start.wait()
        while (t0 := time.perf_counter()) < end[0]:
            writer.write(requests[k % len(requests)])
            k += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            errors += head[9:12] != b"200"
        writer.close()
        return latencies, errors

    async def main():
        start, end = asyncio.Event(), [0.0]
        tasks = [asyncio.ensure_future(connection(i, start, end)) for i in range(connections)]
        await asyncio.sleep(0.2)  # connected
        t0 = time.perf_counter()
        end[0] = t0 + seconds
        start.set()
        results = await asyncio.gather(*tasks)
        return results, time.perf_counter() - t0

    results, elapsed = asyncio.run(main())
    latencies = np.concatenate([np.asarray(r[0]) for r in results])
    print("LOAD-RESULT " + json.dumps({
        "requests": int(len(latencies)), "seconds": elapsed, "errors": int(sum(r[1] for r in results)),
        "p50": float(np.percentile(latencies, 50)), "p99": float(np.percentile(latencies, 99))}))


def run_threads(callers, seconds, call):
    """`callers` threads calling `call(i)` until `seconds` pass; latencies and errors."""
    start_barrier = threading.Barrier(callers)
    results = [None] * callers

    def worker(i):
        call(i)  # warm
        latencies = []
        start_barrier.wait()
        end = time.perf_counter() + seconds
        while (t0 := time.perf_counter()) < end:
            call(i)
            latencies.append(time.perf_counter() - t0)
        results[i] = latencies

    with concurrent.futures.ThreadPoolExecutor(callers) as pool:
        for future in [pool.submit(worker, i) for i in range(callers)]:
            future.result()
    latencies = np.concatenate([np.asarray(r) for r in results])
    return {"requests": int(len(latencies)), "seconds": seconds, "errors": 0,
            "p50": float(np.percentile(latencies, 50)), "p99": float(np.percentile(latencies, 99))}


def measure(model_name, export_dir, repeats, seconds, work, before=None, compare=()):
    import tensorflow as tf

    from xai_callback.explain import load_explainer

    n_features = MODELS[model_name][0]
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(ROWS, n_features)).astype(np.float32) for _ in range(CLIENTS)]
    singles = [b[:1].tolist() for b in batches]
    bodies = {}
    for verb, payloads in (("predict", [b.tolist() for b in batches]), ("explain", singles)):
        bodies[verb] = os.path.join(work, f"{model_name}_{verb}.jsonl")
        with open(bodies[verb], "w") as f:
            f.writelines(json.dumps({"instances": p}) + "\n" for p in payloads)
    bodies["infer"] = os.path.join(work, f"{model_name}_infer.jsonl")
    with open(bodies["infer"], "w") as f:  # the same batches as Open Inference Protocol tensors
        f.writelines(json.dumps({"inputs": [{"name": "features", "shape": list(b.shape), "datatype": "FP32",
                                             "data": b.ravel().tolist()}]}) + "\n" for b in batches)
    explainer = load_explainer(export_dir)
    # Traced once, alone: concurrent first calls race in TF's gradient construction.
    explainer.explain_instances(singles[0])
    serving = explainer.saved_model.signatures["serving_default"]
    tensors = [{"features": tf.constant(b)} for b in batches]
    servers = {
        "default": ServerProcess(export_dir),
        "threads": ServerProcess(export_dir, "--inline-call-ms", "0"),
        "unbatched": ServerProcess(export_dir, "--no-batching"),
        "workers": ServerProcess(export_dir, "--workers", "2"),
        "nometrics": ServerProcess(export_dir, "--no-metrics"),
    }
    if before:
        servers["before"] = ServerProcess(export_dir, code=before)
    for label, checkout in compare:
        servers["compare " + label] = ServerProcess(export_dir, code=checkout)

    def server_phase(server, verb, callers=CLIENTS):
        path = "/v2/models/m/infer" if verb == "infer" else VERTEX + ":" + verb

        def run():
            before = server.cpu_seconds()
            result = run_http_load(server.port, path, bodies[verb], seconds, callers, work)
            requests = max(result["requests"], 1)
            result["cpu_ms"] = (server.cpu_seconds() - before) / requests * 1e3
            result["client_ms"] = result.pop("client_cpu") / requests * 1e3
            return result
        return run

    def in_process(fn, callers=CLIENTS):
        def run():
            before = time.process_time()
            result = run_threads(callers, seconds, fn)
            result["cpu_ms"] = (time.process_time() - before) / max(result["requests"], 1) * 1e3
            return result
        return run

    phases = {
        "predict_server": server_phase(servers["default"], "predict"),
        "predict_server_threads": server_phase(servers["threads"], "predict"),
        "predict_server_unbatched": server_phase(servers["unbatched"], "predict"),
        "predict_server_workers": server_phase(servers["workers"], "predict"),
        "predict_server_nometrics": server_phase(servers["nometrics"], "predict"),
        "infer_server": server_phase(servers["default"], "infer"),
        "explain_server_nometrics": server_phase(servers["nometrics"], "explain"),
        "predict_inprocess": in_process(lambda i: serving(**tensors[i])),
        "predict_inprocess_1": in_process(lambda i: serving(**tensors[i]), callers=1),
        "explain_server": server_phase(servers["default"], "explain"),
        "explain_inprocess": in_process(lambda i: explainer.explain_instances(singles[i])),
        "explain_server_1": server_phase(servers["default"], "explain", callers=1),
        "explain_inprocess_1": in_process(lambda i: explainer.explain_instances(singles[i]), callers=1),
    }
    if before:
        phases["predict_server_before"] = server_phase(servers["before"], "predict")
        phases["explain_server_before"] = server_phase(servers["before"], "explain")
        phases["explain_server_before_1"] = server_phase(servers["before"], "explain", callers=1)
    for label, _ in compare:
        phases["predict_server_compare " + label] = server_phase(servers["compare " + label], "predict")
    try:
        results = common.interleaved(list(phases), repeats, lambda name: phases[name](), warmup=False)
    finally:
        for server in servers.values():
            server.stop()
    for series in results.values():
        for r in series:
            r["rps"] = r["requests"] / r["seconds"]
    return results


def print_results(model_name, results, seconds):
    n_features, hidden, classes = MODELS[model_name]
    shape = "-".join(str(v) for v in [n_features, *hidden, classes])
    print(f"\n### `serve` under load: {model_name} model (MLP {shape})\n")
    print(f"{CLIENTS} concurrent callers (1 where marked), {seconds} s per phase, "
          f"{len(results['predict_server'])} interleaved rounds: medians [min–max] over rounds; "
          f"predict requests carry {ROWS} instances, explain requests 1 (IG, 50 steps).\n")
    labels = {
        "predict_server": "server `:predict` (defaults)",
        "predict_server_threads": "server `:predict`, `--inline-call-ms 0` (every call in a thread)",
        "predict_server_unbatched": "server `:predict`, `--no-batching`",
        "predict_server_workers": "server `:predict`, `--workers 2`",
        "predict_server_nometrics": "server `:predict`, `--no-metrics`",
        "infer_server": "server V2 `/v2/models/m/infer` (same batches)",
        "predict_inprocess": "in-process `serving_default`, 8 threads (baseline)",
        "predict_inprocess_1": "in-process `serving_default`, 1 thread",
        "explain_server": "server `:explain`",
        "explain_server_nometrics": "server `:explain`, `--no-metrics`",
        "explain_inprocess": "in-process `explain_instances`, 8 threads (baseline)",
        "explain_server_1": "server `:explain`, 1 caller",
        "explain_inprocess_1": "in-process `explain_instances`, 1 caller (baseline of the row above)",
    }
    if "predict_server_before" in results:
        labels.update({
            "predict_server_before": "server `:predict`, code before (`--before`)",
            "explain_server_before": "server `:explain`, code before (`--before`)",
            "explain_server_before_1": "server `:explain`, 1 caller, code before (`--before`)",
        })
    labels.update({name: f"server `:predict`, {name.split(' ', 1)[1]} (`--compare`)"
                   for name in results if name.startswith("predict_server_compare ")})
    baselines = {"predict": "predict_inprocess", "explain": "explain_inprocess", "infer": "predict_inprocess"}
    rows = []
    for name, label in labels.items():
        series = results[name]
        base = results[baselines[name.split("_")[0]] + ("_1" if name.endswith("_1") else "")]
        rps = common.column(series, "rps")
        p50 = common.column(series, "p50")
        client = (_median_range(common.column(series, "client_ms"), "{:.3f}")
                  if "client_ms" in series[0] else "–")
        rows.append([
            label,
            _median_range(rps, "{:.0f}"),
            common.fmt_ratio(common.paired_ratios(rps, common.column(base, "rps"))),
            common.fmt_ms(p50),
            common.fmt_ratio(common.paired_ratios(p50, common.column(base, "p50"))),
            common.fmt_ms(common.column(series, "p99")),
            sum(common.column(series, "errors")),
            _median_range(common.column(series, "cpu_ms"), "{:.2f}"),
            client,
        ])
    print(common.markdown_table(
        ["variant", "requests/s", "throughput ratio", "p50 latency", "p50 ratio", "p99 latency",
         "errors", "server CPU ms/request", "client CPU ms/request"], rows))
    print("\nServer CPU: the server processes' CPU time (all threads, workers included) per answered "
          "request; in process, the CPU time of the calls (plus warm-up calls) per call. Client CPU: "
          f"the load generator's ({load_generator()}). Ratios are per round against the baseline of "
          "the same round.")


def _median_range(values, fmt):
    s = common.summary(values)
    return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}–{fmt.format(s['max'])}]"


def stack_note():
    """Which optional speed-ups the server processes find installed."""
    import importlib.util

    found = {name: importlib.util.find_spec(name) is not None for name in ("httptools", "uvloop", "orjson")}
    return ("HTTP stack: uvicorn with " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in found.items())
            + f"; load generator: {load_generator()}"
            + ("" if load_generator() == "wrk" else " (install wrk, e.g. `apt-get install wrk`, for a "
               "load generator that takes less CPU from the server)"))


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one phase (default 4)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["tiny", "wide"])
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="also serve with the package of another checkout (e.g. the main branch's "
                             "working tree), to compare with the code before a change in the same run")
    parser.add_argument("--compare", metavar="LABEL=CHECKOUT", action="append", default=[],
                        type=lambda v: tuple(v.split("=", 1)) if "=" in v else parser.error(
                            f"--compare takes LABEL=CHECKOUT; received {v!r}"),
                        help="also serve predicts with the package of CHECKOUT, in rows named LABEL "
                             "(repeatable; e.g. one idea per checkout, A/B in the same rounds)")
    args = parser.parse_args()
    repeats, seconds, names = args.repeats, args.seconds, args.models
    if args.quick:
        repeats, seconds, names = 1, 1.0, ["tiny"]
    print(stack_note())
    work = tempfile.mkdtemp(prefix="bench_serve_")
    try:
        for name in names:
            export_dir = build_export(os.path.join(work, name), *MODELS[name])
            print_results(name, measure(name, export_dir, repeats, seconds, work, args.before,
                                                  args.compare), seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{common.machine_note()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        port, path, bodies_file, seconds, connections = sys.argv[2:7]
        client_main(int(port), path, bodies_file, float(seconds), int(connections))
    else:
        main()
