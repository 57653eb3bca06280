"""Varied counts: what a new stepCount / pathCount / noisySampleCount costs, before vs after.

A server takes the counts from each request. Where they are constants of the
traced graph code, every new value traces new functions (time and memory);
where they are tensor arguments, one trace serves every value. Same run, code
before (`--baseline-ref`, extracted with `git archive`) and after (this tree),
one fresh process per measurement, an `Explainer` loaded from a small MLP
export (8 features, 16-16 tanh, 3 classes), 2 instances per call:

1. Distinct counts: after 4 warm-up values (97..100, each called twice), the
   values 1..`--values` in turn, each called twice: the first call is a new
   value, the second the same value already traced. Reported per count: the
   median of (first call / second call) over the values (1.0: a new value
   costs what a traced one does), the medians of both, and the resident
   memory (VmRSS) growth over the values, after a GC.
2. Explanation speed for a fixed setting: median of `--calls` calls after a
   traced one, per process, rounds interleaved; ratio after / before per
   round. Integrated gradients (50 steps), sampled Shapley (10 paths),
   SmoothGrad (3 copies x 50 steps), for 2 instances of the small MLP (a
   server's request) and 64 instances of a 32-feature, 256-256 MLP.

Run:  .venv/bin/python benchmarks/bench_trace_reuse.py [--repeats 5] [--values 80] [--baseline-ref main] [--quick]
(--quick: 1 round, 10 values; a smoke check)
"""

import argparse
import gc
import os
import tempfile
import warnings

import common

import numpy as np  # noqa: E402  (common quiets TF first)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The varied count: (method, fixed options).
COUNTED = {
    "step_count": ("integrated-gradients", {}),
    "path_count": ("sampled-shapley", {}),
    "noisy_sample_count": ("smoothgrad", {"noise_sigma": 0.1, "step_count": 10}),
}
WARMUP_VALUES = (97, 98, 99, 100)
FIXED = {
    "integrated-gradients": {"method": "integrated-gradients", "step_count": 50},
    "sampled-shapley": {"method": "sampled-shapley", "path_count": 10},
    "smoothgrad": {"method": "smoothgrad", "step_count": 50, "noise_sigma": 0.1, "noisy_sample_count": 3},
}
# Speed cases: (export, instances).
CASES = {"small MLP, 2 instances": ("small", 2), "32-feature MLP, 64 instances": ("wide", 64)}
SMALL_FEATURES, WIDE_FEATURES = 8, 32


def resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def counts_worker(export_dir, option, values):
    """Seconds of each value's first and second call, and RSS before and after the values."""
    from xai_callback.explain import load_explainer

    warnings.simplefilter("ignore")  # the explainer's quality warnings (1 path, 1 step)
    method, fixed = COUNTED[option]
    explainer = load_explainer(export_dir, validate=False)
    x = np.random.default_rng(3).normal(size=(2, SMALL_FEATURES)).astype(np.float32)

    def call(value):
        return common.timed(explainer.explain, {"x": x}, method=method, **fixed, **{option: value})[0]["wall"]

    for value in WARMUP_VALUES:
        call(value), call(value)
    gc.collect()
    before = resident_mb()
    first, second = [], []
    for value in range(1, values + 1):
        first.append(call(value))
        second.append(call(value))
    gc.collect()
    return {"first": first, "second": second, "rss": [before, resident_mb()]}


