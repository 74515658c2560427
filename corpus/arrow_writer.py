"""Bounded Arrow shards: the on-disk format of a clean corpus, what `train tokenize` reads.

Every shard, kept or removed, has the same fixed schema, so readers never guess:

    id, text, source, language (null ok), language_score (null ok), metadata (JSON of the rest)

Files are Arrow IPC *stream* format (what `datasets` writes; pyarrow memory-maps it), written
under a temporary name and renamed when closed, so a killed task never leaves a valid-looking
partial shard. A task's files are named by its rank (`rank-00003-00001.arrow`): a re-run of the
task writes the same names with the same content (its input is the same), which is what makes
resume exact.

Both classes are ordinary datatrove steps:

    from corpus.arrow_writer import ArrowShardWriter
    pipeline = [JsonlReader("raw/"), LanguageFilter(...), ArrowShardWriter("out/")]
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.stage import utf8_bytes

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
        ("metadata", pa.string()),
    ]
)
_COLUMNS = ("id", "text", "source", "language", "language_score")


def document_to_row(doc: Document) -> dict:
    meta = dict(doc.metadata)
    source = meta.pop("source", "")
    language = meta.pop("language", None)
    score = meta.pop("language_score", None)
    return {
        "id": str(doc.id),
        "text": doc.text,
        "source": str(source) if source is not None else "",
        "language": None if language is None else str(language),
        "language_score": None if score is None else float(score),
        "metadata": json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str),
    }


def row_to_document(row: dict) -> Document:
    meta = json.loads(row.get("metadata") or "{}")
    meta["source"] = row.get("source", "")
    for key in ("language", "language_score"):
        if row.get(key) is not None:
            meta[key] = row[key]
    return Document(text=row["text"], id=row["id"], metadata=meta)


def shard_name(rank: int, part: int) -> str:
    return f"rank-{rank:05d}-{part:05d}.arrow"


class ArrowShardWriter(PipelineStep):
    """Write documents to `output_folder` as bounded Arrow stream shards, passing them on.

    Works as a pipeline step and as a filter's `exclusion_writer` (`with writer: writer.write(doc, rank)`).
    """

    name = "🏹 Arrow shards"
    type = "💽 - WRITER"

    def __init__(self, output_folder: str | os.PathLike, max_shard_bytes: int = 128 * 2**20, batch_rows: int = 1000):
        super().__init__()
        self.output_folder = Path(output_folder)
        self.max_shard_bytes = max_shard_bytes
        self.batch_rows = batch_rows
        self._reset()

    def _reset(self):
        self._rank = None
        self._part = 0
        self._sink = None
        self._writer = None
        self._tmp_path = None
        self._rows: list[dict] = []
        self._buffered_bytes = 0
        self._shard_bytes = 0

    # -- writing ---------------------------------------------------------------------------
    def write(self, doc: Document, rank: int = 0) -> None:
        if self._rank is None:
            self._rank = rank
        row = document_to_row(doc)
        self._rows.append(row)
        self._buffered_bytes += utf8_bytes(row["text"]) + len(row["metadata"]) + len(row["id"]) + len(row["source"])
        if self._shard_bytes + self._buffered_bytes >= self.max_shard_bytes:
            self._flush()
            self._close_shard()  # a shard ends with the document that reaches the bound
        elif len(self._rows) >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        batch = pa.RecordBatch.from_pylist(self._rows, schema=SCHEMA)
        self._rows = []
        self._buffered_bytes = 0
        if self._writer is None:
            self.output_folder.mkdir(parents=True, exist_ok=True)
            final = self.output_folder / shard_name(self._rank, self._part)
            self._tmp_path = final.with_suffix(".arrow.tmp")
            self._sink = pa.OSFile(str(self._tmp_path), "wb")
            self._writer = pa.ipc.new_stream(self._sink, SCHEMA)
        self._writer.write_batch(batch)
        self._shard_bytes += batch.nbytes

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        os.replace(self._tmp_path, self._tmp_path.with_suffix(""))  # drop ".tmp": the shard is complete
        self._writer = self._sink = self._tmp_path = None
        self._part += 1
        self._shard_bytes = 0

    def close(self) -> None:
        self._flush()
        self._close_shard()
        self._reset()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        # on error the .tmp file stays behind unrenamed: it is never read, and the re-run overwrites it

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self:
            for doc in data:
                with self.track_time():
                    self.write(doc, rank)
                    self.stat_update("documents")
                yield doc


def rank_shards(folder: str | os.PathLike, rank: int) -> list[Path]:
    """The finished shards one task wrote, in the order it wrote them."""
    return sorted(Path(folder).glob(f"rank-{rank:05d}-*.arrow"))


def iter_shard_rows(path: str | os.PathLike, columns: list[str] | None = None):
    """Yield rows (dicts) of one shard, batch by batch (memory stays flat)."""
    with pa.memory_map(str(path), "r") as source:
        reader = pa.ipc.open_stream(source)
        for batch in reader:
            if columns:
                batch = batch.select(columns)
            yield from batch.to_pylist()


class ArrowShardReader(PipelineStep):
    """Read back what `ArrowShardWriter` wrote: task `rank` reads exactly the shards that rank wrote,
    so per-task document indices line up between two passes over the same data (MinHash needs that).
    With `all_ranks`, every task's shards in rank order (for a single task that must see everything)."""

    name = "🏹 Arrow shards reader"
    type = "📖 - READER"

    def __init__(self, folder: str | os.PathLike, all_ranks: bool = False):
        super().__init__()
        self.folder = Path(folder)
        self.all_ranks = all_ranks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        paths = sorted(self.folder.glob("rank-*.arrow")) if self.all_ranks else rank_shards(self.folder, rank)
        for path in paths:
            for row in iter_shard_rows(path):
                self.stat_update("documents")
                yield row_to_document(row)


def group_shards(paths: list[Path], max_bytes: int) -> list[list[Path]]:
    """Consecutive runs of `paths` whose files together stay within `max_bytes` (a file larger than that on its
    own is a run of one). Many small task outputs become few bounded shards, in the same order."""
    groups: list[list[Path]] = []
    size = 0
    for path in paths:
        n = path.stat().st_size
        if not groups or size + n > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(path)
        size += n
    return groups


def join_shards(sources: list[Path], dest: Path) -> None:
    """`sources` (task files this run wrote) one after the other as the shard `dest`, then the sources removed.
    One source is renamed; several are copied batch by batch (memory stays flat) under a temporary name, renamed
    when complete. A re-run after a kill finishes it."""
    if len(sources) == 1:
        if sources[0].exists():
            os.replace(sources[0], dest)
        return
    if not dest.exists():
        tmp = dest.with_suffix(".arrow.tmp")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as writer:
            for src in sources:
                with pa.memory_map(str(src), "r") as source:
                    for batch in pa.ipc.open_stream(source):
                        writer.write_batch(batch)
        os.replace(tmp, dest)
    for src in sources:
        src.unlink(missing_ok=True)


def table_rows_bytes(path: str | os.PathLike) -> tuple[int, int]:
    """(rows, UTF-8 bytes of text) of one shard."""
    rows = nbytes = 0
    with pa.memory_map(str(path), "r") as source:
        for batch in pa.ipc.open_stream(source):
            rows += batch.num_rows
            nbytes += pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0
    return rows, nbytes
