"""The per-step ablation: each cleaning step can be left out, and the study compares the arms."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corpus_helpers import edit_words, wikitext_articles

FILTERS_OFF = ["filters.languages=null", "filters.gopher_repetition=null", "filters.gopher_quality=null",
               "filters.c4_quality=null", "filters.fineweb_quality=null"]


def clean(raw: Path, out: Path, *settings: str) -> dict:
    args = [a for s in settings for a in ("--set", s)]
    result = subprocess.run([sys.executable, "-m", "corpus.cli", "--input", str(raw), "--output", str(out), "--preset", "full",
                             "--workers", "1", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads((out / "stats.json").read_text())
    return {"steps": {s["step"]: s["docs_removed"] for s in stats["steps"]}, "kept": stats["output"]["documents"]}


def test_dedup_steps_switch_off_one_at_a_time(shared_data, tmp_path):
    articles = wikitext_articles(shared_data, 20, min_words=150)
    docs = articles + articles[:3] + [edit_words(a, 0.03, seed=i) for i, a in enumerate(articles[3:6])]
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    neither = clean(raw, tmp_path / "neither", *FILTERS_OFF, "exact_dedup=false", "near_dedup=false")
    assert neither == {"steps": {"language": 0}, "kept": 26}
    exact_only = clean(raw, tmp_path / "exact", *FILTERS_OFF, "near_dedup=false")
    assert exact_only == {"steps": {"language": 0, "exact_dedup": 3}, "kept": 23}
    near_only = clean(raw, tmp_path / "near", *FILTERS_OFF, "exact_dedup=false")
    assert set(near_only["steps"]) == {"language", "minhash"} and near_only["steps"]["minhash"] >= 3  # copies are near-copies too
