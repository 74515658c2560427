"""Every input format, and every kind of bad input: counted skips, valid documents kept, clear errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.cli import main as corpus_clean
from corpus.readers import RawDocumentReader, html_to_text
from corpus_helpers import arrow_stream_file, kept_ids, shard_rows, write_jsonl

GOOD = [{"id": f"good-{i}", "text": f"Document number {i} has some plain English words in it."} for i in range(3)]


def read_all(paths, **kw) -> tuple[list, dict]:
    reader = RawDocumentReader([str(p) for p in paths], **kw)
    docs = list(reader.run())
    stats = {k: v.total for k, v in reader.stats.stats.items()}
    return docs, stats


def test_every_format_round_trips(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    write_jsonl(tmp_path / "a.jsonl", GOOD[:1])
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps(GOOD[1]) + "\n")
    table = pa.Table.from_pylist([{"id": "pq-0", "text": "Parquet text here."}])
    pq.write_table(table, tmp_path / "c.parquet")
    arrow_stream_file(tmp_path / "d.arrow", pa.Table.from_pylist([{"id": "ipc-0", "text": "Arrow stream text."}]))
    with pa.OSFile(str(tmp_path / "e.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(pa.Table.from_pylist([{"id": "ipcf-0", "text": "Arrow file text."}]))
    (tmp_path / "f.txt").write_text("A plain text file.")
    page = (
        "<html><body><article><h1>Title</h1><p>"
        + "A real paragraph of prose about Debian packages. " * 8
        + "</p></article></body></html>"
    )
    (tmp_path / "g.html").write_text(page)
    with open(tmp_path / "h.warc.gz", "wb") as f:
        writer = WARCWriter(f, gzip=True)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.0")
        writer.write_record(
            writer.create_warc_record(
                "http://example.org/", "response", payload=__import__("io").BytesIO(page.encode()), http_headers=headers
            )
        )
        headers = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.0")
        writer.write_record(
            writer.create_warc_record(
                "http://example.org/x.png",
                "response",
                payload=__import__("io").BytesIO(b"\x89PNG"),
                http_headers=headers,
            )
        )
    docs, stats = read_all([tmp_path])
    by_source = {d.metadata["source"]: d for d in docs}
    assert set(by_source) == {
        "a.jsonl",
        "b.jsonl.gz",
        "c.parquet",
        "d.arrow",
        "e.arrow",
        "f.txt",
        "g.html",
        "h.warc.gz",
    }
    assert by_source["c.parquet"].id == "pq-0" and by_source["e.arrow"].text == "Arrow file text."
    assert "real paragraph of prose" in by_source["g.html"].text and "<p>" not in by_source["g.html"].text
    assert by_source["h.warc.gz"].metadata["url"] == "http://example.org/"
    assert stats["skipped_warc_not_html"] == 1


def test_bad_jsonl_lines_are_counted_and_neighbours_kept(tmp_path):
    src = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            GOOD[0],
            '{"id": "broken", "text": "no closing brace"',  # malformed JSON
            b'{"id": "latin1", "text": "caf\xe9"}',  # invalid UTF-8
            {"id": "notext", "body": "the text is under another key"},
            {"id": "empty", "text": "   "},
            {"id": "number", "text": 42},
            {"id": "huge", "text": "x" * 2000},
            "[1, 2, 3]",  # JSON, but not an object
            GOOD[1],
        ],
    )
    docs, stats = read_all([src], max_doc_bytes=1000)
    assert [d.id for d in docs] == ["good-0", "good-1"]
    assert stats["skipped_malformed_json"] == 2
    assert stats["skipped_invalid_utf8"] == 1
    assert stats["skipped_missing_text"] == 1
    assert stats["skipped_empty"] == 1
    assert stats["skipped_bad_text_type"] == 1
    assert stats["skipped_too_large"] == 1


def test_truncated_gzip_keeps_the_lines_before_the_fault(tmp_path):
    lines = "".join(json.dumps({"id": f"d{i}", "text": f"line {i} " * 50}) + "\n" for i in range(200))
    data = gzip.compress(lines.encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    docs, stats = read_all([tmp_path / "cut.jsonl.gz"])
    assert 0 < len(docs) < 200
    assert [d.id for d in docs] == [f"d{i}" for i in range(len(docs))]  # a prefix, in order, nothing invented
    assert stats["skipped_file_truncated"] == 1


def test_corrupt_parquet_and_arrow_are_skipped_and_other_files_read(tmp_path):
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 this is not really parquet PAR1")
    good = pa.Table.from_pylist([{"id": f"a{i}", "text": f"arrow text {i}"} for i in range(50)])
    full = arrow_stream_file(tmp_path / "whole.arrow", good, batch_rows=10).read_bytes()
    (tmp_path / "cut.arrow").write_bytes(full[: len(full) // 2])  # cut inside the third of five batches
    pq.write_table(pa.Table.from_pylist([{"id": "nope", "body": "no text column"}]), tmp_path / "nocol.parquet")
    write_jsonl(tmp_path / "ok.jsonl", GOOD)
    docs, stats = read_all([tmp_path])
    ids = [d.id for d in docs]
    assert [i for i in ids if i.startswith("good-")] == ["good-0", "good-1", "good-2"]
    arrow_ids = [i for i in ids if i in {f"a{k}" for k in range(50)}]
    assert arrow_ids == [f"a{k}" for k in range(20)] + [f"a{k}" for k in range(50)]  # cut.arrow: its two whole batches
    assert stats["skipped_file_corrupt"] == 2
    assert stats["skipped_missing_text"] == 1


def test_partition_over_tasks_loses_and_duplicates_nothing(tmp_path):
    for i in range(7):
        write_jsonl(tmp_path / f"part-{i}.jsonl", [{"id": f"{i}-{j}", "text": f"text {i} {j}"} for j in range(3)])
    everything = sorted(d.id for d in read_all([tmp_path])[0])
    split = []
    for rank in range(3):
        split += [d.id for d in RawDocumentReader([str(tmp_path)]).run(rank=rank, world_size=3)]
    assert sorted(split) == everything and len(everything) == 21


def test_html_extraction_on_real_debian_pages(shared_data):
    page = (shared_data / "html-sample" / "debian-handbook" / "en-US" / "sect.apparmor.html").read_bytes()
    text = html_to_text(page)
    assert "AppArmor" in text and "profile" in text
    assert "<div" not in text and "</" not in text


def test_cli_keeps_valid_docs_and_lists_skips(tmp_path):
    src = write_jsonl(tmp_path / "mixed.jsonl", [GOOD[0], "not json at all", GOOD[1]])
    out = tmp_path / "out"
    assert corpus_clean(["--input", str(src), "--output", str(out), "--preset", "none", "--workers", "1"]) == 0
    assert kept_ids(out) == ["good-0", "good-1"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input"]["skipped"] == {"malformed_json": 1}
    skipped = [
        json.loads(line) for f in (out / ".work" / "skipped").glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert skipped == [
        {"file": str(src), "where": "line 2", "reason": "malformed_json", "detail": skipped[0]["detail"]}
    ]
    assert "malformed_json" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "/no/such/path"], "input not found: /no/such/path"),
        (["--input", "{empty}"], "no readable files"),
        (["--input", "{src}", "--set", "filters.nope=1"], "unknown setting 'nope'"),
        (["--input", "{src}", "--decontaminate", "/no/eval.txt"], "file not found: /no/eval.txt"),
    ],
)
def test_user_mistakes_give_one_clear_line(tmp_path, args, message):
    src = write_jsonl(tmp_path / "ok.jsonl", GOOD)
    (tmp_path / "empty").mkdir()
    args = [a.format(src=src, empty=tmp_path / "empty") for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "corpus.cli", *args, "--output", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_output_holding_another_run_is_refused(tmp_path):
    src = write_jsonl(tmp_path / "ok.jsonl", GOOD)
    out = tmp_path / "out"
    assert corpus_clean(["--input", str(src), "--output", str(out), "--preset", "none", "--workers", "1"]) == 0
    assert corpus_clean(["--input", str(src), "--output", str(out), "--preset", "paper", "--workers", "1"]) == 2
    assert (
        corpus_clean(["--input", str(src), "--output", str(out), "--preset", "paper", "--workers", "1", "--overwrite"])
        == 0
    )
    assert json.loads((out / "manifest.json").read_text())["config"]["preset"] == "paper"
    assert len(shard_rows(out)) == 3
