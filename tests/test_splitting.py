"""One file, all cores: inputs split below the file level, and nothing depends on how they were split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.cli import main as corpus_clean
from corpus.readers import RawDocumentReader
from corpus_helpers import arrow_stream_file, edit_words, removed_ids, shard_rows, wikitext_articles

STEPS = ("language", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality", "exact_dedup", "minhash")


@pytest.fixture(scope="module")
def real_records(shared_data) -> list[dict]:
    """Real text: the html sample's pages (translations, boilerplate, exact copies) and clusters of
    near-duplicate WikiText articles (4 lightly edited copies each, spread through the input)."""
    pages = [{"id": d.id, "text": d.text} for d in RawDocumentReader([str(shared_data / "html-sample")]).run()]
    articles = wikitext_articles(shared_data, 6)
    copies = [
        {"text": edit_words(a, 0.01, seed)} for seed in range(4) for a in articles
    ]  # no id: line numbers name them
    records = []
    for i, page in enumerate(pages):
        records.append(page)
        if i % 5 == 0 and copies:
            records.append(copies.pop(0))
    return records + copies


def write_jsonl(path: Path, records: list[dict], blank_every: int = 0) -> Path:
    with open(path, "w") as f:
        for i, r in enumerate(records):
            f.write(json.dumps(r) + "\n")
            if blank_every and i % blank_every == 0:
                f.write("\n")  # blank lines count in the line numbers of the ids after them
    return path


def read_split(path: Path, tasks: int) -> list[list[tuple[str, str]]]:
    reader = RawDocumentReader([str(path)])
    per_task = []
    for rank in range(tasks):
        docs = [(d.id, d.text) for d in reader.run(rank=rank, world_size=tasks)]
        assert reader.bytes_consumed == reader.input_bytes(rank, tasks), "progress ends at 100% of the task's bytes"
        per_task.append(docs)
    assert sum(reader.input_bytes(r, tasks) for r in range(tasks)) == path.stat().st_size
    return per_task


def input_files(tmp_path: Path, records: list[dict]) -> dict[str, Path]:
    table = pa.Table.from_pylist([{"id": r.get("id") or "", "text": r["text"]} for r in records])
    files = {
        "jsonl": write_jsonl(tmp_path / "docs.jsonl", records, blank_every=7),
        "parquet": tmp_path / "docs.parquet",
        "arrow-file": tmp_path / "docs-file.arrow",
        "arrow-stream": arrow_stream_file(tmp_path / "docs-stream.arrow", table, batch_rows=9),
        "gzip": tmp_path / "docs.jsonl.gz",
    }
    pq.write_table(table, files["parquet"], row_group_size=11)
    with pa.OSFile(str(files["arrow-file"]), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=13)
    files["gzip"].write_bytes(gzip.compress(files["jsonl"].read_bytes()))
    return files


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "arrow-file", "arrow-stream", "gzip"])
def test_split_reads_every_document_once_in_input_order(real_records, tmp_path, kind):
    path = input_files(tmp_path, real_records)[kind]
    (whole,) = read_split(path, 1)
    assert len(whole) == len(real_records)
    ids = [i for i, _ in whole]
    assert len(set(ids)) == len(ids)
    for tasks in (2, 3, 4, 7):
        per_task = read_split(path, tasks)
        assert [d for docs in per_task for d in docs] == whole, f"{tasks} tasks: the same documents, ids and order"
        busy = sum(1 for docs in per_task if docs)
        if kind == "gzip":
            assert busy == 1  # a gzip stream cannot be entered in the middle: one task reads it all
        else:
            assert busy == tasks, f"{tasks} tasks, but only {busy} got documents from one {kind} file"


def test_default_ids_are_line_numbers_whatever_the_split(real_records, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", real_records, blank_every=7)
    lines = path.read_text().split("\n")
    for docs in read_split(path, 4):
        for doc_id, text in docs:
            if doc_id.startswith("docs.jsonl#"):
                assert json.loads(lines[int(doc_id.split("#")[1])])["text"] == text


def test_bad_lines_are_named_by_their_line_number_whatever_the_split(real_records, tmp_path):
    path = tmp_path / "docs.jsonl"
    with open(path, "w") as f:
        for i, r in enumerate(real_records):
            f.write(json.dumps(r) + "\n" if i % 10 else '{"broken": \n')  # every tenth line is malformed
    named = {}
    for tasks in (1, 4):
        log = tmp_path / f"skips-{tasks}"
        reader = RawDocumentReader([str(path)], skip_log_dir=log)
        for rank in range(tasks):
            list(reader.run(rank=rank, world_size=tasks))
        named[tasks] = sorted(
            json.loads(line)["where"] for f in log.glob("*.jsonl") for line in f.read_text().splitlines()
        )
    assert named[1] == sorted(f"line {i + 1}" for i in range(0, len(real_records), 10))
    assert named[4] == named[1]


def test_progress_counts_bytes_while_reading_one_file(real_records, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", real_records)
    reader = RawDocumentReader([str(path)])
    seen = []
    for _ in reader.run(rank=1, world_size=2):
        seen.append(reader.bytes_consumed)
    total = reader.input_bytes(1, 2)
    assert 0.4 * path.stat().st_size < total < 0.6 * path.stat().st_size
    assert 0 < seen[0] < seen[len(seen) // 2] < total and seen == sorted(seen)
    assert reader.unsplit_compressed(1, 2) == []
    gz = tmp_path / "docs.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    reader = RawDocumentReader([str(gz)])
    seen = [reader.bytes_consumed for _ in reader.run(rank=0, world_size=2)]
    assert reader.unsplit_compressed(0, 2) == ["docs.jsonl.gz"]
    assert 0 < seen[len(seen) // 2] < reader.input_bytes(0, 2) == gz.stat().st_size  # compressed bytes, read whole


def corpus(out: Path) -> dict:
    """What a run produced, independent of shard boundaries: kept rows and each step's removed ids."""
    kept = sorted((r["id"], r["text"], r["metadata"], r["language"]) for r in shard_rows(out))
    return {"kept": kept, **{step: sorted(removed_ids(out, step)) for step in STEPS}}


