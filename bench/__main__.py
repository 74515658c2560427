"""`make bench`: run every benchmark module `bench/bench_*.py` (or the ones named on the command line).

Each module has `main(out_dir: Path) -> dict` that measures our code beside a baseline in the same
run, prints a table and returns its numbers; they are collected in `runs/bench/results.json`.
"""
import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

import bench
from safe_output import atomic_json, run_cli, use_output


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", help=f"benchmarks to run (default: all of {names})")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder to write (created, or empty, or an earlier "
                                                                               "bench output) (default: runs/bench)")
    parser.add_argument("--wait", action="store_true", help="if another bench is using --out, wait for it to end (default: stop at once)")
    args = parser.parse_args()
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {names}")
    return run_cli("bench", lambda: run(args, names))


def run(args, names: list[str]) -> None:
    with use_output(args.out, "bench", wait=args.wait, legacy=("results.json",)):  # a benchmark may empty its own sub-folder
        results = {}
        for name in args.only or names:
            print(f"\n=== {name} ===", flush=True)
            start = time.time()
            results[name] = importlib.import_module(f"bench.{name}").main(args.out / name)
            print(f"--- {name} took {time.time() - start:.0f}s", flush=True)
        atomic_json(args.out / "results.json", results)
    print(f"\nresults: {args.out / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
