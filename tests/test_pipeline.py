"""The cleaner end to end on real Debian pages and real prose: what is kept, what is removed, and why."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.cli import main as corpus_clean
from corpus_helpers import edit_words, kept_ids, removed_ids, shard_rows, wikitext_articles, write_jsonl

TRANSLATED = ("de-DE", "fr-FR", "ja-JP", "ru-RU")


@pytest.fixture(scope="module")
def full_run(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "clean"
    assert (
        corpus_clean(
            [
                "--input",
                str(shared_data / "html-sample"),
                "--output",
                str(out),
                "--preset",
                "full",
                "--workers",
                "1",
                "--tasks",
                "2",
            ]
        )
        == 0
    )
    return out


def test_full_preset_removes_translations_boilerplate_and_duplicates(full_run):
    kept = kept_ids(full_run)
    assert kept, "something must survive"
    # real translations are not English: language ID removes them, and only it
    lid_removed = removed_ids(full_run, "language")
    for lang in TRANSLATED:
        assert not [i for i in kept if f"/{lang}/" in i]
        assert [i for i in lid_removed if f"/{lang}/" in i], f"{lang} pages should be removed by language ID"
    # javadoc pages are mostly boilerplate: the quality filters drop nearly all of the 20
    # (one package summary with real prose, javax.sql's, survives)
    assert len([i for i in kept if i.startswith("openjdk-doc/")]) <= 2
    # da-DK / ko-KR hold mostly untranslated copies of en-US pages: never two copies of one page
    pages = [i.rsplit("/", 1)[-1] for i in kept if i.startswith("debian-handbook/")]
    assert len(pages) == len(set(pages)), f"a page kept twice: {sorted(pages)}"
    rows = shard_rows(full_run)
    assert all(r["language"] == "en" and r["language_score"] > 0.65 for r in rows)


def test_stats_manifest_and_report_agree(full_run):
    stats = json.loads((full_run / "stats.json").read_text())
    manifest = json.loads((full_run / "manifest.json").read_text())
    assert stats["input"]["documents"] == 130  # every html-sample page has text
    chain = stats["steps"]
    assert [s["step"] for s in chain] == [
        "language",
        "gopher_quality",
        "gopher_repetition",
        "c4_quality",
        "fineweb_quality",
        "exact_dedup",
        "minhash",
    ]
    for before, after in zip(chain, chain[1:]):
        assert before["docs_out"] == after["docs_in"]
    for step in chain:  # what stats say a step removed is exactly what removed/<step>/ holds
        assert len(removed_ids(full_run, step["step"])) == step["docs_removed"]
    for step in chain:  # and its UTF-8 bytes (pages in eight languages); only C4 also shortens the pages it keeps
        if step["step"] != "c4_quality":
            removed = shard_rows(full_run, f"removed/{step['step']}")
            assert step["bytes_removed"] == sum(len(r["text"].encode("utf-8")) for r in removed)
    assert not all(r["text"].isascii() for r in shard_rows(full_run, "removed/language"))
    assert stats["input"]["text_bytes"] == chain[0]["bytes_in"] > chain[-1]["bytes_out"] == manifest["text_bytes"]
    assert manifest["rows"] == chain[-1]["docs_out"] == stats["output"]["documents"] == len(kept_ids(full_run))
    for shard in manifest["shards"]:
        path = full_run / shard["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == shard["sha256"]
        assert shard["rows"] == pa.ipc.open_stream(pa.memory_map(str(path))).read_all().num_rows
    report = (full_run / "report.md").read_text()
    for step in chain:
        assert f"| {step['step']} | {step['docs_in']:,} | {step['docs_removed']:,} |" in report
    assert "## Examples of removed documents" in report


def test_shards_load_with_datasets(full_run):
    datasets = pytest.importorskip("datasets")
    files = sorted(str(p) for p in (full_run / "shards").glob("*.arrow"))
    ds = datasets.load_dataset("arrow", data_files=files, split="train")
    assert sorted(ds["id"]) == sorted(kept_ids(full_run))
    assert set(ds.column_names) == {"id", "text", "source", "language", "language_score", "metadata"}


def test_near_and_exact_duplicates_removed_once(shared_data, tmp_path):
    articles = wikitext_articles(shared_data, 30)
    records = [{"id": f"orig-{i}", "text": a} for i, a in enumerate(articles)]
    # 1% of the words replaced: word-5-gram Jaccard ~0.9 with the original
    records += [{"id": f"near-{i}", "text": edit_words(articles[i], 0.01, seed=i)} for i in range(10)]
    records += [{"id": f"exact-{i}", "text": articles[10 + i]} for i in range(5)]
    src = write_jsonl(tmp_path / "docs.jsonl", records)
    out = tmp_path / "clean"
    # only deduplication: the quality filters would judge WikiText, which is not what this test is about
    off = [f"filters.{f}=null" for f in ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")]
    args = ["--input", str(src), "--output", str(out), "--workers", "1", "--tasks", "2", "--languages"]
    for o in off:
        args += ["--set", o]
    assert corpus_clean(args) == 0
    kept = set(kept_ids(out))
    for i in range(10):  # each near-duplicate pair: exactly one side kept
        assert len({f"orig-{i}", f"near-{i}"} & kept) == 1
    for i in range(5):  # exact copies: exactly one kept
        assert len({f"orig-{10 + i}", f"exact-{i}"} & kept) == 1
    assert {f"orig-{i}" for i in range(15, 30)} <= kept  # unique articles are all kept
    assert len(removed_ids(out, "exact_dedup")) == 5
    assert len(removed_ids(out, "minhash")) == 10


@pytest.mark.parametrize("tasks", [1, 8])
def test_none_preset_keeps_everything_in_bounded_shards(shared_data, tmp_path, tasks):
    """One task or eight on two workers: the same rows in the same order, in shards within the bound; the tasks'
    small last files are joined (no two neighbours would fit in one)."""
    out = tmp_path / "raw"
    bound = 0.2 * 2**20
    workers = min(tasks, 2)
    args = ["--input", str(shared_data / "html-sample"), "--output", str(out), "--preset", "none"]
    assert corpus_clean([*args, "--workers", str(workers), "--tasks", str(tasks), "--max-shard-mb", "0.2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 130
    assert len(manifest["shards"]) > 3
    rows = shard_rows(out)
    biggest_doc = max(len(r["text"].encode()) for r in rows)
    assert all(s["text_bytes"] <= bound + biggest_doc for s in manifest["shards"])  # the bound, + the doc reaching it
    sizes = [(out / s["path"]).stat().st_size for s in manifest["shards"]]
    assert all(a + b > bound for a, b in zip(sizes, sizes[1:]))
    if tasks > 1:
        assert len(list((out / ".work" / "logs" / "read" / "completions").iterdir())) == tasks
        single = tmp_path / "one-task"
        assert corpus_clean([*args[:3], str(single), *args[4:], "--workers", "1", "--max-shard-mb", "0.2"]) == 0
        assert [r["id"] for r in rows] == kept_ids(single)


def test_default_tasks_are_four_per_worker_of_at_least_2_mib_each():
    from corpus.pipeline import CleanConfig

    mib = 2**20
    assert CleanConfig(workers=2).tasks_for(100 * mib) == 8
    assert CleanConfig(workers=2).tasks_for(5 * mib) == 3
    assert CleanConfig(workers=2).tasks_for(1000) == 2  # never fewer tasks than workers
    assert CleanConfig(workers=1).tasks_for(100 * mib) == 1
    assert CleanConfig(workers=2, tasks=5).tasks_for(1000) == 5


def test_task_files_are_joined_in_order_and_a_killed_join_is_finished(tmp_path):
    from corpus.arrow_writer import ArrowShardWriter, join_shards, group_shards, iter_shard_rows
    from datatrove.data import Document

    folder = tmp_path / "final"
    for rank, n in enumerate([3, 0, 5, 2]):  # rank 1 kept nothing: no file
        with ArrowShardWriter(folder) as writer:
            for i in range(n):
                writer.write(Document(text=f"text {rank}-{i} " * 50, id=f"{rank}-{i}"), rank)
    files = sorted(folder.glob("rank-*.arrow"))
    sizes = [f.stat().st_size for f in files]
    assert group_shards(files, sum(sizes)) == [files]
    assert group_shards(files, 1) == [[f] for f in files]  # each file alone is over the bound: never split
    groups = group_shards(files, sizes[0] + sizes[1])
    assert groups == [files[:2], files[2:]]
    ids = [r["id"] for f in files for r in iter_shard_rows(f)]

    dest = tmp_path / "shard-00000.arrow"
    dest.with_suffix(".arrow.tmp").write_bytes(b"half a shard from a killed run")
    join_shards(groups[0], dest)
    assert [r["id"] for r in iter_shard_rows(dest)] == ids[:8]
    assert not any(f.exists() for f in groups[0]) and not dest.with_suffix(".arrow.tmp").exists()
    # killed after the rename, before the sources were removed: the re-run removes them and keeps the shard
    second = tmp_path / "shard-00001.arrow"
    join_shards(groups[1], second)
    copies = [tmp_path / f"copy-{f.name}" for f in files[:2]]
    for copy in copies:
        copy.write_bytes(b"not read again")
    before = second.read_bytes()
    join_shards(copies, second)
    assert second.read_bytes() == before and not any(c.exists() for c in copies)
    # one source is renamed, not copied
    third = tmp_path / "shard-00002.arrow"
    alone = tmp_path / "copy-alone.arrow"
    alone.write_bytes(before)
    join_shards([alone], third)
    assert third.read_bytes() == before and not alone.exists()


def test_dedup_against_an_existing_clean_corpus(shared_data, tmp_path):
    articles = wikitext_articles(shared_data, 40)
    first = write_jsonl(tmp_path / "first.jsonl", [{"id": f"a-{i}", "text": t} for i, t in enumerate(articles[:20])])
    again = write_jsonl(tmp_path / "again.jsonl", [{"id": f"b-{i}", "text": t} for i, t in enumerate(articles[:20])])
    new = write_jsonl(tmp_path / "new.jsonl", [{"id": f"c-{i}", "text": t} for i, t in enumerate(articles[20:])])
    off = []
    for f in ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"):
        off += ["--set", f"filters.{f}=null"]
    common = ["--workers", "1", "--languages", *off]
    assert corpus_clean(["--input", str(first), "--output", str(tmp_path / "base"), *common]) == 0
    assert len(kept_ids(tmp_path / "base")) == 20
    assert (tmp_path / "base" / "minhash_index").is_dir()
    assert (
        corpus_clean(
            [
                "--input",
                str(again),
                "--output",
                str(tmp_path / "again"),
                "--dedup-against",
                str(tmp_path / "base"),
                *common,
            ]
        )
        == 0
    )
    assert kept_ids(tmp_path / "again") == []  # the same batch again: all of it is already in the corpus
    assert (
        corpus_clean(
            ["--input", str(new), "--output", str(tmp_path / "new"), "--dedup-against", str(tmp_path / "base"), *common]
        )
        == 0
    )
    assert sorted(kept_ids(tmp_path / "new")) == sorted(
        f"c-{i}" for i in range(len(articles) - 20)
    )  # new text: nothing lost


def test_our_filters_in_datatroves_own_worker_processes(shared_data, tmp_path):
    """datatrove's local executor with two workers runs its tasks in a process pool (its `multiprocess`
    package): our filters are pickled into it and decide as in one process."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from corpus.filters import BundledLanguageFilter
    from corpus.quality import FastGopherQualityFilter
    from corpus.readers import RawDocumentReader
    from corpus.text import RegexWordTokenizer

    pages = list(RawDocumentReader([str(shared_data / "html-sample")]).run())
    (tmp_path / "raw").mkdir()
    for half in (0, 1):
        write_jsonl(tmp_path / "raw" / f"{half}.jsonl", [{"id": d.id, "text": d.text} for d in pages[half::2]])

    def run(workers: int) -> list[str]:
        out = tmp_path / f"out-{workers}"
        LocalPipelineExecutor(
            [
                JsonlReader(str(tmp_path / "raw")),
                BundledLanguageFilter(["en"]),
                FastGopherQualityFilter(language=RegexWordTokenizer()),
                JsonlWriter(str(out), compression=None),
            ],
            tasks=2,
            workers=workers,
            logging_dir=str(tmp_path / f"logs-{workers}"),
        ).run()
        return sorted(json.loads(line)["id"] for path in out.glob("*.jsonl") for line in path.open())

    kept = run(2)
    assert kept == run(1)
    assert 10 <= len(kept) <= len(pages) - 10


