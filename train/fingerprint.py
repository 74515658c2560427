"""Fingerprints: the identity of every reusable unit, from its settings and its inputs' fingerprints.

The chain is raw input -> clean corpus -> tokenizer -> token shards -> checkpoint -> evaluation result.
Each unit's fingerprint hashes its complete configuration together with the fingerprints of what it was
made from, so a changed setting or input changes exactly the fingerprints downstream of it. They are
cheap: a clean corpus and token shards are fingerprinted from their manifests (which hold a sha256 per
shard), a run from its config and inputs, never by re-reading the data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SHORT = 10  # hex digits in folder names; the full 16 go in the records


def fingerprint(obj) -> str:
    """A stable hash of any JSON-able value (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def short(fp: str) -> str:
    return fp[:SHORT]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def files_fingerprint(paths: list[str | Path]) -> str:
    """Content of raw input files and folders (every file below a folder, by relative path)."""
    entries = []
    for root in map(Path, paths):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            entries.append([root.name, str(f.relative_to(root)) if root.is_dir() else "", file_sha256(f)])
    return fingerprint(entries)


def clean_fingerprint(clean_dir: str | Path) -> str:
    """A clean corpus (contract 1) is its shards: their sha256s, from manifest.json."""
    clean_dir = Path(clean_dir)
    manifest = json.loads((clean_dir / "manifest.json").read_text())
    if "shards" in manifest:
        return fingerprint([[s["path"], s["sha256"]] for s in manifest["shards"]])
    # a manifest written by other tools without per-shard hashes: hash the shards themselves
    return fingerprint([[f"shards/{p.name}", file_sha256(p)] for p in sorted((clean_dir / "shards").glob("*.arrow"))])


def tokens_fingerprint(tokens_dir: str | Path) -> str:
    """Token shards: what they were made from (clean corpus, tokenizer, block size, split) and their content."""
    return json.loads((Path(tokens_dir) / "manifest.json").read_text())["content_fingerprint"]


def model_fingerprint(model_dir: str | Path) -> str:
    """A model directory: the fingerprint of the run that exported it, or a hash of its config and weights."""
    model_dir = Path(model_dir)
    provenance = model_dir / "provenance.json"
    if provenance.exists():
        return json.loads(provenance.read_text())["fingerprint"]
    names = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.json", "merges.txt")
    return fingerprint([[n, file_sha256(model_dir / n)] for n in names if (model_dir / n).is_file()])


def describe_change(recorded: dict, now: dict) -> str:
    """`name a -> b, ...` for the keys whose fingerprints differ."""
    return ", ".join(
        f"{k} {short(str(recorded.get(k)))} -> {short(str(now.get(k)))}"
        for k in sorted(set(recorded) | set(now))
        if recorded.get(k) != now.get(k)
    )
