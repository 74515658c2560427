"""Token shards (DESIGN.md contract 2): a clean-corpus directory tokenized into flat memory-mapped arrays.

    <out>/manifest.json                 tokenizer identity, vocab size, block size, splits, source
    <out>/tokenizer/                    the tokenizer itself (Hugging Face format)
    <out>/train-00000.bin ...           uint16 (or uint32) token ids; documents joined by EOS
    <out>/val-00000.bin ...

A document goes to the validation split when a hash of its id says so (stable whatever the order or
the number of shards). Training samples are blocks of `block_size + 1` tokens (inputs and shifted
targets) at multiples of `block_size`; `train.data` reads them memory-mapped.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from train.tokenizer import TokenizerError, load_tokenizer, save_tokenizer, vocab_fingerprint

FORMAT = "flat-tokens-v1"


def is_validation(doc_id: str, val_fraction: float) -> bool:
    bucket = int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "little") % 1_000_000
    return bucket < val_fraction * 1_000_000


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
        np.asarray(ids, dtype=self.dtype).tofile(self._file)
        self.shards[-1]["tokens"] += len(ids)
        self.tokens += len(ids)
        self.docs += 1

    def _open(self) -> None:
        self.close()
        name = f"{self.split}-{len(self.shards):05d}.bin"
        self._file = open(self.folder / name, "wb")
        self.shards.append({"path": name, "tokens": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def tokenize_corpus(clean_dir: str | Path, tokenizer_dir: str | Path, out: str | Path, block_size: int = 128,
                    val_fraction: float = 0.01, shard_tokens: int = 2**26, batch_docs: int = 512) -> dict:
    import pyarrow as pa

    clean_dir, out = Path(clean_dir), Path(out)
    source_manifest = clean_dir / "manifest.json"
    if not source_manifest.exists():
        raise TokenizerError(f"{clean_dir}: no manifest.json (is it a finished clean-corpus directory?)")
    tok = load_tokenizer(tokenizer_dir)
    wanted = {"source_sha256": hashlib.sha256(source_manifest.read_bytes()).hexdigest(), "fingerprint": vocab_fingerprint(tok),
              "block_size": block_size, "val_fraction": val_fraction}
    if (out / "manifest.json").exists():
        manifest = json.loads((out / "manifest.json").read_text())
        if {k: manifest.get(k) for k in wanted} == wanted:
            print(f"token shards already made: {out}")
            return manifest
        raise TokenizerError(f"{out} holds token shards of another corpus or tokenizer: remove it or choose another --out")
    eos = tok.eos_token_id
    dtype = np.uint16 if len(tok) <= 2**16 else np.uint32
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writers = {s: ShardWriter(tmp, s, dtype, shard_tokens) for s in ("train", "val")}
    total_rows = json.loads(source_manifest.read_text())["rows"]
    backend = tok.backend_tokenizer
    start = last = time.time()
    rows = 0
    for shard in sorted((clean_dir / "shards").glob("*.arrow")):
        try:
            with pa.memory_map(str(shard), "r") as src:
                for batch in pa.ipc.open_stream(src):
                    ids, texts = batch.column("id").to_pylist(), batch.column("text").to_pylist()
                    for i in range(0, len(texts), batch_docs):
                        encoded = backend.encode_batch(texts[i:i + batch_docs], add_special_tokens=False)
                        for doc_id, enc in zip(ids[i:i + batch_docs], encoded):
                            writers["val" if is_validation(doc_id, val_fraction) else "train"].write(enc.ids + [eos])
                        rows += len(encoded)
                        if time.time() - last > 5:
                            last = time.time()
                            rate = rows / (last - start)
                            toks = writers["train"].tokens + writers["val"].tokens
                            print(f"  tokenize: {rows:,}/{total_rows:,} docs, {rate:,.0f} docs/s, {toks / (last - start):,.0f} tokens/s, "
                                  f"ETA {(total_rows - rows) / rate:,.0f}s", flush=True)
        except (pa.ArrowException, OSError) as e:
            raise TokenizerError(f"{shard}: corrupt or truncated shard ({e})") from None
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
    manifest = {"format": FORMAT, **wanted, "dtype": np.dtype(dtype).name, "eos_id": eos, "vocab_size": len(tok),
                "tokenizer": str(Path(tokenizer_dir).resolve()), "source": str(clean_dir.resolve()), "splits": splits}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    elapsed = time.time() - start
    print(f"token shards: {out}: train {splits['train']['tokens']:,} tokens ({splits['train']['blocks']:,} blocks), "
          f"val {splits['val']['tokens']:,} tokens, {elapsed:,.0f}s")
    return manifest
