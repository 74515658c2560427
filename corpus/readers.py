"""Read raw documents from files and folders of any common format into datatrove `Document`s.

Formats, by file name: JSON Lines (`.jsonl`, `.json`, plain or `.gz`), Parquet, Arrow IPC (stream or
file format), WARC (`.warc`, `.warc.gz`: HTML responses), HTML pages (`.html`, `.htm`, `.xhtml`) and plain
text (`.txt`, `.md`, one document per file). HTML is turned into text by `html_to_text` (trafilatura).

Bad input never stops the run and never loses the valid documents around it: a malformed JSON line,
invalid UTF-8, a missing or empty text field, a document over `max_doc_bytes`, a truncated gzip or a
corrupt Parquet/Arrow file is skipped, counted in the step's stats (`skipped_<reason>`) and logged
with its file and line; with `skip_log_dir` set each skip is also written there as one JSON line.

    from corpus.readers import RawDocumentReader
    pipeline = [RawDocumentReader(["crawl/", "extra.jsonl.gz"]), ...]
"""
from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from loguru import logger

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet",)
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
WARC_SUFFIXES = (".warc", ".warc.gz")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
TEXT_SUFFIXES = (".txt", ".md")
ALL_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES + ARROW_SUFFIXES + WARC_SUFFIXES + HTML_SUFFIXES + TEXT_SUFFIXES


class InputError(Exception):
    """A user mistake about the inputs (missing path, nothing readable): one clear message."""


def file_format(path: Path) -> str | None:
    name = path.name.lower()
    for fmt, suffixes in (("jsonl", JSONL_SUFFIXES), ("parquet", PARQUET_SUFFIXES), ("arrow", ARROW_SUFFIXES),
                          ("warc", WARC_SUFFIXES), ("html", HTML_SUFFIXES), ("text", TEXT_SUFFIXES)):
        if name.endswith(suffixes):
            return fmt
    return None


def _hidden(relpath: Path) -> bool:
    return any(part.startswith(".") for part in relpath.parts)


