"""`make bench`: run every benchmark module `bench/bench_*.py` (or the ones named on the command line).

Each module has `main(out_dir: Path) -> dict` that measures our code beside a baseline in the same
run, prints a table and returns its numbers; they are collected in `runs/bench/results.json`.
"""
import argparse
import importlib
import json
import pkgutil
import time
from pathlib import Path

import bench


def main() -> None:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", help=f"benchmarks to run (default: all of {names})")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {names}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only or names:
        print(f"\n=== {name} ===", flush=True)
        start = time.time()
        results[name] = importlib.import_module(f"bench.{name}").main(args.out / name)
        print(f"--- {name} took {time.time() - start:.0f}s", flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nresults: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
