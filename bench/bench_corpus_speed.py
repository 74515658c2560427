"""Cleaning, end to end: the whole `corpus-clean --preset full` command vs datatrove's default steps.

Both are run as whole commands on the same input with the same number of workers: ours, and
`bench.datatrove_default_clean` (datatrove's LanguageFilter, Gopher repetition and quality, C4 and FineWeb
quality and its four MinHash stages, all with their defaults). The cost is CPU-seconds of every process
of the command (this process becomes the "subreaper" of the run, so even processes whose parent exits
first, like a multiprocessing forkserver, are waited for and counted in RUSAGE_CHILDREN). CPU time, not
wall time: the machine may be shared. One warm-up run each, then `repeats` runs, median.

Keep/drop decisions are compared per input document (kept by both or dropped by both). The per-step table
counts documents each step dropped in one run of each (counts are per step; times would not be:
the steps of a pass run interleaved, document by document). A page is counted by the first step that
drops it, and ours tests Gopher quality before Gopher repetition: the two Gopher rows compare in sum.
"""

from __future__ import annotations

import ctypes
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

from bench.datatrove_default_clean import STEPS

NEEDS = ("spacy",)  # datatrove's default word tokenizer, in its default steps (the baseline)
ROOT = Path(__file__).resolve().parents[1]
INPUT = Path(os.environ.get("BENCH_CLEAN_INPUT", ROOT / "data" / "demo" / "jsonl"))
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
# 0: no warm-up run (for an input so large that a warm-up would double the benchmark's hours; run a small input
# first for the file cache and byte-compiled modules)
WARMUP = int(os.environ.get("BENCH_WARMUP", 1))
WORKERS = 2


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to us, so we can wait for them and count their CPU time."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_orphans(timeout_s: float = 60.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def cpu_of(cmd: list[str]) -> tuple[float, float]:
    """CPU-seconds (user + system, all processes) and wall seconds of one run of `cmd`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wall = time.time() - start
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def ours_cmd(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "corpus.cli",
        "--input",
        str(INPUT),
        "--output",
        str(out),
        "--preset",
        "full",
        "--workers",
        str(WORKERS),
    ]


def baseline_cmd(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.datatrove_default_clean",
        "--input",
        str(INPUT),
        "--output",
        str(out),
        "--workers",
        str(WORKERS),
    ]


def measure(make_cmd, scratch: Path, name: str) -> tuple[list[float], list[float], Path]:
    cpus, walls = [], []
    first = 1 - WARMUP  # run 0 is the warm-up (file cache, byte-compiled modules)
    for i in range(first, REPEATS + 1):
        out = scratch / f"{name}-{i}"
        cpu, wall = cpu_of(make_cmd(out))
        print(f"  {name} run {i}{' (warm-up)' if i == 0 else ''}: {cpu:.1f} CPU s, {wall:.0f} s wall", flush=True)
        if i:
            cpus.append(cpu)
            walls.append(wall)
        if i < REPEATS:
            shutil.rmtree(out)
    return cpus, walls, out


def ours_fates(out: Path) -> tuple[set[str], dict[str, int]]:
    import pyarrow as pa

    kept = set()
    for shard in sorted((out / "shards").glob("*.arrow")):
        with pa.memory_map(str(shard)) as f:
            kept.update(pa.ipc.open_stream(f).read_all().column("id").to_pylist())
    stats = json.loads((out / "stats.json").read_text())
    return kept, {s["step"]: s["docs_removed"] for s in stats["steps"]}


def jsonl_ids(folder: Path) -> list[str]:
    return [json.loads(line)["id"] for f in sorted(folder.rglob("*.jsonl.gz")) for line in gzip.open(f, "rt")]


def baseline_fates(out: Path) -> tuple[set[str], dict[str, int]]:
    removed = {step: len(jsonl_ids(out / "removed" / step)) for step in (*STEPS, "minhash")}
    return set(jsonl_ids(out / "kept")), removed


def input_ids() -> list[str]:
    files = [INPUT] if INPUT.is_file() else sorted(INPUT.glob("*.jsonl*"))
    return [json.loads(line)["id"] for f in files for line in (gzip.open(f, "rt") if f.suffix == ".gz" else open(f))]


def main(out_dir: Path) -> dict:
    if not INPUT.exists():
        raise SystemExit(f"{INPUT} not found: run `make demo-corpus` (or set BENCH_CLEAN_INPUT)")
    subreaper = become_subreaper()
    ids = input_ids()
    load = os.getloadavg()
    print(
        f"input: {INPUT} ({len(ids):,} documents); {WORKERS} workers; {WARMUP} warm-up + {REPEATS} runs each, median; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        + ("" if subreaper else "\n  (no subreaper on this OS: processes orphaned by their parent are not counted)")
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench-clean-"))
    try:
        ours_cpu, ours_wall, ours_out = measure(ours_cmd, scratch, "corpus-clean")
        base_cpu, base_wall, base_out = measure(baseline_cmd, scratch, "datatrove-defaults")
        ours_kept, ours_removed = ours_fates(ours_out)
        base_kept, base_removed = baseline_fates(base_out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ours_med, base_med = statistics.median(ours_cpu), statistics.median(base_cpu)
    agree = sum((i in ours_kept) == (i in base_kept) for i in ids) / len(ids)
    print(f"\n{'whole command':<40}{'CPU s (median)':>16}{'runs':>28}{'wall s (median)':>17}")
    for name, cpu, wall in (
        ("corpus-clean --preset full", ours_cpu, ours_wall),
        ("datatrove default steps", base_cpu, base_wall),
    ):
        print(
            f"{name:<40}{statistics.median(cpu):>16.1f}{', '.join(f'{c:.1f}' for c in cpu):>28}"
            f"{statistics.median(wall):>17.0f}"
        )
    print(
        f"{'ratio (datatrove / ours)':<40}{base_med / ours_med:>15.1f}x"
        f"   (range {min(base_cpu) / max(ours_cpu):.1f}x-{max(base_cpu) / min(ours_cpu):.1f}x; "
        f"load average after {os.getloadavg()[0]:.1f})"
    )
    print(
        f"\nkeep/drop decisions agree on {100 * agree:.2f}% of {len(ids):,} documents "
        f"(kept: ours {len(ours_kept):,}, datatrove defaults {len(base_kept):,})"
    )
    # ours tests Gopher quality before Gopher repetition (datatrove's defaults: the other way round), so a page
    # both would drop is credited to a different one of the two: their sum compares
    gophers = ("gopher_repetition", "gopher_quality")
    print(f"\n{'documents dropped by step':<28}{'ours':>8}{'datatrove':>11}")
    for step in (*STEPS, "exact_dedup", "minhash"):
        print(
            f"{step:<28}{ours_removed.get(step, 0):>8,}{base_removed.get(step, 0) if step in base_removed else '-':>11}"
        )
        if step == gophers[-1]:
            both = [sum(fates.get(g, 0) for g in gophers) for fates in (ours_removed, base_removed)]
            print(f"{'both Gopher filters':<28}{both[0]:>8,}{both[1]:>11}")
    return {
        "input": str(INPUT),
        "documents": len(ids),
        "workers": WORKERS,
        "repeats": REPEATS,
        "ours_cpu_s": ours_cpu,
        "datatrove_cpu_s": base_cpu,
        "ours_wall_s": ours_wall,
        "datatrove_wall_s": base_wall,
        "ratio": base_med / ours_med,
        "decision_agreement": agree,
        "load_average_before": load,
        "removed": {"ours": ours_removed, "datatrove": base_removed},
    }