def list_input_files(paths: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(root, file) for every readable file under `paths`, in a deterministic order."""
    found = []
    for root in map(Path, paths):
        if root.is_file():
            found.append((root.parent, root))
        elif root.is_dir():
            found += [(root, f) for f in sorted(root.rglob("*"))
                      if f.is_file() and file_format(f) and not _hidden(f.relative_to(root))]
    return found


def check_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Fail early, naming the path, when an input does not exist or holds nothing we can read."""
    if not paths:
        raise InputError("no input given: pass --input PATH [PATH ...]")
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(f"input not found: {p}")
        if p.is_file() and not file_format(p):
            raise InputError(f"{p}: unknown format; expected one of {', '.join(ALL_SUFFIXES)}")
    files = [f for _, f in list_input_files(paths)]
    if not files:
        raise InputError(f"no readable files ({', '.join(ALL_SUFFIXES)}) under {', '.join(map(str, paths))}")
    return files


def html_to_text(html: str | bytes) -> str | None:
    """Main text of an HTML page (trafilatura, deterministic settings), or None if it has none."""
    import trafilatura

    # deduplicate=False: trafilatura's dedup cache spans documents, which would make the output depend
    # on the order pages are read in (and so on the number of tasks)
    text = trafilatura.extract(html, favor_precision=True, include_comments=False, include_tables=True, deduplicate=False)
    return text.strip() if text and text.strip() else None


class RawDocumentReader(PipelineStep):
    name = "📖 raw documents"
    type = "📖 - READER"

    def __init__(
        self,
        paths: list[str | os.PathLike],
        text_key: str = "text",
        id_key: str = "id",
        limit: int = -1,
        max_doc_bytes: int = 5 * 2**20,
        skip_log_dir: str | os.PathLike | None = None,
    ):
        super().__init__()
        self.paths = [str(p) for p in paths]
        self.text_key = text_key
        self.id_key = id_key
        self.limit = limit
        self.max_doc_bytes = max_doc_bytes
        self.skip_log_dir = Path(skip_log_dir) if skip_log_dir else None
        self.bytes_consumed = 0  # input bytes read so far by this task, for progress/ETA
        self._skip_log = None

    # -- which files this task reads -----------------------------------------------------------
    def task_files(self, rank: int = 0, world_size: int = 1) -> list[tuple[Path, Path]]:
        return list_input_files(self.paths)[rank::world_size]

    def input_bytes(self, rank: int = 0, world_size: int = 1) -> int:
        return sum(f.stat().st_size for _, f in self.task_files(rank, world_size))

    # -- skips ---------------------------------------------------------------------------------
    def skip(self, reason: str, path: Path, where: str = "", detail: str = "") -> None:
        self.stat_update(f"skipped_{reason}")
        location = f"{path}:{where}" if where else str(path)
        logger.warning(f"skipped ({reason}) {location}{': ' + detail if detail else ''}")
        if self._skip_log is not None:
            self._skip_log.write(json.dumps({"file": str(path), "where": where, "reason": reason, "detail": detail[:300]}) + "\n")

    def make_document(self, text, doc_id, source: str, path: Path, where: str, extra: dict | None = None) -> Document | None:
        if text is None:
            self.skip("missing_text", path, where, f"no {self.text_key!r} field")
            return None
        if not isinstance(text, str):
            self.skip("bad_text_type", path, where, f"{self.text_key!r} is {type(text).__name__}, not a string")
            return None
        if not text.strip():
            self.skip("empty", path, where)
            return None
        if len(text) > self.max_doc_bytes or len(text.encode("utf-8")) > self.max_doc_bytes:
            self.skip("too_large", path, where, f"{len(text.encode('utf-8')):,} bytes > max_doc_bytes {self.max_doc_bytes:,}")
            return None
        metadata = {k: v for k, v in (extra or {}).items() if v is not None}
        metadata["source"] = source
        return Document(text=text, id=str(doc_id), metadata=metadata)

    # -- formats -------------------------------------------------------------------------------
    def _records(self, fmt: str, path: Path, source: str) -> Iterator[Document | None]:
        yield from getattr(self, f"_read_{fmt}")(path, source)

    def _fields(self, record: dict, source: str, index: int, path: Path, where: str) -> Document | None:
        doc_id = record.get(self.id_key)
        doc_id = f"{source}#{index}" if doc_id is None or doc_id == "" else doc_id
        extra = {k: v for k, v in record.items() if k not in (self.text_key, self.id_key) and isinstance(v, (str, int, float, bool))}
        if "source" in extra:  # the record's own source field is kept, ours names the file
            extra["orig_source"] = extra.pop("source")
        return self.make_document(record.get(self.text_key), doc_id, source, path, where, extra)

    def _read_jsonl(self, path: Path, source: str):
        opener = gzip.open if path.name.endswith(".gz") else open
        line_no = 0
        try:
            with opener(path, "rb") as f:
                for line_no, raw in enumerate(f, start=1):
                    if not raw.strip():
                        continue
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        self.skip("invalid_utf8", path, f"line {line_no}", str(e))
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as e:
                        self.skip("malformed_json", path, f"line {line_no}", str(e))
                        continue
                    if not isinstance(record, dict):
                        self.skip("malformed_json", path, f"line {line_no}", f"a JSON {type(record).__name__}, not an object")
                        continue
                    yield self._fields(record, source, line_no - 1, path, f"line {line_no}")
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
            self.skip("file_truncated", path, f"after line {line_no}", f"{type(e).__name__}: {e}")

    def _iter_batches(self, path: Path, fmt: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if fmt == "parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=1000)
            return
        with pa.memory_map(str(path), "r") as source:
            try:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
            except pa.ArrowInvalid:  # not the file format: try the stream format
                source.seek(0)
                yield from pa.ipc.open_stream(source)

    def _read_table(self, path: Path, source: str, fmt: str):
        import pyarrow as pa

        index = 0
        try:
            for batch in self._iter_batches(path, fmt):
                if self.text_key not in batch.schema.names:
                    self.skip("missing_text", path, f"rows {index}-{index + batch.num_rows - 1}",
                              f"no {self.text_key!r} column (columns: {', '.join(batch.schema.names)})")
                    index += batch.num_rows
                    continue
                for record in batch.to_pylist():
                    yield self._fields(record, source, index, path, f"row {index}")
                    index += 1
        except (pa.ArrowException, OSError, ValueError) as e:
            self.skip("file_corrupt", path, f"after row {index}", f"{type(e).__name__}: {e}")

    def _read_parquet(self, path: Path, source: str):
        yield from self._read_table(path, source, "parquet")

    def _read_arrow(self, path: Path, source: str):
        yield from self._read_table(path, source, "arrow")

    def _read_warc(self, path: Path, source: str):
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        index = 0
        try:
            with open(path, "rb") as f:
                for index, record in enumerate(ArchiveIterator(f)):
                    if record.rec_type != "response":
                        continue
                    content_type = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
                    if "html" not in content_type.lower():
                        self.skip("warc_not_html", path, f"record {index}", content_type or "no content type")
                        continue
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    text = html_to_text(record.content_stream().read())
                    if text is None:
                        self.skip("no_text", path, f"record {index}", f"no main text in {url}")
                        continue
                    doc_id = record.rec_headers.get_header("WARC-Record-ID") or f"{source}#{index}"
                    yield self.make_document(text, doc_id, source, path, f"record {index}", {"url": url})
        except (ArchiveLoadFailed, EOFError, zlib.error, OSError) as e:
            self.skip("file_truncated", path, f"after record {index}", f"{type(e).__name__}: {e}")

    def _read_whole_file(self, path: Path) -> str | None:
        data = path.read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.skip("invalid_utf8", path, "", str(e))
            return None

    def _read_html(self, path: Path, source: str):
        html = path.read_bytes()  # trafilatura finds the page's own charset
        text = html_to_text(html)
        if text is None:
            self.skip("no_text", path, "", "no main text found in the page")
            return
        yield self.make_document(text, source, source, path, "")

    def _read_text(self, path: Path, source: str):
        text = self._read_whole_file(path)
        if text is not None:
            yield self.make_document(text, source, source, path, "")

    # -- the step ------------------------------------------------------------------------------
    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        if self.skip_log_dir:
            self.skip_log_dir.mkdir(parents=True, exist_ok=True)
            self._skip_log = open(self.skip_log_dir / f"rank-{rank:05d}.jsonl", "w")
        produced = 0
        try:
            for root, path in self.task_files(rank, world_size):
                source = path.relative_to(root).as_posix()
                for doc in self._records(file_format(path), path, source):
                    if doc is None:
                        continue
                    self.stat_update("documents")
                    self.update_doc_stats(doc)
                    yield doc
                    produced += 1
                    if 0 < self.limit <= produced:
                        return
                self.bytes_consumed += path.stat().st_size
        finally:
            if self._skip_log is not None:
                self._skip_log.close()
                self._skip_log = None
