"""The `full` preset's filters + MinHash signatures: our regex word splitting vs datatrove's default (spaCy).

Same documents, same datatrove steps and thresholds; ours splits words with `RegexWordTokenizer` instead
of spaCy and counts Gopher's repeated n-grams with `FastGopherRepetitionFilter`. Reports CPU
time per step, documents per CPU-second, the speed-up, and how often the two keep/drop decisions agree.
"""
from __future__ import annotations

import copy
import gzip
import json
import time
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
from datatrove.utils.typeshelper import Languages

from corpus.dedup import MinHashSettings, minhash_config
from corpus.filters import BundledLanguageFilter
from corpus.repetition import FastGopherRepetitionFilter
from corpus.text import RegexWordTokenizer

ROOT = Path(__file__).resolve().parents[1]
N_DOCS = 1500


def load_documents(n: int = N_DOCS) -> tuple[list[Document], str]:
    files = sorted((ROOT / "data" / "demo" / "jsonl").glob("*.jsonl.gz"))
    if files:
        per_file = {f: [json.loads(l) for l in gzip.open(f, "rt")] for f in files}
        docs, i = [], 0
        while len(docs) < n and any(per_file.values()):  # interleave the packages
            for f, records in per_file.items():
                if i < len(records) and len(docs) < n:
                    docs.append(Document(text=records[i]["text"], id=records[i]["id"]))
            i += 1
        return docs, f"{len(docs)} pages of the demo corpus (data/demo/jsonl, all packages interleaved)"
    from corpus.readers import RawDocumentReader

    docs = list(RawDocumentReader([str(ROOT.parent / "shared" / "data" / "html-sample")]).run())
    return docs, f"{len(docs)} pages of ../shared/data/html-sample (run `make demo-corpus` for the larger input)"


def filters(language, repetition=GopherRepetitionFilter) -> list:
    return [("gopher_repetition", repetition(language=language)), ("gopher_quality", GopherQualityFilter(language=language)),
            ("c4_quality", C4QualityFilter(language=language)), ("fineweb_quality", FineWebQualityFilter(language=language))]


def run_pipeline(docs: list[Document], language, lid, repetition=GopherRepetitionFilter) -> tuple[dict, list[str]]:
    """CPU seconds per step and the fate of each document ("kept" or the step that dropped it)."""
    steps = filters(language, repetition)
    signature = MinhashDedupSignature("/tmp/bench-unused-sigs", config=minhash_config(MinHashSettings()), language=language)
    cpu = {name: 0.0 for name, _ in steps} | {"minhash_signature": 0.0}
    fates = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        if not lid.filter(doc):
            fates.append("language")
            continue
        fate = "kept"
        for name, step in steps:
            t = time.process_time()
            result = step.filter(doc)
            cpu[name] += time.process_time() - t
            if result is not True and (result is False or not result[0]):
                fate = name
                break
        if fate == "kept":
            t = time.process_time()
            signature.get_signature(signature.get_shingles(doc.text))
            cpu["minhash_signature"] += time.process_time() - t
        fates.append(fate)
    return cpu, fates


def main(out_dir: Path) -> dict:
    docs, source = load_documents()
    lid = BundledLanguageFilter(["en"])
    english = [d for d in docs if lid.filter(copy.deepcopy(d))]  # LID is identical in both: time the rest
    print(f"input: {source}; {len(english)} pass language ID and reach the steps below")
    ours_cpu, ours = run_pipeline(english, RegexWordTokenizer(), lid, FastGopherRepetitionFilter)
    base_cpu, base = run_pipeline(english, Languages.english, lid)  # datatrove's default: spaCy
    agree = sum(a == b for a, b in zip(ours, base)) / len(ours)
    decisions_agree = sum((a == "kept") == (b == "kept") for a, b in zip(ours, base)) / len(ours)
    ours_total, base_total = sum(ours_cpu.values()), sum(base_cpu.values())
    print(f"\n{'step':<20}{'ours (regex) CPU s':>20}{'datatrove default (spaCy) CPU s':>34}{'speed-up':>10}")
    for name in ours_cpu:
        print(f"{name:<20}{ours_cpu[name]:>20.2f}{base_cpu[name]:>34.2f}{base_cpu[name] / max(ours_cpu[name], 1e-9):>9.1f}x")
    print(f"{'total':<20}{ours_total:>20.2f}{base_total:>34.2f}{base_total / ours_total:>9.1f}x")
    print(f"\ndocs per CPU-second: ours {len(english) / ours_total:,.0f}, datatrove default {len(english) / base_total:,.0f}")
    print(f"keep/drop decisions agree on {100 * decisions_agree:.1f}% of documents "
          f"(same dropping step: {100 * agree:.1f}%); kept: ours {ours.count('kept')}, default {base.count('kept')}")
    disagreements: dict[str, int] = {}
    for a, b in zip(ours, base):
        if (a == "kept") != (b == "kept"):
            key = f"ours {a} / default {b}"
            disagreements[key] = disagreements.get(key, 0) + 1
    for key, count in sorted(disagreements.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  disagreement: {key}: {count}")
    return {"input": source, "documents": len(english), "ours_cpu_s": ours_cpu, "default_cpu_s": base_cpu,
            "speedup": base_total / ours_total, "docs_per_cpu_s": {"ours": len(english) / ours_total, "default": len(english) / base_total},
            "decision_agreement": decisions_agree, "step_agreement": agree, "disagreements": disagreements}
