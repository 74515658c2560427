"""Near-duplicate removal quality on planted near-duplicates of real prose.

Real paragraphs (WikiText test) get copies with words replaced, deleted or inserted at several rates,
some wrapped in page chrome (navigation lines around them). The truth is the exact Jaccard similarity of
word 5-gram sets (the pipeline's own normalisation and word splitting; datasketch's MinHashLSH only
proposes candidate pairs, which are then checked exactly). The real cleaner (`full` preset with the
quality filters off) runs with several MinHash settings, datatrove's default first.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from datatrove.utils.text import TextNormConfig, simplify_text

from corpus.dedup import MinHashSettings
from corpus.text import RegexWordTokenizer

ROOT = Path(__file__).resolve().parents[1]
WIKI = ROOT.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
RATES = [0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]
CHROME = [
    "Home | About | Contact | Search",
    "Skip to main content",
    "Menu",
    "Share this page: Facebook Twitter Email",
    "Copyright 2024 Example Media. All rights reserved.",
    "Privacy policy | Terms of use | Cookie settings",
]
SETTINGS = {
    "14x8 (datatrove default)": MinHashSettings(),
    "20x8": MinHashSettings(num_buckets=20, hashes_per_bucket=8),
    "25x8": MinHashSettings(num_buckets=25, hashes_per_bucket=8),
}


def shingles(text: str, tokenizer=RegexWordTokenizer()) -> set[str]:
    words = tokenizer.word_tokenize(simplify_text(text, TextNormConfig()))
    return {" ".join(words[i : i + 5]) for i in range(len(words) - 4)}


def edit(text: str, rate: float, rng: random.Random) -> str:
    words = text.split()
    vocab = words[:]
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue  # delete
        if r < 2 * rate / 3:
            out.append(rng.choice(vocab))  # replace
            continue
        out.append(w)
        if r < rate:
            out.append(rng.choice(vocab))  # insert
    return " ".join(out)


def build(seed: int = 0, n_base: int = 900, n_planted: int = 700) -> list[dict]:
    paragraphs = [line.strip() for line in WIKI.read_text(encoding="utf-8").splitlines() if len(line.split()) >= 80]
    rng = random.Random(seed)
    base = rng.sample(paragraphs, min(n_base, len(paragraphs)))
    docs = [{"id": f"base-{i}", "text": t} for i, t in enumerate(base)]
    for j in range(n_planted):
        i = j % len(base)
        text = edit(base[i], RATES[j % len(RATES)], rng)
        if j % 2:
            text = "\n".join(rng.sample(CHROME, 3)) + "\n" + text + "\n" + "\n".join(rng.sample(CHROME, 2))
        docs.append({"id": f"copy-{j}-of-{i}", "text": text})
    return docs


def true_pairs(docs: list[dict]) -> dict[tuple[str, str], float]:
    """Every pair with Jaccard >= 0.5: LSH candidates (generous settings), confirmed exactly."""
    from datasketch import MinHash, MinHashLSH

    sets = {d["id"]: shingles(d["text"]) for d in docs}
    lsh = MinHashLSH(threshold=0.3, num_perm=128)
    hashes = {}
    for doc_id, s in sets.items():
        m = MinHash(num_perm=128, seed=7)
        m.update_batch([x.encode() for x in s])
        hashes[doc_id] = m
        lsh.insert(doc_id, m)
    pairs = {}
    for doc_id, m in hashes.items():
        for other in lsh.query(m):
            if other > doc_id:
                a, b = sets[doc_id], sets[other]
                j = len(a & b) / len(a | b) if a | b else 0.0
                if j >= 0.5:
                    pairs[(doc_id, other)] = j
    return pairs


def kept_ids(out: Path) -> set[str]:
    from corpus.arrow_writer import iter_shard_rows

    return {r["id"] for shard in sorted((out / "shards").glob("*.arrow")) for r in iter_shard_rows(shard, ["id"])}


def clean(docs_file: Path, settings: MinHashSettings, out: Path) -> float:
    from corpus.filters import FilterConfig
    from corpus.pipeline import CleanConfig, run_clean

    filters = FilterConfig(
        languages=None, gopher_repetition=None, gopher_quality=None, c4_quality=None, fineweb_quality=None
    )
    start = time.time()
    run_clean([str(docs_file)], out, CleanConfig(preset="full", workers=1, tasks=2, filters=filters, minhash=settings))
    return time.time() - start


def main(out_dir: Path) -> dict:
    docs = build()
    pairs = true_pairs(docs)
    high = {p: j for p, j in pairs.items() if j >= 0.8}
    partnered = {x for p in pairs for x in p}
    loners = [d["id"] for d in docs if d["id"] not in partnered]
    print(
        f"{len(docs)} documents ({len(docs) - 700} real WikiText paragraphs + 700 edited copies, half in page chrome); "
        f"{len(high)} pairs with Jaccard >= 0.8, {len(pairs)} with >= 0.5; {len(loners)} documents with no partner "
        "above 0.5"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        docs_file = Path(tmp) / "docs.jsonl"
        docs_file.write_text("".join(json.dumps(d) + "\n" for d in docs))
        print(f"\n{'setting':<28}{'recall J>=0.8':>14}{'false removals':>16}{'both removed':>14}{'time (s)':>10}")
        for name, settings in SETTINGS.items():
            out = Path(tmp) / name.split()[0]
            seconds = clean(docs_file, settings, out)
            kept = kept_ids(out)
            removed = {d["id"] for d in docs} - kept
            recall = sum(a in removed or b in removed for a, b in high) / max(1, len(high))
            false = sum(x in removed for x in loners) / max(1, len(loners))
            both = sum(a in removed and b in removed for a, b in high)
            results[name] = {
                "recall_j08": recall,
                "false_removal_rate": false,
                "pairs_both_removed": both,
                "seconds": seconds,
                "settings": settings.__dict__,
            }
            print(f"{name:<28}{100 * recall:>13.1f}%{100 * false:>15.2f}%{both:>14}{seconds:>10.1f}")
    print(
        "\ntargets: recall >= 97% for pairs with Jaccard >= 0.8, <= 0.5% of partner-less documents removed, "
        "0 pairs with both removed"
    )
    print(f"our default: {MinHashSettings().num_buckets}x{MinHashSettings().hashes_per_bucket}")
    return {"pairs_j08": len(high), "pairs_j05": len(pairs), "loners": len(loners), "settings": results}