def test_our_steps_in_a_plain_datatrove_pipeline(shared_data, tmp_path):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader

    from corpus.arrow_writer import ArrowShardWriter
    from corpus.filters import BundledLanguageFilter
    from corpus.paper_cleaner import PaperCleaner

    docs = [
        {"id": "en", "text": "This is an ordinary English sentence about the weather and the sea."},
        {"id": "de", "text": "Dies ist ein ganz normaler deutscher Satz über das Wetter und das Meer."},
    ]
    (tmp_path / "raw").mkdir()
    write_jsonl(tmp_path / "raw" / "docs.jsonl", docs)
    LocalPipelineExecutor(
        [
            JsonlReader(str(tmp_path / "raw")),
            BundledLanguageFilter(["en"]),
            PaperCleaner(),
            ArrowShardWriter(tmp_path / "clean"),
        ],
        tasks=1,
        workers=1,
        logging_dir=str(tmp_path / "logs"),
    ).run()
    rows = shard_rows(tmp_path, "clean")
    assert [r["id"] for r in rows] == ["en"] and rows[0]["language"] == "en"


def test_fast_gopher_repetition_decides_exactly_as_datatrove(shared_data):
    from datatrove.pipeline.filters import GopherRepetitionFilter

    from corpus.readers import RawDocumentReader
    from corpus.repetition import FastGopherRepetitionFilter
    from corpus.text import RegexWordTokenizer

    words = RegexWordTokenizer()
    ours, theirs = FastGopherRepetitionFilter(language=words), GopherRepetitionFilter(language=words)
    docs = list(RawDocumentReader([str(shared_data / "html-sample")]).run())
    docs += [type(docs[0])(text="spam spam spam eggs\n" * 30 + "the end", id="rep")]  # repeated lines and n-grams
    decisions = [(ours.filter(d), theirs.filter(d)) for d in docs]
    assert all(a == b for a, b in decisions)
    assert sum(a is not True for a, _ in decisions) >= 10  # the sample does exercise the dropping rules


