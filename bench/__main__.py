"""`make bench`: run every benchmark module `bench/bench_*.py` (or the ones given with --only).

Each module has `main(out_dir: Path) -> dict` that measures our code beside a baseline in the same
run, prints a table and returns its numbers; they are collected in `runs/bench/results.json`. A module
whose main also takes `repeats` gets `--repeats`; one that lists `NEEDS` (importable modules, e.g. a
baseline's library) is checked before anything runs, and a missing one is named in one line with what to install.
"""

import importlib
import importlib.util
import inspect
import pkgutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import bench
import cli_config
from cli_config import at_least, opt
from safe_output import UserError, atomic_json, run_cli, use_output

NAMES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
INSTALL = "make bench, or pip install '.[bench]'"


@dataclass
class BenchConfig:
    output: str = opt("runs/bench", "folder to write (created, or empty, or an earlier bench output)", metavar="DIR")
    only: list[str] = opt([], f"benchmarks to run (default: all of {', '.join(NAMES)})", metavar="NAME")
    repeats: int = opt(
        3, "timed repeats of each measurement, after a warm-up, ours and the baseline interleaved", check=at_least(1)
    )

    def validate(self):
        unknown = sorted(set(self.only) - set(NAMES))
        if unknown:
            raise ValueError(f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")


def build_parser() -> cli_config.OneLineParser:
    parser = cli_config.new_parser("python -m bench", __doc__)
    cli_config.add_arguments(parser, BenchConfig)
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if another bench is using --output, wait for it to end (default: stop at once)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("bench", lambda: run(args))


def run(args) -> None:
    cfg = cli_config.resolve(BenchConfig, args, UserError)
    out = Path(cfg.output)
    modules = {}
    for name in cfg.only or NAMES:  # every baseline's library present before anything runs
        try:
            modules[name] = module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as e:
            raise UserError(f"{name} needs {e.name}: {INSTALL}") from None
        missing = [m for m in getattr(module, "NEEDS", ()) if importlib.util.find_spec(m) is None]
        if missing:
            raise UserError(f"{name} needs {', '.join(missing)}: {INSTALL}")
    with use_output(out, "bench", wait=args.wait):  # a benchmark may empty its own sub-folder
        cli_config.write_record(cfg, out, "python -m bench")
        results = {}
        for name, module in modules.items():
            print(f"\n=== {name} ===", flush=True)
            start = time.time()
            takes_repeats = "repeats" in inspect.signature(module.main).parameters
            results[name] = module.main(out / name, **({"repeats": cfg.repeats} if takes_repeats else {}))
            print(f"--- {name} took {time.time() - start:.0f}s", flush=True)
        atomic_json(out / "results.json", results)
    print(f"\nresults: {out / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
