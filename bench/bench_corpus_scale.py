"""How the cost of `corpus-clean --preset full` grows with the input: wall time, CPU seconds of all processes and
peak RSS of the largest process, on a ~7 MB slice of the demo corpus (every 10th page), the whole demo corpus
(~69 MB of text) and the large demo corpus (`make demo-corpus-large`, if built). Cost per MB and peak RSS are
shown beside the demo corpus's (the baseline of this table): a cleaner whose cost grows linearly keeps both
ratios near 1.

Each input: one warm-up run, then `BENCH_REPEATS` runs (default 3; `BENCH_SCALE_LARGE_REPEATS`, default 1, for the
large corpus), median and spread. Inputs: `BENCH_SCALE_DEMO` (default data/demo/jsonl), `BENCH_SCALE_LARGE`
(default data/demo-large/jsonl). Every run is measured in a fresh process that waits for all the run's processes
(a "subreaper", see bench_corpus_speed), so each run's CPU time and peak RSS are its own.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_corpus_speed import become_subreaper, reap_orphans

ROOT = Path(__file__).resolve().parents[1]
DEMO = Path(os.environ.get("BENCH_SCALE_DEMO", ROOT / "data" / "demo" / "jsonl"))
LARGE = Path(os.environ.get("BENCH_SCALE_LARGE", ROOT / "data" / "demo-large" / "jsonl"))
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
LARGE_REPEATS = int(os.environ.get("BENCH_SCALE_LARGE_REPEATS", 1))
WORKERS = 2


def jsonl_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl.gz")) + sorted(folder.glob("*.jsonl"))


def text_mb(files: list[Path]) -> float:
    total = 0
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") if f.suffix == ".gz" else open(f, encoding="utf-8") as lines:
            total += sum(len(json.loads(line)["text"].encode("utf-8")) for line in lines)
    return total / 1e6


def every_nth_page(folder: Path, n: int, out: Path) -> Path:
    """A small input with the mix of the whole: every n-th page of every file."""
    with open(out, "w", encoding="utf-8") as sink:
        for f in jsonl_files(folder):
            with gzip.open(f, "rt", encoding="utf-8") if f.suffix == ".gz" else open(f, encoding="utf-8") as lines:
                for i, line in enumerate(lines):
                    if i % n == 0:
                        sink.write(line)
    return out


def measure_here(cmd: list[str]) -> dict:
    """Run `cmd`, wait for all its processes, return its CPU s, wall s and the peak RSS (MB) of its largest process."""
    become_subreaper()
    start = time.time()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wall = time.time() - start
    reap_orphans()
    if result.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def measure(cmd: list[str]) -> dict:
    """`measure_here` in a fresh process: RUSAGE_CHILDREN (CPU, peak RSS) then covers this run only."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_corpus_scale", "--measure", *cmd], capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout)


def clean_cmd(inp: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "corpus.cli",
        "--input",
        str(inp),
        "--output",
        str(out),
        "--preset",
        "full",
        "--workers",
        str(WORKERS),
    ]


def runs_of(name: str, inp: Path, repeats: int, scratch: Path) -> list[dict]:
    runs = []
    for i in range(repeats + 1):  # run 0 is the warm-up (file cache, byte-compiled modules)
        out = scratch / f"{name}-{i}"
        run = measure(clean_cmd(inp, out))
        shutil.rmtree(out, ignore_errors=True)
        print(
            f"  {name} run {i}{' (warm-up)' if i == 0 else ''}: {run['cpu_s']:.1f} CPU s, "
            f"{run['wall_s']:.0f} s wall, peak RSS {run['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        if i:
            runs.append(run)
    return runs


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def spread(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{min(values):.1f}-{max(values):.1f}"


def main(out_dir: Path) -> dict:
    if not DEMO.exists():
        raise SystemExit(f"{DEMO} not found: run `make demo-corpus` (or set BENCH_SCALE_DEMO)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        inputs = [
            ("slice", every_nth_page(DEMO, 10, scratch / "demo-every-10th.jsonl"), REPEATS),
            ("demo", DEMO, REPEATS),
        ]
        if LARGE.exists():
            inputs.append(("large", LARGE, LARGE_REPEATS))
        else:
            print(f"{LARGE} not found: the large corpus is left out (make demo-corpus-large, or set BENCH_SCALE_LARGE)")
        load = os.getloadavg()
        print(
            f"{WORKERS} workers; 1 warm-up + repeats each, median; "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        rows = {}
        for name, inp, repeats in inputs:
            files = [inp] if inp.is_file() else jsonl_files(inp)
            rows[name] = {"input": str(inp), "text_mb": text_mb(files), "runs": runs_of(name, inp, repeats, scratch)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = rows["demo"]
    base_per_mb = median(base["runs"], "cpu_s") / base["text_mb"]
    base_rss = median(base["runs"], "peak_rss_mb")
    print(
        f"\n{'input':<8}{'text MB':>9}{'wall s':>9}{'CPU s':>9}{'CPU s range':>14}{'CPU s/MB':>10}{'vs demo':>9}"
        f"{'peak RSS MB':>13}{'vs demo':>9}"
    )
    for name, row in rows.items():
        runs, mb = row["runs"], row["text_mb"]
        per_mb = median(runs, "cpu_s") / mb
        rss = median(runs, "peak_rss_mb")
        row.update(cpu_s_per_mb=per_mb, cpu_per_mb_vs_demo=per_mb / base_per_mb, peak_rss_vs_demo=rss / base_rss)
        print(
            f"{name:<8}{mb:>9.1f}{median(runs, 'wall_s'):>9.0f}{median(runs, 'cpu_s'):>9.1f}"
            f"{spread(runs, 'cpu_s'):>14}"
            f"{per_mb:>10.3f}{per_mb / base_per_mb:>8.2f}x{rss:>13.0f}{rss / base_rss:>8.2f}x"
        )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return {"workers": WORKERS, "load_average_before": load, "rows": rows}


if __name__ == "__main__" and sys.argv[1:2] == ["--measure"]:
    print(json.dumps(measure_here(sys.argv[2:])))