def test_fast_gopher_quality_decides_exactly_as_datatrove(shared_data):
    from datatrove.pipeline.filters import GopherQualityFilter

    from corpus.quality import FastGopherQualityFilter
    from corpus.readers import RawDocumentReader
    from corpus.text import RegexWordTokenizer

    words = RegexWordTokenizer()
    ours, theirs = FastGopherQualityFilter(language=words), GopherQualityFilter(language=words)
    docs = list(RawDocumentReader([str(shared_data / "html-sample")]).run())
    docs += [
        type(docs[0])(text=text, id=str(i))
        for i, text in enumerate(
            (
                "- item one of the list\n" * 60,
                "the of and " * 30 + "... ... #",
                "x " * 200,
                "### ,,, ;;;" * 20,
                "der die das " * 40,
            )
        )
    ]
    decisions = [(ours.filter(d), theirs.filter(d)) for d in docs]
    assert all(a == b for a, b in decisions)
    assert len({a if a is True else a[1] for a, _ in decisions}) >= 4  # kept and several reasons to drop


def test_minhash_text_simplification_is_datatrove_s(shared_data):
    from datatrove.utils.text import TextNormConfig, simplify_text

    from corpus.dedup import simplify
    from corpus.readers import RawDocumentReader

    texts = [d.text for d in RawDocumentReader([str(shared_data / "html-sample")]).run()]
    texts += ["  \x0b Héllo, wörld!! — ça va? \u0301x 12,5 Monday\x85 ", "", "...", "\u0301 a", "ﬁ ½ ① Ǆ"]
    for config in (TextNormConfig(), TextNormConfig(norm_weekdays=True, norm_unicode_diacritics=False)):
        assert [simplify(t, config) for t in texts] == [simplify_text(t, config) for t in texts]


