"""The teacher's part of a raw corpus: whole near-duplicate clusters on one side, measured afterwards."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from corpus_helpers import edit_words, wikitext_articles
from train.split import cross_overlap, raw_documents, raw_files


def write_raw(path: Path, texts: list[str], extra_lines: list[str] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"page-{i}", "text": t, "url": f"u{i}"}) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def test_partition_keeps_near_duplicates_together_and_records_unchanged(shared_data, tmp_path):
    articles = wikitext_articles(shared_data, 30, min_words=150)
    copies = [edit_words(a, 0.02, seed=i) for i, a in enumerate(articles[:10])]  # near-duplicates of 10 articles
    raw = write_raw(tmp_path / "raw" / "a.jsonl.gz", articles + copies, extra_lines=["{not json", '{"id": "x"}'])
    out = tmp_path / "partition"
    result = subprocess.run([sys.executable, "-m", "train", "partition", "--input", str(tmp_path / "raw"),
                             "--output", str(out), "--teacher-fraction", "0.5"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pairs_across_parts"] == 0 and manifest["near_duplicate_pairs"] >= 10
    assert manifest["skipped_lines"] == 2 and "a.jsonl.gz:41" in manifest["skipped_examples"][0]
    parts = {p: [json.loads(l) for f in sorted((out / p).glob("*.gz")) for l in gzip.open(f, "rt")]
             for p in ("teacher", "study")}
    assert all(parts.values()) and sum(map(len, parts.values())) == 40
    side = {r["text"]: p for p, records in parts.items() for r in records}
    for original, copy in zip(articles, copies):
        assert side[original] == side[copy]  # a page and its near-copy never straddle the parts
    original_records = [json.loads(l) for l in gzip.open(raw, "rt") if l.startswith('{"id": "page')]
    assert sorted(map(json.dumps, original_records)) == sorted(json.dumps(r) for rs in parts.values() for r in rs)
    # measured afterwards on the parts themselves: no overlap
    docs = {p: [(k, t) for k, t, _ in raw_documents(raw_files([out / p]))] for p in parts}
    assert cross_overlap(docs, "teacher")["study"]["docs_with_reference_duplicate"] == 0
    # the same command again reuses it
    again = subprocess.run([sys.executable, "-m", "train", "partition", "--input", str(tmp_path / "raw"),
                            "--output", str(out)], capture_output=True, text=True)
    assert again.returncode == 0 and "already made" in again.stdout


def test_cross_overlap_reports_a_planted_shared_document(shared_data):
    articles = wikitext_articles(shared_data, 12, min_words=150)
    teacher = [(f"t{i}", a) for i, a in enumerate(articles[:6])]
    study = [(f"s{i}", a) for i, a in enumerate(articles[6:])]
    clean = cross_overlap({"teacher": teacher, "study": study}, "teacher")
    assert clean["study"]["docs_with_reference_duplicate"] == 0
    planted = study + [("s-planted", edit_words(articles[2], 0.02, seed=0))]  # a teacher page, lightly edited
    exact = [("e-planted", articles[3])]
    found = cross_overlap({"teacher": teacher, "study": planted, "eval": exact}, "teacher")
    assert found["study"]["docs_with_reference_duplicate"] == 1 and found["study"]["examples"] == ["s-planted"]
    assert found["study"]["reference_docs_with_duplicate"] == 1 and found["study"]["docs"] == 7
    assert found["eval"]["docs_with_reference_duplicate"] == 1


def test_partition_refuses_other_formats(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "page.html").write_text("<p>hi</p>")
    result = subprocess.run([sys.executable, "-m", "train", "partition", "--input", str(tmp_path / "raw"), "--output",
                             str(tmp_path / "p")], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "page.html" in result.stderr
