"""report.html with 100,000 removed documents: what the bound costs (sampled rows, memory-mapped Arrow)
beside what an unbounded page would cost (every removed row read into Python and embedded).

The removed documents are real WikiText paragraphs written as a step's `removed/language/` shards; a
`shards/` folder holds 5,000 kept ones. Measured: time to build the page, its size, and (when Debian's
chromium is installed) the time headless Chromium takes to load and lay it out, network off.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
REMOVED, KEPT = 100_000, 5_000


def write_corpus(out: Path) -> dict:
    from datatrove.data import Document

    from corpus.arrow_writer import ArrowShardWriter

    paragraphs = [
        line.strip() for line in (SHARED / "wikitext-2-raw" / "wiki.test.raw").open(encoding="utf-8") if len(line) > 300
    ]
    rng = random.Random(0)
    for folder, n, lang in (("removed/language", REMOVED, "de"), ("shards", KEPT, "en")):
        with ArrowShardWriter(out / folder) as writer:
            for i in range(n):
                writer.write(
                    Document(
                        text=rng.choice(paragraphs),
                        id=f"{folder}-{i}",
                        metadata={"source": f"file{i % 7}.jsonl", "language": lang},
                    ),
                    0,
                )
    step = {
        "step": "language",
        "docs_in": REMOVED + KEPT,
        "docs_out": KEPT,
        "docs_removed": REMOVED,
        "bytes_in": 0,
        "bytes_out": 0,
        "bytes_removed": 0,
        "reasons": {},
        "time_s": 0.0,
        "removed_dir": "removed/language",
    }
    return {
        "preset": "full",
        "input": {"documents": REMOVED + KEPT, "text_bytes": 0, "skipped": {}},
        "output": {"documents": KEPT, "text_bytes": 0},
        "steps": [step],
        "line_level": {},
    }


def unbounded_cost(out: Path) -> tuple[float, int]:
    """Seconds to read every removed row into Python, and the bytes of their texts as JSON (what a page
    embedding all of them would hold at least)."""
    from corpus.arrow_writer import iter_shard_rows

    start, size = time.time(), 0
    for shard in sorted((out / "removed" / "language").glob("*.arrow")):
        for row in iter_shard_rows(shard):
            size += len(json.dumps(row["text"], ensure_ascii=False).encode("utf-8"))
    return time.time() - start, size


def chromium_load_s(page: Path) -> float | None:
    if not shutil.which("chromium"):
        return None
    sys.path.insert(0, str(ROOT / "tests"))
    from browser import Browser

    with Browser(page.parent / "profile") as b:
        b.open(page)
        assert not b.errors, b.errors
        return b.eval("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000


def main(out_dir: Path) -> dict:
    from corpus.report_html import render_html

    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    stats = write_corpus(out_dir)
    start = time.time()
    html = render_html(stats, {"inputs": ["(generated)"], "shards": [], "rows": KEPT}, out_dir)
    build_s = time.time() - start
    page = out_dir / "report.html"
    page.write_text(html, encoding="utf-8")
    read_all_s, all_bytes = unbounded_cost(out_dir)
    load_s = chromium_load_s(page)
    arrow_mb = sum(p.stat().st_size for p in (out_dir / "removed").rglob("*.arrow")) / 1e6
    result = {
        "removed_docs": REMOVED,
        "removed_arrow_mb": round(arrow_mb, 1),
        "build_s": round(build_s, 2),
        "page_mb": round(len(html.encode()) / 1e6, 2),
        "chromium_load_s": None if load_s is None else round(load_s, 2),
        "unbounded_read_s": round(read_all_s, 2),
        "unbounded_texts_mb": round(all_bytes / 1e6, 1),
    }
    print(f"{REMOVED:,} removed documents ({arrow_mb:.0f} MB of Arrow), {KEPT:,} kept")
    print(f"{'':<36}{'bounded (ours)':>16}{'all rows':>12}")
    print(f"{'build time (s)':<36}{build_s:>16.2f}{read_all_s:>12.2f}  (all rows: reading them only)")
    print(f"{'page / embedded text (MB)':<36}{result['page_mb']:>16.2f}{result['unbounded_texts_mb']:>12.1f}")
    if load_s is not None:
        print(f"headless Chromium loads report.html in {load_s:.2f} s")
    return result
