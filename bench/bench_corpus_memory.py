"""Peak memory of `corpus-clean --preset full` on 1x and 10x the input: flat apart from the dedup index.

Readers stream, shards are written batch by batch and bounded, so memory should not grow with the corpus
except for what deduplication must hold (MinHash signatures are on disk; exact-dedup and LSH buckets
are sorted files, merged as streams).
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

from bench.memory import peak_rss

ROOT = Path(__file__).resolve().parents[1]


def main(out_dir: Path) -> dict:
    files = sorted((ROOT / "data" / "demo" / "jsonl").glob("*.jsonl.gz"))
    if not files:
        print("needs the demo corpus: run `make demo-corpus` first")
        return {"skipped": "no demo corpus"}
    records = [line for f in files for line in gzip.open(f, "rt")]
    results = {}
    print(f"{'input':<8}{'docs':>8}{'MB text':>10}{'peak RSS (MB)':>16}{'wall (s)':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, share in (("1x", 10), ("10x", 1)):
            subset = records[::share]
            src = Path(tmp) / f"{label}.jsonl"
            src.write_text("".join(subset))
            mb = sum(len(json.loads(r)["text"].encode()) for r in subset) / 1e6
            cmd = [
                sys.executable,
                "-m",
                "corpus.cli",
                "--input",
                str(src),
                "--output",
                str(Path(tmp) / f"out-{label}"),
                "--preset",
                "full",
                "--workers",
                "2",
            ]
            rss, wall, code = peak_rss(cmd)
            results[label] = {"docs": len(subset), "text_mb": mb, "peak_rss_mb": rss, "wall_s": wall, "exit": code}
            print(f"{label:<8}{len(subset):>8,}{mb:>10.1f}{rss:>16.0f}{wall:>10.1f}")
    ratio = results["10x"]["peak_rss_mb"] / results["1x"]["peak_rss_mb"]
    print(f"10x the input -> {ratio:.2f}x the peak memory (all processes: the driver and 2 workers)")
    return results
