"""Every core on one file: `corpus-clean --preset full` on one plain JSONL file (~17 MB: every 4th page of the demo
corpus, or `BENCH_WORKERS_INPUT`) with `--workers 1` and `--workers 2`, in alternating rounds (one warm-up round,
then `BENCH_REPEATS`, default 3), wall time median and range, and the kept documents of both compared (they must be
the same: the input is split below the file level and deduplication keeps the first copy in input order).

Wall time is what more workers buy, so this benchmark needs a machine with two idle cores to mean anything; the
load average is printed beside it, and each round also measures what two cores give on this machine at that
moment: a fixed pure-Python loop alone (the faster of two runs), then two copies of it at once (`ceiling` = twice
the time alone over the time of the pair; 2.0 on two free cores of their own, less where the cores are shared with
other machines).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_corpus_scale import DEMO, clean_cmd, every_nth_page, measure
from bench.bench_corpus_speed import ours_fates

INPUT = os.environ.get("BENCH_WORKERS_INPUT")
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))


SPIN = "x = 0\nfor i in range(6_000_000):\n    x += i * i % 7"  # ~1 s of one core, no I/O, no memory traffic


def parallel_ceiling() -> float:
    """Speed-up two processes get over one for the same CPU-bound work on this machine now (wall time)."""
    cmd = [sys.executable, "-c", SPIN]
    alone = []
    for _ in range(2):  # the faster of two: one core may be slower than the other at the moment
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        alone.append(time.perf_counter() - start)
    start = time.perf_counter()
    pair = [subprocess.Popen(cmd) for _ in range(2)]
    for p in pair:
        p.wait()
    return 2 * min(alone) / (time.perf_counter() - start)


def main(out_dir: Path) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        if INPUT:
            inp = Path(INPUT)
        elif DEMO.exists():
            inp = every_nth_page(DEMO, 4, scratch / "demo-every-4th.jsonl")
        else:
            raise SystemExit(f"{DEMO} not found: run `make demo-corpus` (or set BENCH_WORKERS_INPUT to one JSONL file)")
        load = os.getloadavg()
        print(
            f"input: {inp} ({inp.stat().st_size / 1e6:.1f} MB); 1 warm-up round + {REPEATS}, alternating; "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        walls: dict[int, list[float]] = {1: [], 2: []}
        ceilings: list[float] = []
        kept: dict[int, set] = {}
        for i in range(REPEATS + 1):
            ceiling = parallel_ceiling()
            print(f"  round {i}: two processes of a CPU loop run {ceiling:.2f}x as fast as one", flush=True)
            if i:
                ceilings.append(ceiling)
            for workers in (1, 2):
                out = scratch / f"w{workers}-{i}"
                cmd = clean_cmd(inp, out)
                run = measure(cmd[:-1] + [str(workers)])
                kept[workers] = ours_fates(out)[0]
                shutil.rmtree(out)
                print(
                    f"  round {i}{' (warm-up)' if i == 0 else ''}, --workers {workers}: {run['wall_s']:.1f} s wall, "
                    f"{run['cpu_s']:.1f} CPU s",
                    flush=True,
                )
                if i:
                    walls[workers].append(run["wall_s"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    # each round's two runs follow each other: their ratio is less exposed to the machine's drift in speed
    paired = [a / b for a, b in zip(walls[1], walls[2])]
    same = kept[1] == kept[2]
    ceiling = statistics.median(ceilings)
    print(
        f"\n--workers 1: {one:.1f} s wall (range {min(walls[1]):.1f}-{max(walls[1]):.1f}); --workers 2: {two:.1f} s "
        f"(range {min(walls[2]):.1f}-{max(walls[2]):.1f}); speed-up {one / two:.2f}x; round by round "
        f"{statistics.median(paired):.2f}x (range {min(paired):.2f}-{max(paired):.2f})"
    )
    print(
        f"the machine's own ceiling (two CPU loops vs one): {ceiling:.2f}x (range {min(ceilings):.2f}-"
        f"{max(ceilings):.2f}); the cleaner's speed-up round by round is "
        f"{statistics.median(paired) / ceiling:.0%} of it"
    )
    print(
        f"kept documents: {len(kept[1]):,} with 1 worker, {len(kept[2]):,} with 2, "
        f"{'the same' if same else 'DIFFERENT'}; load average after {os.getloadavg()[0]:.1f}"
    )
    return {
        "input": str(inp),
        "wall_s": {str(k): v for k, v in walls.items()},
        "speedup": one / two,
        "speedup_by_round": paired,
        "machine_ceiling_by_round": ceilings,
        "same_kept": same,
        "load_average_before": load,
    }
