"""The per-step ablation: each cleaning step can be left out, and the study compares the arms."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corpus_helpers import edit_words, wikitext_articles

FILTERS_OFF = [
    "filters.languages=null",
    "filters.gopher_repetition=null",
    "filters.gopher_quality=null",
    "filters.c4_quality=null",
    "filters.fineweb_quality=null",
]


def clean(raw: Path, out: Path, *settings: str) -> dict:
    args = [a for s in settings for a in ("--set", s)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "corpus.cli",
            "--input",
            str(raw),
            "--output",
            str(out),
            "--preset",
            "full",
            "--workers",
            "1",
            *args,
        ],
        capture_output=True,
        text=True,
    )
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
    # copies are near-copies too
    assert set(near_only["steps"]) == {"language", "minhash"} and near_only["steps"]["minhash"] >= 3


def test_study_arms_of_the_steps_study():
    """Each step left out of full, and the chain base -> +language -> ... -> full; arms with the same settings
    are one."""
    from eval.studies.ablation import STEPS, AblationConfig, study_arms

    arms, comparisons = study_arms(AblationConfig(study="steps"))
    names = [a.name for a in arms]
    # full, 7 left out, base and 5 more links (+exact_dedup is full-no-near_dedup)
    assert len(names) == len(set(names)) == 14
    by_name = {a.name: a for a in arms}
    assert by_name["full"].settings == [] and by_name["full-no-language"].settings == ["filters.languages=null"]
    assert len(by_name["base"].settings) == 7 and by_name["+language"].settings == [s for _, s, _ in STEPS[1:]]
    leave = [(a, b) for a, b, kind, _ in comparisons if kind == "leave out"]
    add = [(a, b, step) for a, b, kind, step in comparisons if kind == "add"]
    assert leave == [("full", f"full-no-{name}") for name, _, _ in STEPS]
    assert add[0] == ("+language", "base", "language") and add[-1] == ("full", "full-no-near_dedup", "near_dedup")
    assert all(a == add[i + 1][1] for i, (a, _, _) in enumerate(add[:-1]))  # a chain: each arm is the next one's base


def test_power_check_states_the_target_and_the_seeds_that_would_meet_it():
    from eval.studies.ablation import power_check, power_lines

    def runs(arm: str, values: list[float]) -> dict:
        return {f"{arm}-seed{i}": {"arm": arm, "seed": i, "wikitext_ppl": v} for i, v in enumerate(values)}

    noisy = {"runs": {**runs("none", [1266.0, 1296.0, 1237.0]), **runs("full", [1210.0, 1229.0, 1191.0])}}
    check = power_check(noisy, {})
    assert not check["met"] and check["target"] == pytest.approx(0.02 * 1266.333, rel=1e-4)
    assert check["seeds_needed"] > 3 and "Not met" in "\n".join(power_lines(check))
    assert f"{check['seeds_needed']} seeds per arm" in "\n".join(power_lines(check))
    tight = {"runs": {**runs("none", [1266.0, 1267.0, 1265.0]), **runs("full", [1210.0, 1211.0, 1209.0])}}
    assert power_check(tight, {})["met"] and "**Met**" in "\n".join(power_lines(power_check(tight, {})))


def copy_sources(root: Path, to: Path) -> Path:
    """The project's packages copied, so a test can change their code and run the copy."""
    for package in ("corpus", "train", "eval", "safe_output"):
        shutil.copytree(root / package, to / package, ignore=shutil.ignore_patterns("__pycache__"))
    return to