def test_language_id_from_a_sample_decides_as_on_the_whole_text(shared_data):
    """A long page is first scored on a sample; the keep/drop decisions stay those of fastText on the whole
    text (the translated Debian pages mix languages with English commands and names: a real test)."""
    from corpus.filters import BundledLanguageFilter
    from corpus.readers import RawDocumentReader

    docs = list(RawDocumentReader([str(shared_data / "html-sample")]).run())
    sampled, whole = BundledLanguageFilter(["en"]), BundledLanguageFilter(["en"], sample_chars=None)
    assert sum(len(d.text) > 2 * sampled.sample_chars for d in docs) >= 30  # most pages go through the sample
    decisions = [(sampled.filter(d), whole.filter(type(d)(text=d.text, id=d.id))) for d in docs]
    assert sum(a == b for a, b in decisions) >= 0.98 * len(docs)
    assert 10 <= sum(a for a, _ in decisions) <= len(docs) - 10  # both outcomes occur


def test_language_id_reads_a_larger_sample_before_the_whole_text(shared_data, monkeypatch):
    """A page whose first sample scores near the threshold is settled by a sample four times larger: the model
    reads both samples, not the page, and decides as on the whole page. A clearly English page is decided
    from its first sample."""
    from corpus.filters import BundledLanguageFilter
    from corpus.language_id import WordTableLID
    from corpus.readers import RawDocumentReader

    pages = {d.id: d for d in RawDocumentReader([str(shared_data / "html-sample")]).run()}
    read = []
    predict_many = WordTableLID.predict_many

    def reading(self, docs):
        read.extend(len(d.text) for d in docs)
        return predict_many(self, docs)

    monkeypatch.setattr(WordTableLID, "predict_many", reading)
    sampled, whole = BundledLanguageFilter(["en"]), BundledLanguageFilter(["en"], sample_chars=None)
    near = pages["python3.11-doc/codecs.html"]  # 43k characters: its first sample scores 0.84, the larger 0.82
    assert sampled.filter(near) == whole.filter(type(near)(text=near.text, id=near.id))
    assert read[:2] == [2000 + 3, 8000 + 7]  # the samples' slices, joined with spaces; then the whole page, once
    assert read[2:] == [len(near.text)]
    read.clear()
    clear = pages["debian-handbook/en-US/sect.apparmor.html"]
    assert sampled.filter(clear) is True and read == [2003]


