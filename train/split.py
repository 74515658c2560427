r"""The held-out split: whole near-duplicate clusters go to one side, so validation text is never memorised.

Choosing validation documents by a hash of their id puts the copies of a page (a translation left
untranslated, a page mirrored in two manuals) on both sides, and held-out perplexity then partly
measures memorisation. Here documents are first grouped into clusters of near-duplicates (word 5-gram
Jaccard >= 0.8), with the MinHash machinery the cleaner's decontamination uses (datasketch `MinHash` /
`MinHashLSH`, words split as it splits them: `\w+` of the lowercased text); LSH proposes candidate pairs
at a looser threshold and the exact Jaccard of the 5-gram sets confirms them. A cluster is held out when the hash
of its smallest document id says so (`is_validation`), so the split stays stable whatever the order of documents.

`held_out_documents` makes the split of a clean corpus for `train tokenize`; `leakage` measures, for any
split, how many validation documents have a training near-duplicate among the confirmed pairs; the token
manifest records it for the id-hash split and for the cluster split.
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
    if len(ws) >= N_GRAM:  # the n-grams as tuples of words from shifted views (zip): no list sliced per n-gram
        grams = map(" ".join, zip(*(ws[k:] for k in range(N_GRAM))))
    else:
        grams = [" ".join(ws)] if ws else []
    return np.unique(np.fromiter(map(xxhash.xxh64_intdigest, grams), dtype=np.uint64))


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
    return NearDuplicates(ids, pairs, (1 - JACCARD**lsh.r) ** lsh.b)


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


def cluster_split(found: NearDuplicates, val_fraction: float, salt: str = "") -> dict[str, bool]:
    """doc id -> held out?, deciding per cluster by the hash of its smallest id (prefixed by `salt`, so that
    another split of the same documents, such as the teacher's part, is independent of this one)."""
    roots = clusters(found)
    smallest: dict[int, str] = {}
    for i, r in enumerate(roots):
        if r not in smallest or found.ids[i] < smallest[r]:
            smallest[r] = found.ids[i]
    held = {r: is_validation(salt + key, val_fraction) for r, key in smallest.items()}
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
    return {
        "val_docs": val_docs,
        "leaked_docs": len(leaked),
        "leaked_fraction": len(leaked) / val_docs if val_docs else 0.0,
    }


PARALLEL_FROM_BYTES = 16 * 2**20  # below this much text, starting worker processes costs more than it saves


def held_out_documents(
    clean_dir: Path, val_fraction: float, split: str, workers: int = 1
) -> tuple[dict[str, bool] | None, dict]:
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
    info = {
        "method": "cluster",
        "near_duplicate_pairs": len(found.pairs),
        "lsh_miss_probability_at_0.8": found.miss_probability,
        "leakage": {"id-hash": leakage(found, id_hash_split(found, val_fraction)), "cluster": leakage(found, held)},
    }
    before, after = info["leakage"]["id-hash"], info["leakage"]["cluster"]
    print(
        f"  split: {len(found.pairs):,} near-duplicate pairs; validation docs with a training near-duplicate: "
        f"{before['leaked_docs']:,}/{before['val_docs']:,} by id hash, "
        f"{after['leaked_docs']:,}/{after['val_docs']:,} by cluster "
        f"({time.time() - start:,.0f}s)",
        flush=True,
    )
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


# ---------------------------------------------------------------- the teacher's part of a raw corpus
# A study's teacher must never have seen the study's data. `partition_raw` splits a raw corpus (JSON Lines)
# by near-duplicate cluster into a teacher part and a study part: the teacher is cleaned and trained from the
# first, every arm of a study is cleaned from the second, so no document of an arm (training or held out)
# has a near-duplicate among the teacher's. `cross_overlap` measures it afterwards, on the clean corpora.

TEACHER_SALT = "teacher-part:"  # the teacher/study decision is independent of the validation split's
RAW_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
PARTITION_COMMAND = "train partition"


def raw_files(inputs: list[str | Path]) -> list[tuple[Path, str]]:
    """(file, name relative to its input) of every JSON Lines file of `inputs` (files or folders), sorted."""
    from train import TrainError

    found = []
    for index, root in enumerate(map(Path, inputs)):
        if not root.exists():
            raise TrainError(f"--input {root}: not found")
        files = (
            [root]
            if not root.is_dir()
            else sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        )
        for f in files:
            if not f.name.endswith(RAW_SUFFIXES):
                raise TrainError(
                    f"{f}: the partition reads JSON Lines (.jsonl, .jsonl.gz) only; convert it, or "
                    f"clean it with `corpus-clean --preset none` and partition that output's shards"
                )
            name = str(f.relative_to(root)) if root.is_dir() else f.name
            found.append((f, f"{index}/{name}" if len(inputs) > 1 else name))  # keys stay unique across inputs
    if not found:
        raise TrainError(f"--input {' '.join(map(str, inputs))}: no JSON Lines files")
    return found


def raw_documents(files: list[tuple[Path, str]], skipped: list[str] | None = None):
    """(key, text, line) of every record: key `<file>#<line>` names the document stably; a line that is not a
    JSON object with a text is skipped and named in `skipped`."""
    import gzip
    import json

    for path, name in files:
        with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text = record["text"]
                    if not isinstance(text, str):
                        raise TypeError("text is not a string")
                except (ValueError, KeyError, TypeError) as e:
                    if skipped is not None:
                        skipped.append(f"{path}:{line_no}: {type(e).__name__}: {e}")
                    continue
                yield f"{name}#{line_no}", text, line


def partition_raw(
    inputs: list[str | Path],
    out: str | Path,
    teacher_fraction: float = 0.5,
    overwrite: bool = False,
    wait: bool = False,
    record: str = "",
) -> dict:
    """Write `<out>/teacher/` and `<out>/study/` (JSON Lines, records unchanged) and `<out>/manifest.json`;
    `record`: the resolved settings (config.toml), written with them."""
    import gzip
    import json
    import time

    from cli_config import RECORD
    from safe_output import atomic_contents, atomic_json, atomic_write, reuse_or_replace, use_output
    from train.fingerprint import describe_change, files_fingerprint
    from train import TrainError

    if not 0 < teacher_fraction < 1:
        raise TrainError(f"--teacher-fraction {teacher_fraction}: must be between 0 and 1")
    out = Path(out)
    files = raw_files(inputs)
    wanted = {
        "input_fingerprint": files_fingerprint([f for f, _ in files]),
        "teacher_fraction": teacher_fraction,
        "jaccard": JACCARD,
        "n_gram": N_GRAM,
    }
    with use_output(out, PARTITION_COMMAND, wait=wait, inputs={"--input": [str(p) for p in inputs]}):
        if (out / "manifest.json").exists():
            manifest = json.loads((out / "manifest.json").read_text())
            recorded = {k: manifest.get(k) for k in wanted}
            changes = describe_change(recorded, wanted)
            if reuse_or_replace(out, PARTITION_COMMAND, recorded == wanted, overwrite, changes=changes):
                print(f"partition already made: {out}")
                return manifest
        start = time.time()
        skipped: list[str] = []
        found = find_near_duplicates((key, text) for key, text, _ in raw_documents(files, skipped))
        teacher = cluster_split(found, teacher_fraction, salt=TEACHER_SALT)
        crossing = sum(1 for a, b in found.pairs if teacher[found.ids[a]] != teacher[found.ids[b]])
        if crossing:  # impossible by construction (whole clusters go to one side); checked, not assumed
            raise AssertionError(f"{crossing} near-duplicate pairs cross the teacher/study partition")
        counts = {"teacher": {"docs": 0, "bytes": 0}, "study": {"docs": 0, "bytes": 0}}
        with atomic_contents(out, finished="manifest.json") as tmp:
            writers = {}
            try:
                for key, _, line in raw_documents(files):
                    part = "teacher" if teacher[key] else "study"
                    name = key.rsplit("#", 1)[0]
                    if (part, name) not in writers:
                        target = tmp / part / (name.replace("/", "__").removesuffix(".gz") + ".gz")
                        target.parent.mkdir(parents=True, exist_ok=True)
                        writers[part, name] = gzip.open(target, "wb")
                    writers[part, name].write(line if line.endswith(b"\n") else line + b"\n")
                    counts[part]["docs"] += 1
                    counts[part]["bytes"] += len(line)
            finally:
                for w in writers.values():
                    w.close()
            for part in counts:
                (tmp / part).mkdir(exist_ok=True)
            manifest = {
                **wanted,
                "inputs": [str(Path(p).resolve()) for p in inputs],
                "parts": counts,
                "clusters": len(set(clusters(found))),
                "near_duplicate_pairs": len(found.pairs),
                "pairs_across_parts": crossing,
                "lsh_miss_probability_at_0.8": found.miss_probability,
                "skipped_lines": len(skipped),
                "skipped_examples": skipped[:20],
            }
            atomic_json(tmp / "manifest.json", manifest)
            if record:
                atomic_write(tmp / RECORD, record)
    for line in skipped[:5]:
        print(f"  skipped {line}", flush=True)
    print(
        f"partition: {out}: teacher {counts['teacher']['docs']:,} docs, study {counts['study']['docs']:,} docs, "
        f"{len(found.pairs):,} near-duplicate pairs, none across the parts, {len(skipped):,} lines skipped "
        f"({time.time() - start:,.0f}s)",
        flush=True,
    )
    return manifest


def cross_overlap(groups: dict[str, Iterable[tuple[str, str]]], reference: str) -> dict[str, dict]:
    """For each group other than `reference`: its documents with a near-duplicate (or an identical copy) in
    `reference`, and `reference`'s documents with one in it. Identical texts are hashed once, so many
    variants of one corpus cost little more than one."""
    texts: dict[str, int] = {}  # sha1 of the text -> node
    node_texts: list[str] = []
    members: list[dict[str, set[str]]] = []  # node -> group -> ids
    for group, docs in groups.items():
        for doc_id, text in docs:
            key = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
            if key not in texts:
                texts[key] = len(node_texts)
                node_texts.append(text)
                members.append({})
            members[texts[key]].setdefault(group, set()).add(doc_id)
    found = find_near_duplicates((str(i), t) for i, t in enumerate(node_texts))
    del node_texts
    linked: list[set[int]] = [{i} for i in range(len(members))]
    for a, b in found.pairs:
        linked[a].add(b)
        linked[b].add(a)
    result = {}
    for group in groups:
        if group == reference:
            continue
        in_group, in_reference = set(), set()
        for node, by_group in enumerate(members):
            if group not in by_group:
                continue
            ref_nodes = [m for m in linked[node] if reference in members[m]]
            if ref_nodes:
                in_group |= by_group[group]
                for m in ref_nodes:
                    in_reference |= members[m][reference]
        total = sum(len(m.get(group, ())) for m in members)
        ids = sorted(in_group)
        result[group] = {
            "docs": total,
            "docs_with_reference_duplicate": len(ids),
            "reference_docs_with_duplicate": len(in_reference),
            "examples": ids[:5],
            "ids": ids,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    """python -m train.split CLEAN_DIR [--val-fraction 0.02]: the held-out leakage of both splits, as JSON."""
    import argparse
    import json
    import sys

    p = argparse.ArgumentParser(
        prog="python -m train.split", description=main.__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("clean", help="clean-corpus directory")
    p.add_argument("--val-fraction", type=float, default=0.02, help="share of documents held out")
    args = p.parse_args(argv)
    if not (Path(args.clean) / "manifest.json").exists():
        print(
            f"train.split: error: {args.clean}: no manifest.json (is it a finished clean-corpus directory?)",
            file=sys.stderr,
        )
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
