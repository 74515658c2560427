"""Token shards, what `train pretrain` reads: a clean-corpus directory tokenized into flat memory-mapped arrays.

    <out>/manifest.json                 tokenizer identity, vocab size, block size, splits, source
    <out>/tokenizer/                    the tokenizer itself (Hugging Face format)
    <out>/train-00000.bin ...           uint16 (or uint32) token ids; documents joined by EOS
    <out>/val-00000.bin ...

The validation split is made of whole near-duplicate clusters (`train.split`): no validation document
has a near-duplicate in training (word 5-gram Jaccard >= 0.8), and the manifest records the leakage an
id-hash split would have had beside the cluster split's (`split`). `--split id-hash` holds documents
out by a hash of their id alone (no clustering pass, for corpora too large to cluster in memory). Training
samples are blocks of `block_size + 1` tokens (inputs and shifted targets) at multiples of `block_size`;
`train.data` reads them memory-mapped.
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

from train import TrainError
from train.clean_corpus import iter_documents
from train.fingerprint import clean_fingerprint, describe_change, fingerprint
from train.split import held_out_documents, is_validation
from train.tokenizer import check_clean_corpus, copy_tokenizer, load_encoder, vocab_fingerprint

FORMAT = "flat-tokens-v1"
COMMAND = "train tokenize"
SPLITS = ("cluster", "id-hash")


def read_excluded(path: str | Path) -> set[str]:
    """Document ids, one a line (blank lines ignored)."""
    try:
        return {line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as e:
        raise TrainError(f"--exclude {path}: cannot read it ({e}); give a text file of document ids, one a line")


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


def tokenize_corpus(
    clean_dir: str | Path,
    tokenizer_dir: str | Path,
    out: str | Path,
    block_size: int = 128,
    val_fraction: float = 0.01,
    shard_tokens: int = 2**26,
    batch_docs: int = 512,
    split: str = "cluster",
    overwrite: bool = False,
    wait: bool = False,
    record: str = "",
    workers: int = 0,
    exclude: str | Path = "",
) -> dict:
    """Token shards of a clean corpus. `workers` processes find the near-duplicates of the cluster split
    (0: every core); tokenizers encodes each batch of documents on every core by itself. `record`: the resolved
    settings (config.toml), written with the shards. `exclude`: a file of document ids left out of both splits
    (the split of the others is unchanged); the manifest counts them."""
    clean_dir, out = Path(clean_dir), Path(out)
    excluded = read_excluded(exclude) if exclude else None
    source_manifest = clean_dir / "manifest.json"
    if not source_manifest.exists():
        raise TrainError(f"{clean_dir}: no manifest.json (is it a finished clean-corpus directory?)")
    check_clean_corpus(clean_dir)
    if split not in SPLITS:
        raise TrainError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    tok, eos = load_encoder(tokenizer_dir)
    # what the shards are made from: the clean corpus's content, the tokenizer's vocabulary, and the settings
    wanted = {
        "clean_fingerprint": clean_fingerprint(clean_dir),
        "fingerprint": vocab_fingerprint(tok),
        "block_size": block_size,
        "val_fraction": val_fraction,
        "split_method": split,
    }
    if excluded is not None:  # only then: shards made without exclusions keep their recorded settings
        wanted["exclude"] = fingerprint(sorted(excluded))
    with use_output(out, COMMAND, wait=wait, inputs={"--data": [clean_dir], "--tokenizer": [tokenizer_dir]}):
        if (out / "manifest.json").exists():
            manifest = json.loads((out / "manifest.json").read_text())
            recorded = {k: manifest.get(k) for k in wanted}
            if reuse_or_replace(out, COMMAND, recorded == wanted, overwrite, changes=describe_change(recorded, wanted)):
                print(f"token shards already made: {out}")
                return manifest
        start = time.time()
        with atomic_contents(out, finished="manifest.json") as tmp:
            manifest = _tokenize_into(
                tmp,
                clean_dir,
                tok,
                eos,
                tokenizer_dir,
                wanted,
                split,
                shard_tokens,
                batch_docs,
                workers or os.cpu_count() or 1,
                excluded,
            )
            if record:
                atomic_write(tmp / RECORD, record)
    splits = manifest["splits"]
    print(
        f"token shards: {out}: train {splits['train']['tokens']:,} tokens ({splits['train']['blocks']:,} blocks), "
        f"val {splits['val']['tokens']:,} tokens, {time.time() - start:,.0f}s"
    )
    return manifest


def _tokenize_into(
    tmp: Path,
    clean_dir: Path,
    tok,
    eos: int,
    tokenizer_dir,
    wanted: dict,
    split: str,
    shard_tokens: int,
    batch_docs: int,
    workers: int,
    excluded: set[str] | None,
) -> dict:
    """Tokenize into the temporary folder `tmp` (moved into the output folder when complete)."""
    block_size, val_fraction = wanted["block_size"], wanted["val_fraction"]
    source_manifest = clean_dir / "manifest.json"
    held, split_info = held_out_documents(clean_dir, val_fraction, split, workers)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    dtype = np.uint16 if vocab_size <= 2**16 else np.uint32
    writers = {s: ShardWriter(tmp, s, dtype, shard_tokens) for s in ("train", "val")}
    total_rows = json.loads(source_manifest.read_text())["rows"]
    start = last = time.time()
    rows = left_out = 0
    for ids, texts in iter_documents(clean_dir):
        if excluded:
            kept = [k for k, doc_id in enumerate(ids) if doc_id not in excluded]
            dropped = len(ids) - len(kept)
            left_out += dropped
            rows += dropped  # counted as read, for the progress line
            ids, texts = [ids[k] for k in kept], [texts[k] for k in kept]
        for i in range(0, len(texts), batch_docs):
            # on every core (tokenizers' own threads); _fast: without the character offsets we do not use
            encoded = tok.encode_batch_fast(texts[i : i + batch_docs], add_special_tokens=False)
            for doc_id, enc in zip(ids[i : i + batch_docs], encoded):
                held_out = held[doc_id] if held is not None else is_validation(doc_id, val_fraction)
                writers["val" if held_out else "train"].write(enc.ids + [eos])
            rows += len(encoded)
            if time.time() - last > 5:
                last = time.time()
                rate = rows / (last - start)
                toks = writers["train"].tokens + writers["val"].tokens
                print(
                    f"  tokenize: {rows:,}/{total_rows:,} docs, {rate:,.0f} docs/s, "
                    f"{toks / (last - start):,.0f} tokens/s, "
                    f"ETA {(total_rows - rows) / rate:,.0f}s",
                    flush=True,
                )
    for w in writers.values():
        w.close()
    splits = {}
    for name, w in writers.items():
        blocks = sum(max(0, (s["tokens"] - 1) // block_size) for s in w.shards)
        splits[name] = {"shards": w.shards, "tokens": w.tokens, "docs": w.docs, "blocks": blocks}
    if splits["train"]["blocks"] == 0:
        raise TrainError(f"{clean_dir}: not enough text for one training block of {block_size + 1} tokens")
    if splits["val"]["blocks"] == 0:
        raise TrainError(
            f"{clean_dir}: the validation split holds no full block; raise --val-fraction (now {val_fraction})"
        )
    copy_tokenizer(tokenizer_dir, tmp / "tokenizer")
    content = fingerprint({**wanted, "shards": {n: [s["sha256"] for s in sp["shards"]] for n, sp in splits.items()}})
    manifest = {
        "format": FORMAT,
        **wanted,
        "content_fingerprint": content,
        "split": split_info,
        "source_sha256": hashlib.sha256(source_manifest.read_bytes()).hexdigest(),
        "dtype": np.dtype(dtype).name,
        "eos_id": eos,
        "vocab_size": vocab_size,
        "tokenizer": str(Path(tokenizer_dir).resolve()),
        "source": str(clean_dir.resolve()),
        "splits": splits,
    }
    if excluded is not None:  # as recorded in the settings (`exclude`)
        manifest["excluded"] = {"ids_given": len(excluded), "docs_left_out": left_out}
    atomic_json(tmp / "manifest.json", manifest)
    return manifest
