"""`make bench`: run every benchmark module `bench/bench_*.py` (or the ones given with --only).

Each module has `main(out_dir: Path) -> dict` that measures our code beside a baseline in the same
run, prints a table and returns its numbers; they are collected in `runs/bench/results.json`.
"""
import importlib
import pkgutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import bench
import cli_config
from cli_config import opt
from safe_output import UserError, atomic_json, run_cli, use_output

NAMES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))


@dataclass
class BenchConfig:
    output: str = opt("runs/bench", "folder to write (created, or empty, or an earlier bench output)", metavar="DIR")
    only: list[str] = opt([], f"benchmarks to run (default: all of {', '.join(NAMES)})", metavar="NAME")

    def validate(self):
        unknown = sorted(set(self.only) - set(NAMES))
        if unknown:
            raise ValueError(f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")


def build_parser() -> cli_config.OneLineParser:
    parser = cli_config.new_parser("python -m bench", __doc__)
    cli_config.add_arguments(parser, BenchConfig)
    parser.add_argument("--wait", action="store_true",
                        help="if another bench is using --output, wait for it to end (default: stop at once)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("bench", lambda: run(args))


def run(args) -> None:
    cfg = cli_config.resolve(BenchConfig, args, UserError)
    out = Path(cfg.output)
    with use_output(out, "bench", wait=args.wait, legacy=("results.json",)):  # a benchmark may empty its own sub-folder
        cli_config.write_record(cfg, out, "python -m bench")
        results = {}
        for name in cfg.only or NAMES:
            print(f"\n=== {name} ===", flush=True)
            start = time.time()
            results[name] = importlib.import_module(f"bench.{name}").main(out / name)
            print(f"--- {name} took {time.time() - start:.0f}s", flush=True)
        atomic_json(out / "results.json", results)
    print(f"\nresults: {out / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
