r"""The held-out split: whole near-duplicate clusters go to one side, so validation text is never memorised.

Choosing validation documents by a hash of their id puts the copies of a page (a translation left
untranslated, a page mirrored in two manuals) on both sides, and held-out perplexity then partly
measures memorisation. Here documents are first grouped into clusters of near-duplicates (word 5-gram
Jaccard >= 0.8), with the MinHash machinery the cleaner's decontamination uses (datasketch `MinHash` /
`MinHashLSH`, words split as it splits them: `\w+` of the lowercased text); LSH proposes candidate pairs
at a looser threshold and the exact Jaccard of the 5-gram sets confirms them. A cluster is held out when the hash of its smallest
document id says so (`is_validation`), so the split stays stable whatever the order of documents.

`held_out_documents` makes the split of a clean corpus for `train tokenize`; `leakage` measures, for any
split, how many validation documents have a training near-duplicate among the confirmed pairs; the token manifest records it for the id-hash split and for the cluster split.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Iterable

import numpy as np

from train import TrainError
from train.clean_corpus import iter_documents

N_GRAM = 5
JACCARD = 0.8
NUM_PERM = 128
WORD = re.compile(r"\w+")  # the cleaner's decontamination splits words the same way (train/ does not import corpus/)
LSH_THRESHOLD = 0.5  # looser than JACCARD: LSH only proposes, the exact Jaccard decides


def is_validation(key: str, val_fraction: float) -> bool:
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "little") % 1_000_000
    return bucket < val_fraction * 1_000_000


def shingle_hashes(text: str) -> np.ndarray:
    """Sorted unique 64-bit hashes of the text's word 5-grams (the whole text if it is shorter)."""
    import xxhash

    ws = WORD.findall(text.lower())
    grams = [" ".join(ws[i:i + N_GRAM]) for i in range(max(1, len(ws) - N_GRAM + 1))] if ws else []
    return np.unique(np.fromiter((xxhash.xxh64_intdigest(g) for g in grams), dtype=np.uint64, count=len(grams)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) or not len(b):
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


@dataclass
class NearDuplicates:
    ids: list[str]
    pairs: list[tuple[int, int]]  # confirmed: Jaccard >= JACCARD
    miss_probability: float  # chance that LSH misses a pair at exactly JACCARD


@lru_cache(maxsize=1)
def _template():
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=1)


def shingles_and_signature(text: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(the text's 5-gram hashes, their MinHash signature or None for a text without words)."""
    from datasketch import MinHash

    hashes = shingle_hashes(text)
    if not len(hashes):
        return hashes, None
    template = _template()
    m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=int, permutations=template.permutations, scheme=template.scheme)
    m.update_batch((hashes & np.uint64(0xFFFFFFFF)).tolist())  # datasketch's permutations expect 32-bit hashes
    return hashes, m.hashvalues


def find_near_duplicates(docs: Iterable[tuple[str, str]], workers: int = 1) -> NearDuplicates:
    """Confirmed near-duplicate pairs among (id, text) documents; `workers` processes hash the texts (the same
    result as one), a batch of documents at a time."""
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    ids, sets, signatures = [], [], []
    pool = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawned, not forked: a forked child would inherit tokenizers' and torch's threads in an unknown state
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    docs = iter(docs)
    try:
        while batch := list(islice(docs, 2048)):
            texts = [text for _, text in batch]
            done = pool.map(shingles_and_signature, texts, chunksize=64) if pool else map(shingles_and_signature, texts)
            for (doc_id, _), (hashes, hashvalues) in zip(batch, done):
                signature = None
                if hashvalues is not None:
                    signature = LeanMinHash(seed=1, hashvalues=hashvalues, scheme=_template().scheme)
                    lsh.insert(len(ids), signature)
                ids.append(doc_id)
                sets.append(hashes)
                signatures.append(signature)
    finally:
        if pool is not None:
            pool.shutdown()
    pairs = []
    for key, signature in enumerate(signatures):
        if signature is None:
            continue
        for other in lsh.query(signature):
            if other > key and jaccard(sets[key], sets[other]) >= JACCARD:
                pairs.append((key, other))
    return NearDuplicates(ids, pairs, (1 - JACCARD ** lsh.r) ** lsh.b)


def clusters(found: NearDuplicates) -> list[int]:
    """Union-find over the confirmed pairs: the cluster (its first member's index) of every document."""
    parent = list(range(len(found.ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in found.pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(i) for i in range(len(found.ids))]


def cluster_split(found: NearDuplicates, val_fraction: float) -> dict[str, bool]:
    """doc id -> held out?, deciding per cluster by the hash of its smallest id."""
    roots = clusters(found)
    smallest: dict[int, str] = {}
    for i, r in enumerate(roots):
        if r not in smallest or found.ids[i] < smallest[r]:
            smallest[r] = found.ids[i]
    held = {r: is_validation(key, val_fraction) for r, key in smallest.items()}
    return {doc_id: held[roots[i]] for i, doc_id in enumerate(found.ids)}


def id_hash_split(found: NearDuplicates, val_fraction: float) -> dict[str, bool]:
    return {doc_id: is_validation(doc_id, val_fraction) for doc_id in found.ids}


def leakage(found: NearDuplicates, held_out: dict[str, bool]) -> dict:
    """Validation documents with a training near-duplicate (Jaccard >= 0.8), under the split `held_out`."""
    leaked = set()
    for a, b in found.pairs:
        va, vb = held_out[found.ids[a]], held_out[found.ids[b]]
        if va != vb:
            leaked.add(a if va else b)
    val_docs = sum(held_out.values())
    return {"val_docs": val_docs, "leaked_docs": len(leaked), "leaked_fraction": len(leaked) / val_docs if val_docs else 0.0}


PARALLEL_FROM_BYTES = 16 * 2**20  # below this much text, starting worker processes costs more than it saves


def held_out_documents(clean_dir: Path, val_fraction: float, split: str,
                       workers: int = 1) -> tuple[dict[str, bool] | None, dict]:
    """(doc id -> held out?, what the manifest records about the split); None: decide by id hash on the fly.
    `workers` processes hash the documents of the cluster split (from PARALLEL_FROM_BYTES of text on)."""
    if split == "id-hash":
        return None, {"method": "id-hash"}
    start = time.time()
    source = json.loads((clean_dir / "manifest.json").read_text())
    text_bytes = sum(s.get("text_bytes", 0) for s in source.get("shards", []))
    workers = workers if text_bytes >= PARALLEL_FROM_BYTES else 1
    docs = ((i, t) for ids, texts in iter_documents(clean_dir) for i, t in zip(ids, texts))
    found = find_near_duplicates(with_progress(docs, source.get("rows", 0), "split: hashing"), workers)
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


def main(argv: list[str] | None = None) -> int:
    """python -m train.split CLEAN_DIR [--val-fraction 0.02]: the held-out leakage of both splits, as JSON."""
    import argparse
    import json
    import sys

    p = argparse.ArgumentParser(prog="python -m train.split", description=main.__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("clean", help="clean-corpus directory")
    p.add_argument("--val-fraction", type=float, default=0.02, help="share of documents held out")
    args = p.parse_args(argv)
    if not (Path(args.clean) / "manifest.json").exists():
        print(f"train.split: error: {args.clean}: no manifest.json (is it a finished clean-corpus directory?)", file=sys.stderr)
        return 2
    try:
        _, info = held_out_documents(Path(args.clean), args.val_fraction, "cluster")
    except TrainError as e:
        print(f"train.split: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
