"""Token shards (DESIGN.md contract 2): a clean-corpus directory tokenized into flat memory-mapped arrays.

    <out>/manifest.json                 tokenizer identity, vocab size, block size, splits, source
    <out>/tokenizer/                    the tokenizer itself (Hugging Face format)
    <out>/train-00000.bin ...           uint16 (or uint32) token ids; documents joined by EOS
    <out>/val-00000.bin ...

The validation split is made of whole near-duplicate clusters (`train.split`): no validation document
has a near-duplicate in training (word 5-gram Jaccard >= 0.8), and the manifest records the leakage an
id-hash split would have had beside the cluster split's (`split`). `--split id-hash` holds documents
out by a hash of their id alone (no clustering pass, for corpora too large to cluster in memory). Training samples are blocks of `block_size + 1` tokens (inputs and shifted
targets) at multiples of `block_size`; `train.data` reads them memory-mapped.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from cli_config import RECORD
from safe_output import atomic_contents, atomic_json, atomic_write, reuse_or_replace, use_output

from train.fingerprint import clean_fingerprint, describe_change, fingerprint
from train.split import cluster_split, find_near_duplicates, id_hash_split, is_validation, leakage
from train.tokenizer import TokenizerError, check_clean_corpus, load_tokenizer, save_tokenizer, vocab_fingerprint

FORMAT = "flat-tokens-v1"
COMMAND = "train tokenize"
SPLITS = ("cluster", "id-hash")


def iter_documents(clean_dir: Path):
    """(ids, texts) batches of a clean corpus's shards, memory-mapped."""
    import pyarrow as pa

    for shard in sorted((clean_dir / "shards").glob("*.arrow")):
        try:
            with pa.memory_map(str(shard), "r") as src:
                for batch in pa.ipc.open_stream(src):
                    yield batch.column("id").to_pylist(), batch.column("text").to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise TokenizerError(f"{shard}: corrupt or truncated shard ({e})") from None


PARALLEL_FROM_BYTES = 16 * 2**20  # below this much text, starting worker processes costs more than it saves


def held_out_documents(clean_dir: Path, val_fraction: float, split: str,
                       workers: int = 1) -> tuple[dict[str, bool] | None, dict]:
    """(doc id -> held out?, what the manifest records about the split); None: decide by id hash on the fly."""
    if split == "id-hash":
        return None, {"method": "id-hash"}
    start = time.time()
    source = json.loads((clean_dir / "manifest.json").read_text())
    text_bytes = sum(s.get("text_bytes", 0) for s in source.get("shards", []))
    workers = workers if text_bytes >= PARALLEL_FROM_BYTES else 1
    docs = ((i, t) for ids, texts in iter_documents(clean_dir) for i, t in zip(ids, texts))
    total = source.get("rows", 0)
    found = find_near_duplicates(with_progress(docs, total, "split: hashing"), workers)
    held = cluster_split(found, val_fraction)
    info = {"method": "cluster", "near_duplicate_pairs": len(found.pairs), "lsh_miss_probability_at_0.8": found.miss_probability,
            "leakage": {"id-hash": leakage(found, id_hash_split(found, val_fraction)), "cluster": leakage(found, held)}}
    before, after = info["leakage"]["id-hash"], info["leakage"]["cluster"]
    print(f"  split: {len(found.pairs):,} near-duplicate pairs; validation docs with a training near-duplicate: "
          f"{before['leaked_docs']:,}/{before['val_docs']:,} by id hash, {after['leaked_docs']:,}/{after['val_docs']:,} by cluster "
          f"({time.time() - start:,.0f}s)", flush=True)
    return held, info


def with_progress(items, total: int, label: str, every_s: float = 5.0):
    """The items, with a line every `every_s` seconds: how many of `total`, how fast, and the ETA."""
    start = last = time.time()
    for n, item in enumerate(items, 1):
        yield item
        if time.time() - last > every_s:
            last = time.time()
            rate = n / (last - start)
            eta = max(0, total - n) / rate
            print(f"  {label}: {n:,}/{total:,} docs, {rate:,.0f} docs/s, ETA {eta:,.0f}s", flush=True)


