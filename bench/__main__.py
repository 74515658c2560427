"""`make bench`: run every benchmark module `bench/bench_*.py` (or the ones named on the command line).

Each module has `main(out_dir: Path) -> dict` that measures our code beside a baseline in the same
run, prints a table and returns its numbers; they are collected in `runs/bench/results.json`. A module
whose main also takes `repeats` gets `--repeats`; one that lists `NEEDS` (importable modules, e.g. a
baseline's library) is checked before anything runs, and a missing one is named in one line with what to install.
"""
import argparse
import importlib
import importlib.util
import inspect
import pkgutil
import sys
import time
from pathlib import Path

import bench
from safe_output import UserError, atomic_json, run_cli, use_output

INSTALL = "make bench, or pip install '.[bench]'"


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", help=f"benchmarks to run (default: all of {names})")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder to write (created, or empty, or an earlier "
                                                                               "bench output) (default: runs/bench)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each measurement, after a warm-up, "
                                                                  "ours and the baseline interleaved (default: 3)")
    parser.add_argument("--wait", action="store_true", help="if another bench is using --out, wait for it to end (default: stop at once)")
    args = parser.parse_args()
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {names}")
    return run_cli("bench", lambda: run(args, names))


def run(args, names: list[str]) -> None:
    modules = {}
    for name in args.only or names:
        try:
            modules[name] = module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as e:
            raise UserError(f"{name} needs {e.name}: {INSTALL}") from None
        missing = [m for m in getattr(module, "NEEDS", ()) if importlib.util.find_spec(m) is None]
        if missing:
            raise UserError(f"{name} needs {', '.join(missing)}: {INSTALL}")
    with use_output(args.out, "bench", wait=args.wait, legacy=("results.json",)):  # a benchmark may empty its own sub-folder
        results = {}
        for name, module in modules.items():
            print(f"\n=== {name} ===", flush=True)
            start = time.time()
            takes_repeats = "repeats" in inspect.signature(module.main).parameters
            kwargs = {"repeats": args.repeats} if takes_repeats else {}
            results[name] = module.main(args.out / name, **kwargs)
            print(f"--- {name} took {time.time() - start:.0f}s", flush=True)
        atomic_json(args.out / "results.json", results)
    print(f"\nresults: {args.out / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
