"""`explain` speed of several commits, compared on the same export, processes alternated.

Each commit's tree is extracted (`git archive`) to a temporary directory; then,
round after round, one fresh process per commit (its tree first on
PYTHONPATH) times 40 `load_explainer(...).explain` calls on the MLP export of
bench_explain.py (64 instances x 50 steps) and reports the median. Ratios are
paired per round against the first commit.

Run:  .venv/bin/python benchmarks/bench_explain_commits.py 5230cf6 HEAD [--repeats 8]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import common

import numpy as np  # noqa: E402  (common quiets TF first)

HERE = os.path.dirname(os.path.abspath(__file__))
CALLS = 40


def worker(export_dir):
    """In a fresh process whose xai_callback is the tree under test."""
    from xai_callback.explain import load_explainer

    explainer = load_explainer(export_dir, validate=False)
    inputs = {"x": np.random.default_rng(2).normal(size=(64, 32)).astype(np.float32)}
    for _ in range(3):
        explainer.explain(inputs, step_count=50)
    cpu, wall = [], []
    for _ in range(CALLS):
        c, w = time.process_time(), time.perf_counter()
        explainer.explain(inputs, step_count=50)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    common.report({"cpu": statistics.median(cpu), "wall": statistics.median(wall)})


def run_in(tree, export_dir):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree, HERE]))
    done = subprocess.run([sys.executable, __file__, "--worker", export_dir], env=env,
                          capture_output=True, text=True, check=False, cwd=tree)
    for line in done.stdout.splitlines():
        if line.startswith(common.RESULT_MARK):
            import json

            return json.loads(line[len(common.RESULT_MARK):])
    raise RuntimeError(f"worker in {tree} failed:\n{done.stderr[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="*", default=["HEAD"])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", metavar="EXPORT_DIR")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    import bench_explain

    work = tempfile.mkdtemp(prefix="bench_explain_commits_")
    trees = {}
    for commit in args.commits:
        tree = os.path.join(work, commit.replace("/", "_"))
        os.makedirs(tree)
        archive = subprocess.run(["git", "archive", commit], cwd=HERE, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        trees[commit] = tree
    export_dir = bench_explain.mlp_export(os.path.join(work, "mlp"))
    rounds = 1 if args.quick else args.repeats
    results = common.interleaved(list(trees), rounds, lambda c: run_in(trees[c], export_dir), warmup=False)
    first = args.commits[0]
    table = []
    for commit in args.commits:
        row = [commit]
        for clock in ("cpu", "wall"):
            times = common.column(results[commit], clock)
            row += [common.fmt_ms(times),
                    common.fmt_ratio(common.paired_ratios(times, common.column(results[first], clock)))]
        table.append(row)
    print(f"### `explain` by commit: MLP 32-256-256-10, 64 instances x 50 steps, median of {CALLS} calls "
          f"a process, {rounds} alternated rounds\n")
    print(common.markdown_table(["commit", "CPU per call", f"CPU vs {first}", "wall per call",
                                 f"wall vs {first}"], table))
    print(f"\n{common.machine_note()}")
    subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
