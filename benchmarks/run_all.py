"""Runs every benchmarks/bench_*.py in turn, passing --repeats/--quick through."""

import argparse
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke check")
    args = parser.parse_args(argv)
    passthrough = ["--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n<!-- {script.name} {' '.join(passthrough)} -->", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *passthrough])
        print(f"\n<!-- {script.name}: exit {code}, {time.perf_counter() - start:.0f} s -->", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
