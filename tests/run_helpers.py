"""Helpers shared by the training and fault tests: a clean-corpus folder as the cleaner writes it, and
a tiny pre-training command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
        ("metadata", pa.string()),
    ]
)


def write_clean_corpus(directory: Path, texts: list[str]) -> Path:
    """A clean-corpus directory (contract 1) as the corpus stage writes it."""
    (directory / "shards").mkdir(parents=True)
    rows = [
        {"id": f"doc-{i}", "text": t, "source": "test", "language": "en", "language_score": 1.0, "metadata": "{}"}
        for i, t in enumerate(texts)
    ]
    with pa.OSFile(str(directory / "shards" / "shard-00000.arrow"), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as w:
        w.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
    (directory / "manifest.json").write_text(json.dumps({"rows": len(rows)}))
    return directory


def train_cmd(tokens: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "train",
        "pretrain",
        "--tokens",
        str(tokens),
        "--output",
        str(out),
        "--init",
        "scratch",
        "--n-layer",
        "2",
        "--n-embd",
        "32",
        "--n-head",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--warmup",
        "5",
        "--log-every",
        "1",
        "--eval-every",
        "10",
        "--eval-blocks",
        "8",
        "--threads",
        "1",
        *extra,
    ]


def metric_lines(run: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock fields."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if k not in ("tokens_per_s", "elapsed_s")} for record in lines]


def wikitext_token_shards(
    shared_data: Path, root: Path, *, vocab_size: int, block_size: int, val_fraction: float
) -> tuple[Path, Path]:
    """(token shards, tokenizer) of 30 WikiText articles: a clean corpus, a BPE trained on it, its shards."""
    from corpus_helpers import wikitext_articles
    from train.tokenize_shards import tokenize_corpus
    from train.tokenizer import save_tokenizer, train_tokenizer

    clean = write_clean_corpus(root / "clean", wikitext_articles(shared_data, 30, min_words=100))
    save_tokenizer(train_tokenizer([clean], vocab_size=vocab_size), root / "tokenizer")
    tokenize_corpus(clean, root / "tokenizer", root / "tokens", block_size=block_size, val_fraction=val_fraction)
    return root / "tokens", root / "tokenizer"


def interruptible() -> None:
    """For a child that a test stops with SIGINT, SIGTERM or SIGHUP: their default actions, even when the suite
    runs as a background job or under nohup (whose children inherit SIGINT or SIGHUP ignored, which a command
    rightly leaves ignored)."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