def test_installed_distributions_are_found_as_datatrove_finds_them():
    """datatrove scans every installed distribution's metadata for a name; the cleaner asks for the name
    directly: the same answers (found: True, missing or another name's: None)."""
    import importlib.metadata

    from corpus.filters import distribution_available

    def scanned(name):
        names = {(d.metadata.get("Name") or "").lower() for d in importlib.metadata.distributions()}
        return True if name in names else None

    for name in ["fasteners", "fasttext-numpy2-wheel", "pyarrow", "fasttext", "no-such-distribution", "PyArrow"]:
        assert distribution_available(name) == scanned(name), name


def every_rule(piece: str) -> list[str]:
    """The word split's rules, each applied to every piece (the tokenizer tries a rule only where it can apply)."""
    from corpus.text import _CONTRACTION_RE, _INFIX_RE, peel

    if piece.isalnum():  # a plain word (even "cannot") is one token
        return [piece]
    prefix, piece, suffix = peel(piece)
    match = _CONTRACTION_RE.match(piece)
    cores = (
        [match.group(1), match.group(2)] if match else [piece[:3], piece[3:]] if piece.lower() == "cannot" else [piece]
    )
    return prefix + [p for core in cores for p in _INFIX_RE.split(core) if p] + suffix[::-1]


def test_word_splitting_shortcuts_match_the_rules_applied_everywhere(shared_data):
    from corpus.readers import RawDocumentReader
    from corpus.text import RegexWordTokenizer

    texts = [d.text for d in RawDocumentReader([str(shared_data / "html-sample")]).run()]
    texts.append("a. e.g. U.S. cannot, Cannot. word, don't. (x) 42. x1! über. ok CANNOT can't’s a--b x..y x…y a/b")
    tokenizer = RegexWordTokenizer()
    for text in texts * 2:  # the second time, every piece that needs splitting was split before
        assert tokenizer.word_tokenize(text) == [t for piece in text.split() for t in every_rule(piece)]


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ab1_'’.,;:!?()[]<>=/-–—~…\"“”#$*nNtTcCoOsS", min_size=1, max_size=12))
def test_word_splitting_shortcuts_on_any_piece(piece):
    from corpus.text import split_non_alnum, split_piece

    assert split_piece(piece) == every_rule(piece)
    if not piece.isalnum():
        assert list(split_non_alnum(piece)) == every_rule(piece)


def test_light_stages_run_in_process_only_with_little_to_read(tmp_path, monkeypatch):
    from corpus import stage
    from corpus.stage import Stage

    sigs = tmp_path / "sigs"
    (sigs / "bucket_000").mkdir(parents=True)
    (sigs / "bucket_000" / "00000.minhash.sig").write_bytes(b"x" * 1000)
    assert Stage("minhash-buckets", [], 14, reads_signatures=sigs).runs_in_process()
    assert not Stage("filter", [], 2).runs_in_process()  # reads documents: always on the workers
    monkeypatch.setattr(stage, "IN_PROCESS_BYTES", 1000)  # the signatures are as large as the bound
    assert not Stage("minhash-buckets", [], 14, reads_signatures=sigs).runs_in_process()