@pytest.mark.slow
def test_steps_study_smoke_with_teacher_overlap_and_stale_code(shared_data, teacher, tmp_path):
    """The per-step study end to end (one step, two seeds); the teacher-overlap measurement finds planted shared
    documents; after a change to the evaluation code the evaluations are made anew (training reused), or with
    --reuse-stale reused and flagged."""
    from corpus.readers import html_to_text
    from run_helpers import write_clean_corpus

    page = sorted((shared_data / "html-sample").rglob("*.htm*"))[0]
    planted = [html_to_text(page.read_bytes()), wikitext_articles(shared_data, 1, min_words=150)[0]]
    teacher_data = write_clean_corpus(tmp_path / "teacher-data", planted + ["Unrelated words about boats. " * 30])
    src = copy_sources(Path(__file__).resolve().parents[1], tmp_path / "src")
    out = tmp_path / "steps"
    args = [
        "ablation",
        "--study",
        "steps",
        "--steps",
        "near_dedup",
        "--scale",
        "smoke",
        "--seeds",
        "0",
        "1",
        "--budget-tokens",
        "2048",
        "--input",
        str(shared_data / "html-sample"),
        "--teacher",
        str(teacher),
        "--teacher-data",
        str(teacher_data),
        "--output",
        str(out),
        "--workers",
        "1",
        "--eval-data",
        str(shared_data),
    ]

    def study(*extra: str) -> tuple[dict, str, str]:
        result = subprocess.run(
            [sys.executable, "-m", "eval", *args, *extra],
            capture_output=True,
            text=True,
            cwd=src,
            env={**os.environ, "PYTHONPATH": str(src)},
        )  # `-m` imports from the cwd first
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return json.loads((out / "results.json").read_text()), (out / "report.md").read_text(), result.stdout

    results, report, _ = study()
    assert results["arms"] == ["full", "full-no-near_dedup"]
    assert [(c["a"], c["b"], c["kind"]) for c in results["comparisons"]] == [
        ("full", "full-no-near_dedup", "leave out"),
        ("full", "full-no-near_dedup", "add"),
    ]
    wiki = results["comparisons"][0]["metrics"]["wikitext_ppl"]
    assert wiki["mdd"] > 0 and wiki["paired"]["items"] > 0
    assert wiki["paired"]["low"] <= wiki["paired"]["diff"] <= wiki["paired"]["high"]
    assert results["comparisons"][0]["metrics"]["sst2_acc"]["paired"]["test"] == "McNemar (exact)"
    assert "## What each step buys" in report and "| `near_dedup` | leave out |" in report
    assert "Minimum detectable difference (alpha 0.05, power 0.8)" in report and "Paired over" in report
    # SST-2 does not learn at this scale: left out of the comparisons (results.json keeps its paired test above)
    assert not results["signal"]["sst2_acc"]["shown"] and "- SST-2 acc:" not in report and "- BLiMP acc:" in report
    # curves: one band per arm on the shared validation set, as a PNG in the report
    assert set(results["curves"]) == {"full", "full-no-near_dedup"}
    assert all(len(p) == 4 for p in results["curves"]["full"])
    assert (out / "val_ppl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![validation perplexity](val_ppl.png)" in report
    # the planted documents are found: the page in the raw arm (none), the article in the evaluation sets
    overlap = results["teacher_overlap"]
    assert overlap["none"]["docs_with_reference_duplicate"] >= 1
    assert overlap["evaluation sets"]["docs_with_reference_duplicate"] == 1
    assert "documents overlap**" in report  # the teacher saw an evaluation text
    # the raw arm's page alike the teacher's is left out of that arm's token shards: no student reads it
    none_tokens = json.loads((Path(results["variants"]["none"]["tokens_dir"]) / "manifest.json").read_text())
    found = overlap["none"]["docs_with_reference_duplicate"]
    assert (
        none_tokens["excluded"]["docs_left_out"] == found == results["variants"]["none"]["left_out_for_teacher_overlap"]
    )
    assert "excluded" not in json.loads((Path(results["variants"]["full"]["tokens_dir"]) / "manifest.json").read_text())
    # the evaluation code changes (a comment is enough): with --reuse-stale nothing is made, the report flags the units
    with open(src / "eval" / "perplexity.py", "a") as f:
        f.write("# changed\n")
    stale, report, stdout = study("--reuse-stale")
    assert "\n$ " not in stdout, stdout
    assert "Stale units reused" in report and "**stale**" in report
    assert all(stale["units"][n]["code"]["stale"] for n in stale["units"] if n.startswith(("result/", "initial res")))
    assert not any(stale["units"][n]["code"]["stale"] for n in stale["units"] if n.startswith("run/"))
    # without it, the evaluations are made anew by this code; the training runs (their code unchanged) are reused
    fresh, report, stdout = study()
    assert "train pretrain" not in stdout and "corpus.cli" not in stdout and "Stale units" not in report
    for name in (n for n in fresh["units"] if n.startswith(("result/", "initial result/"))):
        assert fresh["units"][name]["fingerprint"] != results["units"][name]["fingerprint"]
        assert not fresh["units"][name]["code"]["stale"]
    assert all(fresh["units"][n] == results["units"][n] for n in fresh["units"] if n.startswith("run/"))
