"""Small helpers shared by the corpus tests: write inputs, read clean-corpus outputs."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pyarrow as pa

from corpus.arrow_writer import iter_shard_rows


def write_jsonl(path: Path, records: list[dict | str | bytes]) -> Path:
    """Records are dicts (JSON-encoded) or raw str/bytes lines (to plant malformed input)."""
    with open(path, "wb") as f:
        for r in records:
            line = json.dumps(r).encode() if isinstance(r, dict) else (r.encode() if isinstance(r, str) else r)
            f.write(line + b"\n")
    return path


def shard_rows(out: Path, sub: str = "shards") -> list[dict]:
    rows = []
    for shard in sorted((out / sub).rglob("*.arrow")):
        rows += list(iter_shard_rows(shard))
    return rows


def kept_ids(out: Path) -> list[str]:
    return [r["id"] for r in shard_rows(out)]


def removed_ids(out: Path, step: str) -> list[str]:
    folder = out / "removed" / step
    return [r["id"] for r in shard_rows(out, f"removed/{step}")] if folder.exists() else []


def wikitext_articles(shared_data: Path, n: int, min_words: int = 250) -> list[str]:
    """Real prose: the first `n` WikiText test articles of at least `min_words` words."""
    text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text(encoding="utf-8")
    articles, current = [], []
    for line in text.splitlines():
        if line.startswith(" = ") and not line.startswith(" = = "):
            if current:
                articles.append("\n".join(current))
            current = [line.strip(" =")]
        elif line.strip():
            current.append(line.strip())
    articles.append("\n".join(current))
    long_enough = [a for a in articles if len(a.split()) >= min_words]
    return long_enough[:n]


def edit_words(text: str, rate: float, seed: int) -> str:
    """Replace a fraction `rate` of the words with other words from the same text (a light edit)."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i in rng.sample(range(len(words)), int(rate * len(words))):
        words[i] = rng.choice(words)
    return " ".join(words)


def arrow_stream_file(path: Path, table: pa.Table, batch_rows: int | None = None) -> Path:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=batch_rows)
    return path


def clean_cmd(inputs: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "corpus.cli",
        "--input",
        str(inputs),
        "--output",
        str(out),
        "--preset",
        "full",
        "--workers",
        "2",
        "--tasks",
        "3",
        *extra,
    ]


def snapshot(out: Path) -> dict:
    """Everything a user gets: the shards byte for byte, and the rows each step removed."""
    manifest = json.loads((out / "manifest.json").read_text())
    removed = {
        step.name: sorted(r["id"] for r in shard_rows(out, f"removed/{step.name}"))
        for step in sorted((out / "removed").iterdir())
    }
    stats = json.loads((out / "stats.json").read_text())
    return {
        "shards": [(s["path"], s["rows"], s["sha256"]) for s in manifest["shards"]],
        "removed": removed,
        "steps": [(s["step"], s["docs_in"], s["docs_out"], s["bytes_out"]) for s in stats["steps"]],
    }
