"""Remote storage against a real S3 API: a local S3-compatible server (moto, in server mode, on 127.0.0.1)
started and stopped here. Inputs are uploaded to it, the clean corpus is written to it, and it must equal
the corpus of the same run on local files."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.cli import main as corpus_clean
from corpus.readers import RawDocumentReader
from corpus_helpers import shard_rows, wikitext_articles, write_jsonl

pytest.importorskip("s3fs", reason="s3fs is not installed (pip install '.[dev]')")
pytest.importorskip("moto", reason="moto is not installed (pip install '.[dev]')")

BUCKET = "corpora"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on 127.0.0.1 (moto_server), with credentials and endpoint in the environment, so
    every process of the run (workers included) reaches it; stopped at the end."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))  # staging folders and mirrors
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto server did not start: {Path(log.name).read_text()[-2000:]}")
                time.sleep(0.2)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        yield fs
    finally:
        mp.undo()
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def raw(shared_data, tmp_path_factory) -> Path:
    """Real input in two formats: WikiText articles (JSONL, each twice: dedup has work) and Debian pages (Parquet)."""
    folder = tmp_path_factory.mktemp("raw")
    articles = wikitext_articles(shared_data, 12)
    write_jsonl(folder / "articles.jsonl", [{"id": f"a-{i}", "text": t} for i, t in enumerate(articles + articles[:4])])
    pages = [
        {"id": d.id, "text": d.text}
        for d in RawDocumentReader([str(shared_data / "html-sample" / "debian-handbook" / "en-US")]).run()
    ]
    pq.write_table(pa.Table.from_pylist(pages), folder / "pages.parquet", row_group_size=4)
    return folder


def download(fs, url: str, dest: Path) -> Path:
    fs.get(url.removeprefix("s3://").rstrip("/") + "/", str(dest), recursive=True)
    return dest


def comparable(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "rows": shard_rows(out),
        "shards": manifest["shards"],
        "removed": sorted(p.relative_to(out).as_posix() for p in (out / "removed").rglob("*.arrow")),
    }


def test_s3_input_and_output_equal_the_local_run(s3, raw, tmp_path):
    for f in raw.iterdir():
        s3.put_file(str(f), f"{BUCKET}/raw/{f.name}")
    common = ["--preset", "full", "--workers", "1", "--tasks", "2"]
    assert corpus_clean(["--input", str(raw), "--output", str(tmp_path / "local"), *common]) == 0
    assert corpus_clean(["--input", f"s3://{BUCKET}/raw", "--output", f"s3://{BUCKET}/clean", *common]) == 0
    remote = comparable(download(s3, f"s3://{BUCKET}/clean", tmp_path / "remote"))
    local = comparable(tmp_path / "local")
    assert remote["rows"] and remote == local
    assert {"report.md", "stats.json", ".work"} <= {p.name for p in (tmp_path / "remote").iterdir()}

    # the same batch again, deduplicated against the corpus on S3: nothing of it is new
    assert (
        corpus_clean(
            [
                "--input",
                f"s3://{BUCKET}/raw",
                "--output",
                f"s3://{BUCKET}/again",
                *common,
                "--dedup-against",
                f"s3://{BUCKET}/clean",
            ]
        )
        == 0
    )
    again = json.loads(s3.cat_file(f"{BUCKET}/again/manifest.json"))
    assert again["rows"] == 0 and again["config"]["dedup_against"] == [f"s3://{BUCKET}/clean"]


def test_remote_output_safety(s3, raw, tmp_path, capsys):
    s3.put_file(str(raw / "articles.jsonl"), f"{BUCKET}/in/articles.jsonl")
    s3.pipe_file(f"{BUCKET}/users-folder/keep.txt", b"the user's own file")
    args = ["--input", f"s3://{BUCKET}/in", "--preset", "none", "--workers", "1"]
    # a folder that is not one of our runs: refused, --overwrite or not, and left as it was
    for extra in ([], ["--overwrite"]):
        assert corpus_clean([*args, "--output", f"s3://{BUCKET}/users-folder", *extra]) == 2
        assert "was not made by `corpus-clean`; nothing was written there" in capsys.readouterr().err
    assert s3.find(f"{BUCKET}/users-folder") == [f"{BUCKET}/users-folder/keep.txt"]
    # another command's output: refused too
    s3.pipe_file(f"{BUCKET}/tokens/.made-by.json", json.dumps({"command": "train tokenize"}).encode())
    s3.pipe_file(f"{BUCKET}/tokens/train-00000.bin", b"\0" * 8)
    assert corpus_clean([*args, "--output", f"s3://{BUCKET}/tokens", "--overwrite"]) == 2
    assert "holds the output of `train tokenize`" in capsys.readouterr().err
    assert s3.cat_file(f"{BUCKET}/tokens/train-00000.bin") == b"\0" * 8
    # our own run with other settings: replaced only with --overwrite
    assert corpus_clean([*args, "--output", f"s3://{BUCKET}/ours"]) == 0
    assert corpus_clean([*args, "--output", f"s3://{BUCKET}/ours", "--max-shard-mb", "1"]) == 2
    assert "other inputs or settings" in capsys.readouterr().err
    assert corpus_clean([*args, "--output", f"s3://{BUCKET}/ours", "--max-shard-mb", "1", "--overwrite"]) == 0
    assert json.loads(s3.cat_file(f"{BUCKET}/ours/manifest.json"))["config"]["max_shard_mb"] == 1.0
    assert json.loads(s3.cat_file(f"{BUCKET}/ours/.made-by.json"))["command"] == "corpus-clean"
    # an input that is not there: one clear line
    assert corpus_clean(["--input", f"s3://{BUCKET}/nothing-here", "--output", str(tmp_path / "o")]) == 2
    assert f"input not found: s3://{BUCKET}/nothing-here" in capsys.readouterr().err


def test_memory_and_file_urls_read_like_paths(raw, tmp_path):
    import fsspec

    mem = fsspec.filesystem("memory")
    mem.put_file(str(raw / "articles.jsonl"), "/urls/articles.jsonl")
    by_path = [(d.id, d.text) for d in RawDocumentReader([str(raw / "articles.jsonl")]).run()]
    assert [(d.id, d.text) for d in RawDocumentReader(["memory://urls"]).run()] == by_path
    assert [(d.id, d.text) for d in RawDocumentReader([f"file://{raw}/articles.jsonl"]).run()] == by_path
    assert [(d.id, d.text) for d in RawDocumentReader(["memory://urls"]).run(rank=1, world_size=2)] == [
        (d.id, d.text) for d in RawDocumentReader([str(raw / "articles.jsonl")]).run(rank=1, world_size=2)
    ]