class ShardWriter:
    """Append token arrays to `<split>-NNNNN.bin` files of at most `shard_tokens` tokens."""

    def __init__(self, folder: Path, split: str, dtype, shard_tokens: int):
        self.folder, self.split, self.dtype, self.shard_tokens = folder, split, dtype, shard_tokens
        self.shards: list[dict] = []
        self._file = None
        self.tokens = self.docs = 0

    def write(self, ids: list[int]) -> None:
        if self._file is None or self.shards[-1]["tokens"] >= self.shard_tokens:
            self._open()
        data = np.asarray(ids, dtype=self.dtype).tobytes()
        self._file.write(data)
        self._hash.update(data)  # the shard's sha256, for the manifest (fingerprints never re-read data)
        self.shards[-1]["tokens"] += len(ids)
        self.tokens += len(ids)
        self.docs += 1

    def _open(self) -> None:
        self.close()
        name = f"{self.split}-{len(self.shards):05d}.bin"
        self._file = open(self.folder / name, "wb")
        self._hash = hashlib.sha256()
        self.shards.append({"path": name, "tokens": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self.shards[-1]["sha256"] = self._hash.hexdigest()


def tokenize_corpus(clean_dir: str | Path, tokenizer_dir: str | Path, out: str | Path, block_size: int = 128,
                    val_fraction: float = 0.01, shard_tokens: int = 2**26, batch_docs: int = 512, split: str = "cluster",
                    overwrite: bool = False, wait: bool = False, record: str = "", workers: int = 0) -> dict:
    """Token shards of a clean corpus. `workers` processes find the near-duplicates of the cluster split
    (0: every core); tokenizers encodes each batch of documents on every core by itself. `record`: the resolved
    settings (config.toml), written with the shards."""
    clean_dir, out = Path(clean_dir), Path(out)
    source_manifest = clean_dir / "manifest.json"
    if not source_manifest.exists():
        raise TokenizerError(f"{clean_dir}: no manifest.json (is it a finished clean-corpus directory?)")
    check_clean_corpus(clean_dir)
    if split not in SPLITS:
        raise TokenizerError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    tok = load_tokenizer(tokenizer_dir)
    # what the shards are made from: the clean corpus's content, the tokenizer's vocabulary, and the settings
    wanted = {"clean_fingerprint": clean_fingerprint(clean_dir), "fingerprint": vocab_fingerprint(tok),
              "block_size": block_size, "val_fraction": val_fraction, "split_method": split}
    with use_output(out, COMMAND, wait=wait, legacy=("manifest.json", "tokenizer/tokenizer.json"),
                    inputs={"--data": [clean_dir], "--tokenizer": [tokenizer_dir]}):
        if (out / "manifest.json").exists():
            manifest = json.loads((out / "manifest.json").read_text())
            recorded = {k: manifest.get(k) for k in wanted}
            if reuse_or_replace(out, COMMAND, recorded == wanted, overwrite, changes=describe_change(recorded, wanted)):
                print(f"token shards already made: {out}")
                return manifest
        start = time.time()
        with atomic_contents(out, finished="manifest.json") as tmp:
            manifest = _tokenize_into(tmp, clean_dir, tok, tokenizer_dir, wanted, split, shard_tokens, batch_docs,
                                      workers or os.cpu_count() or 1)
            if record:
                atomic_write(tmp / RECORD, record)
    splits = manifest["splits"]
    print(f"token shards: {out}: train {splits['train']['tokens']:,} tokens ({splits['train']['blocks']:,} blocks), "
          f"val {splits['val']['tokens']:,} tokens, {time.time() - start:,.0f}s")
    return manifest


def _tokenize_into(tmp: Path, clean_dir: Path, tok, tokenizer_dir, wanted: dict, split: str, shard_tokens: int,
                   batch_docs: int, workers: int) -> dict:
    """Tokenize into the temporary folder `tmp` (moved into the output folder when complete)."""
    block_size, val_fraction = wanted["block_size"], wanted["val_fraction"]
    source_manifest = clean_dir / "manifest.json"
    held, split_info = held_out_documents(clean_dir, val_fraction, split, workers)
    eos = tok.eos_token_id
    dtype = np.uint16 if len(tok) <= 2**16 else np.uint32
    writers = {s: ShardWriter(tmp, s, dtype, shard_tokens) for s in ("train", "val")}
    total_rows = json.loads(source_manifest.read_text())["rows"]
    backend = tok.backend_tokenizer
    start = last = time.time()
    rows = 0
    for ids, texts in iter_documents(clean_dir):
        for i in range(0, len(texts), batch_docs):
            # on every core (tokenizers' own threads); _fast: without the character offsets we do not use
            encoded = backend.encode_batch_fast(texts[i:i + batch_docs], add_special_tokens=False)
            for doc_id, enc in zip(ids[i:i + batch_docs], encoded):
                held_out = held[doc_id] if held is not None else is_validation(doc_id, val_fraction)
                writers["val" if held_out else "train"].write(enc.ids + [eos])
            rows += len(encoded)
            if time.time() - last > 5:
                last = time.time()
                rate = rows / (last - start)
                toks = writers["train"].tokens + writers["val"].tokens
                print(f"  tokenize: {rows:,}/{total_rows:,} docs, {rate:,.0f} docs/s, {toks / (last - start):,.0f} tokens/s, "
                      f"ETA {(total_rows - rows) / rate:,.0f}s", flush=True)
    for w in writers.values():
        w.close()
    splits = {}
    for name, w in writers.items():
        blocks = sum(max(0, (s["tokens"] - 1) // block_size) for s in w.shards)
        splits[name] = {"shards": w.shards, "tokens": w.tokens, "docs": w.docs, "blocks": blocks}
    if splits["train"]["blocks"] == 0:
        raise TokenizerError(f"{clean_dir}: not enough text for one training block of {block_size + 1} tokens")
    if splits["val"]["blocks"] == 0:
        raise TokenizerError(f"{clean_dir}: the validation split holds no full block; raise --val-fraction (now {val_fraction})")
    save_tokenizer(tok, tmp / "tokenizer")
    content = fingerprint({**wanted, "shards": {n: [s["sha256"] for s in sp["shards"]] for n, sp in splits.items()}})
    manifest = {"format": FORMAT, **wanted, "content_fingerprint": content, "split": split_info,
                "source_sha256": hashlib.sha256(source_manifest.read_bytes()).hexdigest(), "dtype": np.dtype(dtype).name, "eos_id": eos, "vocab_size": len(tok),
                "tokenizer": str(Path(tokenizer_dir).resolve()), "source": str(clean_dir.resolve()), "splits": splits}
    atomic_json(tmp / "manifest.json", manifest)
    return manifest
