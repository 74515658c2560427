"""corpus-clean as a user meets it: every mistake is one clear line and exit code 2, caught before any
work starts (no half-made output directory to trip over); a good run ends with its headline numbers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.cli import main as corpus_clean
from corpus_helpers import kept_ids, write_jsonl

DOCS = [{"id": "d0", "text": "The river runs past the old mill and into the quiet green valley below."},
        {"id": "d1", "text": "Our neighbours keep three goats, two cats and a very loud rooster at home."},
        {"id": "d2", "text": "A good loaf of bread needs flour and water and salt and a lot of patience."}]


@pytest.mark.parametrize("args, message", [
    (["--set", "foo"], "--set 'foo': expected KEY=VALUE"),
    (["--set", "minhash.num_buckets=abc"], 'minhash.num_buckets="abc": expected int, like 14'),
    (["--set", "paper.dedup_lines=1"], "paper.dedup_lines=1: expected bool"),
    (["--set", "filters.gopher_quality.nope=1"], "unknown setting 'nope' (one of: min_doc_words,"),
    (["--set", "filters.gopher_quality.min_doc_words=many"], 'min_doc_words="many": expected int, like 50'),
    (["--set", "filters.gopher_quality=3"], "is a group of settings"),
    (["--set", "filters.c4_quality=null", "--set", "filters.c4_quality.min_num_sentences=2"], "that filter is switched off"),
    (["--workers", "0"], "--workers: must be > 0"),
    (["--max-shard-mb", "0"], "--max-shard-mb: must be > 0"),
    (["--executor", "slurm"], "--executor slurm needs --slurm-partition"),
    (["--dedup-against", "{tmp}"], "no minhash_index/ there"),
    (["--output", "{tmp}/a-file"], "is a file; give a folder path"),
    (["--output", "/proc/no/such/dir"], "cannot write there"),
    (["--input", "{tmp}", "--output", "{tmp}/out"], "is inside --input"),
])
def test_mistake_is_one_clear_line_and_nothing_is_written(tmp_path, args, message):
    src = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    (tmp_path / "a-file").write_text("not a directory")
    args = [a.format(tmp=tmp_path) for a in args]
    out = tmp_path / "out"
    if "--output" not in args:
        args += ["--output", str(out)]
    if "--input" not in args:
        args += ["--input", str(src)]
    result = subprocess.run([sys.executable, "-m", "corpus.cli", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corpus-clean: error: ") and message in lines[0], lines
    assert not out.exists(), "a refused command must not leave an output directory behind"


def test_override_reaches_the_filter_and_ints_stand_for_floats(tmp_path):
    src = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    out = tmp_path / "out"
    # 10-word documents: Gopher's default minimum (50 words) drops them all, a minimum of 5 keeps them
    args = ["--input", str(src), "--output", str(out), "--workers", "1", "--languages",
            "--set", "filters.gopher_quality.min_doc_words=5", "--set", "filters.gopher_quality.min_stop_words=0",
            "--set", "filters.language_threshold=0",  # an int where a float is expected
            "--set", "filters.gopher_repetition.top_n_grams=[[2, 0.3]]",  # a JSON list where the default is a tuple
            "--set", "filters.c4_quality=null", "--set", "filters.fineweb_quality=null"]
    assert corpus_clean(args) == 0
    assert sorted(kept_ids(out)) == ["d0", "d1", "d2"]
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["filters"]["gopher_quality"] == {"min_doc_words": 5, "min_stop_words": 0}
    assert config["filters"]["gopher_repetition"] == {"top_n_grams": [[2, 0.3]]}
    assert config["filters"]["language_threshold"] == 0.0 and isinstance(config["filters"]["language_threshold"], float)


def test_headline_reports_kept_fraction_and_skipped_records(tmp_path, capsys):
    src = write_jsonl(tmp_path / "docs.jsonl", [*DOCS, "{not json", {"id": "no-text", "body": "x"}])
    out = tmp_path / "out"
    assert corpus_clean(["--input", str(src), "--output", str(out), "--preset", "none", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"clean corpus: {out}/shards (1 shards)" in printed
    assert "documents: 3 in -> 3 kept (100.0%)" in printed
    assert "skipped:   2 input records (malformed_json: 1, missing_text: 1" in printed


def test_slurm_executor_is_built_without_submitting(tmp_path):
    """The chain of jobs is constructed with our settings, each job getting this Python environment (no sbatch
    call; tests/test_slurm.py runs it on a real cluster)."""
    from corpus.pipeline import CleanConfig, Layout, build_stages, make_executor

    cfg = CleanConfig(executor="slurm", slurm_partition="cpu", slurm_time="01:00:00", workers=4)
    lay = Layout(tmp_path / "out")
    stages = build_stages([str(write_jsonl(tmp_path / "docs.jsonl", DOCS))], lay.out, cfg)
    previous = None
    for stage in stages:
        executor = make_executor(stage, cfg, lay, depends=previous)
        assert executor.tasks == stage.tasks and executor.partition == "cpu" and executor.time == "01:00:00"
        assert executor.depends is previous  # each stage waits for the one before
        script = executor.get_launch_file_contents({}, "launch_pickled_pipeline x")
        assert f"source {sys.prefix}/bin/activate" in script or f"export PATH={Path(sys.executable).parent}:" in script
        previous = executor
    assert [s.name for s in stages][-1] == "finalize" and previous.tasks == 1


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    src = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert corpus_clean(["--input", str(src), "--output", str(precious), "--preset", "none", "--overwrite"]) == 2
    assert (precious / "thesis.tex").read_text() == "years of work"
