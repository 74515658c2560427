"""--dedup-against: a new batch is deduplicated against corpora cleaned before, through chains of
batches, and never against an index made with other MinHash settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corpus.cli import main as corpus_clean
from corpus.incremental import REFERENCE_DIR
from corpus_helpers import edit_words, kept_ids, removed_ids, wikitext_articles, write_jsonl

# only MinHash is under test: the quality filters would judge WikiText, which is not what this is about
ONLY_DEDUP = ["--workers", "1", "--languages"]
for _f in ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"):
    ONLY_DEDUP += ["--set", f"filters.{_f}=null"]


@pytest.fixture(scope="module")
def batches(shared_data, tmp_path_factory) -> dict:
    """batch 1: articles 0-9. batch 2 (against 1): articles 10-19 + light edits of 0-4.
    batch 3 (against 2 ONLY): edits of 5-7 (batch 1 only) and of 10-12 (batch 2) + new articles 20-29."""
    tmp = tmp_path_factory.mktemp("incremental")
    a = wikitext_articles(shared_data, 30)
    docs = {
        "b1": [{"id": f"b1-{i}", "text": a[i]} for i in range(10)],
        "b2": [{"id": f"b2-new-{i}", "text": a[i]} for i in range(10, 20)]
        + [{"id": f"b2-old-{i}", "text": edit_words(a[i], 0.01, seed=i)} for i in range(5)],
        "b3": [{"id": f"b3-old-{i}", "text": edit_words(a[i], 0.01, seed=100 + i)} for i in (5, 6, 7, 10, 11, 12)]
        + [{"id": f"b3-new-{i}", "text": a[i]} for i in range(20, 30)],
    }
    out = {}
    for name, against in (("b1", None), ("b2", "b1"), ("b3", "b2")):
        out[name] = tmp / name
        args = ["--input", str(write_jsonl(tmp / f"{name}.jsonl", docs[name])), "--output", str(out[name]), *ONLY_DEDUP]
        if against:
            args += ["--dedup-against", str(out[against])]
        assert corpus_clean(args) == 0
    return out


def test_each_batch_keeps_only_what_is_new(batches):
    assert sorted(kept_ids(batches["b1"])) == sorted(f"b1-{i}" for i in range(10))
    assert sorted(kept_ids(batches["b2"])) == sorted(f"b2-new-{i}" for i in range(10, 20))
    assert sorted(removed_ids(batches["b2"], "minhash")) == sorted(f"b2-old-{i}" for i in range(5))
    # batch 3 was only checked against batch 2, yet its copies of batch-1 articles go too:
    # batch 2's index carries batch 1's
    assert sorted(kept_ids(batches["b3"])) == sorted(f"b3-new-{i}" for i in range(20, 30))
    assert sorted(removed_ids(batches["b3"], "minhash")) == sorted(f"b3-old-{i}" for i in (5, 6, 7, 10, 11, 12))


def test_carried_index_files_are_links_counted_once(batches, tmp_path):
    bucket = "bucket_000"
    own = batches["b1"] / "minhash_index" / bucket / "corpus.minhash.index"
    b2_files = sorted(p.name for p in (batches["b2"] / "minhash_index" / bucket).iterdir())
    assert b2_files[0] == "corpus.minhash.index" and len(b2_files) == 2  # its own + batch 1's
    carried = batches["b2"] / "minhash_index" / bucket / b2_files[1]
    assert carried.stat().st_ino == own.stat().st_ino  # a hard link, not a copy
    # against both batch 1 and batch 2 (which carries batch 1): batch 1's index is used once
    out = tmp_path / "again"
    src = write_jsonl(
        tmp_path / "again.jsonl", [{"id": "x", "text": "a few words that are in no earlier batch at all"}]
    )
    assert (
        corpus_clean(
            [
                "--input",
                str(src),
                "--output",
                str(out),
                *ONLY_DEDUP,
                "--dedup-against",
                str(batches["b1"]),
                str(batches["b2"]),
            ]
        )
        == 0
    )
    assert len(list((out / REFERENCE_DIR / bucket).iterdir())) == 2
    assert kept_ids(out) == ["x"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "minhash.num_buckets=20"], "other MinHash settings (num_buckets=14 there, 20 here)"),
        (["--set", "minhash.n_grams=3"], "other MinHash settings (n_grams=5 there, 3 here)"),
        (["--preset", "paper"], "--dedup-against needs --preset full"),
    ],
)
def test_unusable_index_is_refused(batches, tmp_path, extra, message):
    src = write_jsonl(tmp_path / "x.jsonl", [{"id": "x", "text": "some text"}])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "corpus.cli",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "out"),
            "--dedup-against",
            str(batches["b1"]),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_unfinished_run_is_refused(batches, tmp_path):
    src = write_jsonl(tmp_path / "x.jsonl", [{"id": "x", "text": "some text"}])
    (tmp_path / "half" / "minhash_index").mkdir(parents=True)  # killed before it wrote manifest.json
    assert (
        corpus_clean(
            ["--input", str(src), "--output", str(tmp_path / "out"), "--dedup-against", str(tmp_path / "half")]
        )
        == 2
    )
    assert not (tmp_path / "out").exists()