def speed_worker(export_dir, features, instances, method, calls):
    """Median seconds of one `explain` call after a traced one."""
    from xai_callback.explain import load_explainer

    warnings.simplefilter("ignore")
    explainer = load_explainer(export_dir, validate=False)
    x = np.random.default_rng(3).normal(size=(instances, features)).astype(np.float32)
    explainer.explain({"x": x}, **FIXED[method])  # traces
    seconds = [common.timed(explainer.explain, {"x": x}, **FIXED[method])[0]["wall"] for _ in range(calls)]
    return {"seconds": float(np.median(seconds))}


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-ref", default="main", help="git ref of the code before (default main)")
    parser.add_argument("--values", type=int, default=80, help="distinct values per count (default 80)")
    parser.add_argument("--calls", type=int, default=7, help="timed calls per speed process (default 7)")
    parser.add_argument("--parts", default="counts,speed", help="what to measure (default counts,speed)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.values = 1, 10
    if args.worker:
        kind, export_dir, *rest = args.worker
        if kind == "counts":
            common.report(counts_worker(export_dir, rest[0], int(rest[1])))
        else:
            common.report(speed_worker(export_dir, int(rest[0]), int(rest[1]), rest[2], args.calls))
        return
    script = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as workdir:
        before = os.path.join(workdir, "before")
        os.makedirs(before)
        trees = {"before": common.baseline_tree(args.baseline_ref, before), "after": REPO}
        from bench_explain import mlp_export  # the parent runs this tree's code

        exports = {"small": (mlp_export(os.path.join(workdir, "small"), SMALL_FEATURES, 16), SMALL_FEATURES),
                   "wide": (mlp_export(os.path.join(workdir, "wide"), WIDE_FEATURES, 256), WIDE_FEATURES)}

        def fresh(tree, *worker):
            return common.run_fresh(script, "--worker", *worker, "--calls", args.calls,
                                    env={"PYTHONPATH": trees[tree]})

        counts, speed = {}, {}
        if "counts" in args.parts:
            counts = common.interleaved(
                [(tree, option) for option in COUNTED for tree in trees], 1,
                lambda name: fresh(name[0], "counts", exports["small"][0], name[1], args.values), warmup=False)
            counts = {name: runs[0] for name, runs in counts.items()}
        if "speed" in args.parts:
            speed = common.interleaved(
                [(tree, case, method) for case in CASES for method in FIXED for tree in trees], args.repeats,
                lambda name: fresh(name[0], "speed", exports[CASES[name[1]][0]][0], exports[CASES[name[1]][0]][1],
                                   CASES[name[1]][1], name[2])["seconds"], warmup=False)
    print_results(args, counts, speed)


def print_results(args, counts, speed):
    command = (f".venv/bin/python benchmarks/bench_trace_reuse.py --repeats {args.repeats} --values "
               f"{args.values} --calls {args.calls} --baseline-ref {args.baseline_ref} --parts {args.parts}"
               + (" --quick" if args.quick else ""))
    print(f"# Varied counts: one trace for every value\n\n`{command}`\n\n{common.machine_note()}\n")
    if counts:
        print_counts(args, counts)
    if speed:
        print_speed(args, speed)


def print_counts(args, counts):
    print(f"## {args.values} distinct values of each count, in process\n")
    print("An `Explainer` on the small MLP export, 2 instances per call, after 4 warm-up values; "
          "each value called twice (new, then traced). `new / traced`: median over the values of "
          "the per-value ratio; RSS after a GC.\n")
    rows = []
    for option, (method, fixed) in COUNTED.items():
        for tree in ("before", "after"):
            run = counts[(tree, option)]
            first, second = np.array(run["first"]), np.array(run["second"])
            rows.append([f"{option} ({method})", tree, common.fmt_ms(first), common.fmt_ms(second),
                         common.fmt_ratio(first / second), f"{run['rss'][1] - run['rss'][0]:+.1f} MB "
                         f"({run['rss'][0]:.0f} → {run['rss'][1]:.0f})"])
    print(common.markdown_table(["count (method)", "code", "new value", "traced value", "new / traced",
                                 "RSS growth"], rows))


def print_speed(args, speed):
    print(f"\n## Explanation speed, fixed setting: `{args.baseline_ref}` (before) vs this tree (after)\n")
    print(f"Median of {args.calls} calls after a traced one, one fresh process per measurement, "
          f"{args.repeats} rounds interleaved: median [min–max]; ratio per round.\n")
    rows = []
    for case in CASES:
        for method in FIXED:
            b, a = speed[("before", case, method)], speed[("after", case, method)]
            rows.append([case, method, common.fmt_ms(b), common.fmt_ms(a),
                         common.fmt_ratio(common.paired_ratios(a, b))])
    print(common.markdown_table(["case", "method", "before", "after", "after / before"], rows))


if __name__ == "__main__":
    main()