@pytest.mark.slow
def test_kept_documents_do_not_depend_on_tasks_or_executor(real_records, tmp_path):
    src = write_jsonl(tmp_path / "docs.jsonl", real_records)
    runs = {}
    fewer_buckets = ["--set", "minhash.num_buckets=4"]  # fewer (slow to start) Ray tasks; the same in every run
    for name, args in {
        "1 task": ["--tasks", "1", "--workers", "1"],
        "4 tasks": ["--tasks", "4", "--workers", "1"],
        "ray, 2 tasks": ["--tasks", "2", "--workers", "2", "--executor", "ray"],
    }.items():
        out = tmp_path / name.replace(" ", "").replace(",", "-")
        assert corpus_clean(["--input", str(src), "--output", str(out), "--preset", "full", *fewer_buckets, *args]) == 0
        runs[name] = corpus(out)
    first = runs["1 task"]
    assert first["kept"] and first["exact_dedup"] and first["minhash"], "the input must exercise both deduplications"
    for name, result in runs.items():
        for key in first:
            assert result[key] == first[key], f"{name}: {key} differs from the 1-task run"


def test_progress_line_reads_bytes_eta_and_the_gzip_note(real_records, tmp_path):
    from loguru import logger

    from corpus.pipeline import Progress

    plain = write_jsonl(tmp_path / "docs.jsonl", real_records)
    gz = tmp_path / "more.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), format="{message}")
    try:
        for rank in range(2):
            reader = RawDocumentReader([str(plain), str(gz)])
            for _ in Progress(reader, every_s=0).run(reader.run(rank=rank, world_size=2), rank=rank, world_size=2):
                pass
    finally:
        logger.remove(sink)
    progress = [line for line in lines if " docs/s, " in line and "input " in line]
    total_mb = {
        rank: f"/{RawDocumentReader([str(plain), str(gz)]).input_bytes(rank, 2) / 1e6:,.1f} MB" for rank in range(2)
    }
    for rank in range(2):
        mine = [line for line in progress if line.startswith(f"task {rank}:")]
        assert mine and all(total_mb[rank] in line for line in mine)
        assert "ETA unknown" not in mine[-1] and "nan" not in mine[-1]
        assert not mine[-1].split("input ")[1].startswith("0.0/")
    # the gzip file starts in the second half of the input: task 1 reads it whole and says so
    assert all("gzip cannot be split: more.jsonl.gz" in line for line in progress if line.startswith("task 1:"))
    assert not any("gzip" in line for line in progress if line.startswith("task 0:"))


def test_a_symlink_loop_in_an_input_folder_is_listed_once(tmp_path):
    from corpus.readers import list_input_files

    (tmp_path / "in" / "a").mkdir(parents=True)
    write_jsonl(tmp_path / "in" / "a" / "docs.jsonl", [{"id": "x", "text": "some text"}])
    (tmp_path / "in" / "a" / "loop").symlink_to(tmp_path / "in")
    assert [e.relative for e in list_input_files([str(tmp_path / "in")])] == ["a/docs.jsonl"]
