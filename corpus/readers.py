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
import signal
import threading
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from corpus import CorpusError  # the package's one user-facing error
from corpus import storage
from corpus.splitting import BATCHES, WHOLE, Piece, plan_tasks
from corpus.stage import utf8_bytes

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet",)
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
WARC_SUFFIXES = (".warc", ".warc.gz")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
TEXT_SUFFIXES = (".txt", ".md")
ALL_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES + ARROW_SUFFIXES + WARC_SUFFIXES + HTML_SUFFIXES + TEXT_SUFFIXES
MAX_DOC_BYTES = 64 * 2**20  # protects memory only: far above any real document (a long book is ~5 MB of text)
# Memory bound of reading: a raw record (a JSON line, a text file, a WARC record) is read only up to twice the
# document limit (JSON escapes may double the size of a text); a longer one is skipped without being held in
# memory. An HTML page, parsed into a tree several times its size, only up to a quarter of the limit.
RECORD_BYTES_PER_DOC_BYTE = 2
HTML_BYTES_PER_DOC_BYTE = 0.25


def file_format(path: str | os.PathLike) -> str | None:
    name = str(path).lower()
    for fmt, suffixes in (
        ("jsonl", JSONL_SUFFIXES),
        ("parquet", PARQUET_SUFFIXES),
        ("arrow", ARROW_SUFFIXES),
        ("warc", WARC_SUFFIXES),
        ("html", HTML_SUFFIXES),
        ("text", TEXT_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return fmt
    return None


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def list_input_files(paths: list[str | os.PathLike]) -> list[storage.Entry]:
    """Every readable file under `paths` (local paths or URLs), in a deterministic order, with names unique
    among them (see `storage.unique_names`)."""
    found = []
    for given in map(str, paths):
        try:
            entries = storage.find_files(given)
        except storage.NotFound:
            continue
        found += [e for e in entries if file_format(e.path) and (e.given or not _hidden(e.relative))]
    return storage.unique_names(found)


def check_inputs(paths: list[str | os.PathLike]) -> list[str]:
    """Fail early, naming the path, when an input does not exist or holds nothing we can read."""
    if not paths:
        raise CorpusError("no input given: pass --input PATH [PATH ...]")
    for given in map(str, paths):
        try:
            entries = storage.find_files(given)
        except storage.NotFound:
            raise CorpusError(f"input not found: {given}") from None
        except (ImportError, ValueError) as e:  # no fsspec implementation for the protocol, or a malformed URL
            raise CorpusError(f"{given}: cannot open this URL ({e})") from None
        except Exception as e:  # unreachable server, no credentials, no permission (each file system its own error)
            raise CorpusError(f"{given}: cannot list it ({type(e).__name__}: {e})") from None
        if entries and entries[0].given and not file_format(entries[0].path):
            raise CorpusError(f"{given}: unknown format; expected one of {', '.join(ALL_SUFFIXES)}")
    files = [e.path for e in list_input_files(paths)]
    if not files:
        raise CorpusError(f"no readable files ({', '.join(ALL_SUFFIXES)}) under {', '.join(map(str, paths))}")
    return files


HTML_TIMEOUT_S = 60.0  # per page: trafilatura can take minutes on some pages; such a page is skipped


class ExtractionTimeout(BaseException):
    """A page's extraction ran out of time (a BaseException: trafilatura's own `except Exception` must not
    swallow it)."""


@contextmanager
def time_limit(seconds: float | None):
    """Raise ExtractionTimeout in the block after `seconds` of wall time (SIGALRM; in the main thread of a
    process, where datatrove runs its tasks; elsewhere, and with None or 0, no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise ExtractionTimeout(f"over {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def html_to_text(html: str | bytes) -> str | None:
    """Main text of an HTML page (trafilatura, deterministic settings), or None if it has none."""
    import trafilatura

    # deduplicate=False: trafilatura's dedup cache spans documents, which would make the output depend
    # on the order pages are read in (and so on the number of tasks)
    text = trafilatura.extract(
        html, favor_precision=True, include_comments=False, include_tables=True, deduplicate=False
    )
    return text.strip() if text and text.strip() else None


class RawDocumentReader(PipelineStep):
    """Documents of every input file. With several tasks the input is split below the file level
    (`corpus.splitting`): byte ranges of plain JSONL, Parquet row groups, Arrow record batches."""

    name = "📖 raw documents"
    type = "📖 - READER"

    def __init__(
        self,
        paths: list[str | os.PathLike],
        text_key: str = "text",
        id_key: str = "id",
        limit: int = -1,
        max_doc_bytes: int = MAX_DOC_BYTES,
        skip_log_dir: str | os.PathLike | None = None,
        html_timeout_s: float | None = HTML_TIMEOUT_S,
    ):
        super().__init__()
        self.paths = [str(p) for p in paths]
        self.text_key = text_key
        self.id_key = id_key
        self.limit = limit
        self.max_doc_bytes = max_doc_bytes
        self.html_timeout_s = html_timeout_s
        self.max_record_bytes = int(max_doc_bytes * RECORD_BYTES_PER_DOC_BYTE)
        self.max_html_bytes = int(max_doc_bytes * HTML_BYTES_PER_DOC_BYTE)
        self.skip_log_dir = Path(skip_log_dir) if skip_log_dir else None
        self.bytes_consumed = 0  # input bytes read so far by this task, for progress/ETA
        self._piece_base = 0  # bytes of the pieces this task finished
        self._plans: dict[int, list[list[Piece]]] = {}
        self._entries = None
        self._skip_log = None

    # -- which part of the input this task reads -------------------------------------------------
    def plan(self, world_size: int) -> list[list[Piece]]:
        """Every task's pieces. Computed once (call it before the pipeline is sent to the workers,
        so they do not each read the file metadata again) and kept."""
        if world_size not in self._plans:
            self._plans[world_size] = plan_tasks(self.entries(), file_format, world_size)
        return self._plans[world_size]

    def entries(self) -> list:
        """The input files (listed once)."""
        if self._entries is None:
            self._entries = list_input_files(self.paths)
        return self._entries

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    def task_pieces(self, rank: int = 0, world_size: int = 1) -> list[Piece]:
        return self.plan(world_size)[rank]

    def input_bytes(self, rank: int = 0, world_size: int = 1) -> int:
        return sum(p.nbytes for p in self.task_pieces(rank, world_size))

    def unsplit_compressed(self, rank: int = 0, world_size: int = 1) -> list[str]:
        """Compressed files this task must read whole (gzip cannot be entered in the middle)."""
        return [p.entry.relative for p in self.task_pieces(rank, world_size) if p.compressed]

    def _progress(self, piece: Piece, done: int) -> None:
        self.bytes_consumed = self._piece_base + min(max(done, 0), piece.nbytes)

    # -- skips ---------------------------------------------------------------------------------
    def skip(self, reason: str, path: str, where: str | Callable[[], str] = "", detail: str = "") -> None:
        """Count and log a skipped record. `where` may be a function: line numbers of a split JSONL file
        are counted only when first needed (see `_read_jsonl`)."""
        self.stat_update(f"skipped_{reason}")
        where = where() if callable(where) else where
        location = f"{path}:{where}" if where else str(path)
        logger.warning(f"skipped ({reason}) {location}{': ' + detail if detail else ''}")
        if self._skip_log is not None:
            self._skip_log.write(
                json.dumps({"file": str(path), "where": where, "reason": reason, "detail": detail[:300]}) + "\n"
            )

    def make_document(
        self, text, doc_id, source: str, path: str, where: str, extra: dict | None = None
    ) -> Document | None:
        if text is None:
            self.skip("missing_text", path, where, f"no {self.text_key!r} field")
            return None
        if not isinstance(text, str):
            self.skip("bad_text_type", path, where, f"{self.text_key!r} is {type(text).__name__}, not a string")
            return None
        if not text.strip():
            self.skip("empty", path, where)
            return None
        if len(text) > self.max_doc_bytes or utf8_bytes(text) > self.max_doc_bytes:
            self.skip("too_large", path, where, f"{utf8_bytes(text):,} bytes > max_doc_bytes {self.max_doc_bytes:,}")
            return None
        metadata = {k: v for k, v in (extra or {}).items() if v is not None}
        metadata["source"] = source
        return Document(text=text, id=str(doc_id), metadata=metadata)

    # -- formats -------------------------------------------------------------------------------
    def _fields(self, record: dict, source: str, index: int | Callable[[], int], path: str, where) -> Document | None:
        doc_id = record.get(self.id_key)
        if doc_id is None or doc_id == "":
            doc_id = f"{source}#{index() if callable(index) else index}"
        extra = {
            k: v
            for k, v in record.items()
            if k not in (self.text_key, self.id_key) and isinstance(v, (str, int, float, bool))
        }
        if "source" in extra:  # the record's own source field is kept, ours names the file
            extra["orig_source"] = extra.pop("source")
        return self.make_document(record.get(self.text_key), doc_id, source, path, where, extra)

    def _line_record(
        self, raw: bytes | None, size: int, line_no: Callable[[], int], source: str, path: str
    ) -> Document | None:
        if raw is None:  # longer than max_record_bytes: skipped unread
            self.skip(
                "too_large",
                path,
                lambda: f"line {line_no()}",
                f"a line of {size:,} bytes > {self.max_record_bytes:,} (twice max_doc_bytes)",
            )
            return None
        return self._jsonl_record(raw, line_no, source, path) if raw.strip() else None

    def _jsonl_record(self, raw: bytes, line_no: Callable[[], int], source: str, path: str) -> Document | None:
        where = lambda: f"line {line_no()}"  # noqa: E731
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.skip("invalid_utf8", path, where, str(e))
            return None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            self.skip("malformed_json", path, where, str(e))
            return None
        if not isinstance(record, dict):
            self.skip("malformed_json", path, where, f"a JSON {type(record).__name__}, not an object")
            return None
        return self._fields(record, source, lambda: line_no() - 1, path, where)

    def _read_jsonl(self, piece: Piece, source: str):
        path = piece.entry.path
        if piece.compressed:  # a gzip stream: read whole, from the start
            line_no = 0
            try:
                with storage.open_file(path) as raw_file, gzip.open(raw_file, "rb") as f:
                    while True:
                        raw, size = read_line(f, self.max_record_bytes)
                        if not size:
                            break
                        line_no += 1
                        self._progress(piece, raw_file.tell())
                        yield self._line_record(raw, size, lambda: line_no, source, path)
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
                self.skip("file_truncated", path, f"after line {line_no}", f"{type(e).__name__}: {e}")
            return
        with storage.open_file(path) as f:
            start = _first_line_start(f, piece.start)
            # Line numbers (and the default ids made from them) do not depend on the split: the lines
            # before the range are counted, but only when a number is first needed (a record without an
            # id, a bad line), so a range of good records with ids never reads the bytes before it.
            before: list[int] = []

            def line_no() -> int:
                if not before:
                    with storage.open_file(path) as g:
                        before.append(_count_lines_before(g, start))
                return before[0] + in_range

            f.seek(start)
            pos, in_range = start, 0
            while pos < piece.stop:
                raw, size = read_line(f, self.max_record_bytes)
                if not size:
                    break
                in_range += 1
                pos += size
                self._progress(piece, pos - piece.start)
                yield self._line_record(raw, size, line_no, source, path)

    def _open_batches(self, piece: Piece, f):
        """(rows in this piece's batches before each one, batch) for the piece's batches or row groups."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if piece.fmt == "parquet":
            pf = pq.ParquetFile(f)
            last = pf.metadata.num_row_groups if piece.kind == WHOLE else piece.stop
            first = 0 if piece.kind == WHOLE else piece.start
            row = sum(pf.metadata.row_group(g).num_rows for g in range(first))
            for g in range(first, last):
                for batch in pf.iter_batches(batch_size=1000, row_groups=[g]):
                    yield row, batch
                    row += batch.num_rows
                self._progress(piece, piece.nbytes * (g + 1 - first) // max(1, last - first))
            return
        try:
            reader = pa.ipc.open_file(f)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:  # not the file format: the stream format
            f.seek(0)
            batches = iter(pa.ipc.open_stream(f))
        first, last = (piece.start, piece.stop) if piece.kind == BATCHES else (0, None)
        row = 0
        for i, batch in enumerate(batches):
            if last is not None and i >= last:
                break
            if i >= first:
                yield row, batch
                done = piece.nbytes * (i + 1 - first) // (last - first) if last is not None else f.tell()
                self._progress(piece, done)
            row += batch.num_rows

    def _read_table(self, piece: Piece, source: str):
        import pyarrow as pa

        path = piece.entry.path
        index = 0
        try:
            with _open_table_file(path) as f:
                for index, batch in self._open_batches(piece, f):
                    if self.text_key not in batch.schema.names:
                        self.skip(
                            "missing_text",
                            path,
                            f"rows {index}-{index + batch.num_rows - 1}",
                            f"no {self.text_key!r} column (columns: {', '.join(batch.schema.names)})",
                        )
                        index += batch.num_rows
                        continue
                    for record in self._batch_records(batch, path, index):
                        if record is not None:
                            yield self._fields(record, source, index, path, f"row {index}")
                        index += 1
        except (pa.ArrowException, OSError, ValueError) as e:
            self.skip("file_corrupt", path, f"after row {index}", f"{type(e).__name__}: {e}")

    def _extract(self, html: bytes, path: str, where: str, url: str = "") -> str | None | bool:
        """`html_to_text` within `html_timeout_s`; False (skipped and counted) for a page that takes longer."""
        import trafilatura  # noqa: F401  (its first import is not the page's time)

        try:
            with time_limit(self.html_timeout_s):
                return html_to_text(html)
        except ExtractionTimeout:
            self.skip("html_timeout", path, where, f"text extraction took over {self.html_timeout_s:g}s {url}".rstrip())
            return False

    def _batch_records(self, batch, path: str, first_row: int):
        """The batch's rows as dicts; None for a row whose text is over max_doc_bytes (skipped unconverted)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = batch.column(batch.schema.get_field_index(self.text_key))
        sized = (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_binary(column.type)
        )
        sizes = pc.binary_length(column).to_pylist() if sized else [None] * batch.num_rows
        if not any(size and size > self.max_doc_bytes for size in sizes):
            yield from batch.to_pylist()
            return
        for i, size in enumerate(sizes):
            if size and size > self.max_doc_bytes:
                self.skip(
                    "too_large", path, f"row {first_row + i}", f"{size:,} bytes > max_doc_bytes {self.max_doc_bytes:,}"
                )
                yield None
            else:
                yield batch.slice(i, 1).to_pylist()[0]

    _read_parquet = _read_table
    _read_arrow = _read_table

    def _read_warc(self, piece: Piece, source: str):
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        path = piece.entry.path
        index = 0
        try:
            with storage.open_file(path) as f:
                for index, record in enumerate(ArchiveIterator(f)):
                    self._progress(piece, f.tell())
                    if record.rec_type != "response":
                        continue
                    content_type = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
                    if "html" not in content_type.lower():
                        self.skip("warc_not_html", path, f"record {index}", content_type or "no content type")
                        continue
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    html = record.content_stream().read(self.max_html_bytes + 1)
                    if len(html) > self.max_html_bytes:
                        self.skip(
                            "too_large",
                            path,
                            f"record {index}",
                            f"an HTML page over {self.max_html_bytes:,} bytes: {url}",
                        )
                        continue
                    text = self._extract(html, path, f"record {index}", url)
                    if text is False:
                        continue
                    if text is None:
                        self.skip("no_text", path, f"record {index}", f"no main text in {url}")
                        continue
                    doc_id = record.rec_headers.get_header("WARC-Record-ID") or f"{source}#{index}"
                    yield self.make_document(text, doc_id, source, path, f"record {index}", {"url": url})
        except (ArchiveLoadFailed, EOFError, zlib.error, OSError) as e:
            self.skip("file_truncated", path, f"after record {index}", f"{type(e).__name__}: {e}")

    def _read_html(self, piece: Piece, source: str):
        with storage.open_file(piece.entry.path) as f:
            html = f.read(self.max_html_bytes + 1)  # trafilatura finds the page's own charset
        if len(html) > self.max_html_bytes:
            self.skip("too_large", piece.entry.path, "", f"an HTML page over {self.max_html_bytes:,} bytes")
            return
        text = self._extract(html, piece.entry.path, "")
        if text is False:
            return
        if text is None:
            self.skip("no_text", piece.entry.path, "", "no main text found in the page")
            return
        yield self.make_document(text, source, source, piece.entry.path, "")

    def _read_text(self, piece: Piece, source: str):
        with storage.open_file(piece.entry.path) as f:
            data = f.read(self.max_doc_bytes + 1)
        if len(data) > self.max_doc_bytes:
            self.skip("too_large", piece.entry.path, "", f"over max_doc_bytes {self.max_doc_bytes:,}")
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.skip("invalid_utf8", piece.entry.path, "", str(e))
            return
        yield self.make_document(text, source, source, piece.entry.path, "")

    # -- the step ------------------------------------------------------------------------------
    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        if self.skip_log_dir:
            self.skip_log_dir.mkdir(parents=True, exist_ok=True)
            self._skip_log = open(self.skip_log_dir / f"rank-{rank:05d}.jsonl", "w")
        produced = 0
        self.bytes_consumed = self._piece_base = 0
        try:
            for piece in self.task_pieces(rank, world_size):
                source = piece.entry.relative
                for doc in getattr(self, f"_read_{piece.fmt}")(piece, source):
                    if doc is None:
                        continue
                    self.stat_update("documents")
                    self.update_doc_stats(doc)
                    yield doc
                    produced += 1
                    if 0 < self.limit <= produced:
                        return
                self._piece_base += piece.nbytes
                self.bytes_consumed = self._piece_base
        finally:
            if self._skip_log is not None:
                self._skip_log.close()
                self._skip_log = None


def _open_table_file(path: str):
    """Parquet / Arrow files: memory-mapped when local (no copy), through fsspec when remote."""
    import pyarrow as pa

    return storage.open_file(path) if storage.is_remote(path) else pa.memory_map(storage.local_path(path), "r")


def read_line(f, limit: int, chunk: int = 1 << 20) -> tuple[bytes | None, int]:
    """The next line of binary file `f` and its size in bytes: (line, size) for a line of at most `limit`
    bytes (newline not counted), (None, size) for a longer one, read past in chunks without keeping it;
    (b"", 0) at the end of the file. Memory: at most `limit` bytes, whatever the line's length."""
    line = f.readline(limit + 1)
    if len(line) <= limit or line.endswith(b"\n"):
        return line, len(line)
    size = len(line)
    del line
    while True:
        part = f.readline(chunk)
        size += len(part)
        if not part or part.endswith(b"\n"):
            return None, size


def _first_line_start(f, pos: int) -> int:
    """The first line start at or after byte `pos` (a line starts at 0 or right after a newline)."""
    if pos == 0:
        return 0
    f.seek(pos - 1)
    while True:  # up to and including the newline that ends the line holding byte pos-1, in bounded reads
        part = f.readline(1 << 20)
        if not part or part.endswith(b"\n"):
            return f.tell()


def _count_lines_before(f, pos: int, block: int = 1 << 20) -> int:
    """Newlines in bytes [0, pos): the number of the line starting at `pos`, minus one."""
    f.seek(0)
    count = 0
    while pos > 0:
        chunk = f.read(min(block, pos))
        if not chunk:
            break
        count += chunk.count(b"\n")
        pos -= len(chunk)
    return count
