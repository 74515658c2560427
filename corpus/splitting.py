"""Split the input into `n` tasks below the file level, so one large file keeps every core busy.

All input files are laid end to end and the total is cut into `n` equal byte ranges; task `t` reads
what lies in range `t`:

- plain JSON Lines: the byte range itself, moved to line starts (a line belongs to the range its
  first byte is in), so no line is read twice or lost;
- Parquet: whole row groups (a row group belongs to the range its first byte is in);
- Arrow IPC: whole record batches (file format always; stream format when the file is local);
- everything else as whole files, in the task where the file starts: compressed streams (`.gz`
  JSONL or WARC) cannot be entered in the middle, and HTML/text files are one document each.

Task `t`'s pieces all come before task `t+1`'s in the input order, so "task, then position in
task" is the input order whatever `n` is: deduplication, which keeps the first copy by that order,
keeps the same documents with 1, 2 or 64 tasks. The plan depends only on the files' sizes and
metadata, so every task (and every executor) computes the same one.

Documents are named as without splitting: a record's own id, else `file#line-index` (JSONL) or
`file#row-index` (Parquet/Arrow). A JSONL task counts the lines before its range only when it first
needs a number (a record without an id, or a bad line to report), so records with ids in a remote
file cost no extra reads.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from corpus import storage

WHOLE = "whole"  # piece kinds: WHOLE file, byte RANGE (JSONL), row GROUPS (Parquet), record BATCHES (Arrow)
RANGE = "range"
GROUPS = "groups"
BATCHES = "batches"


@dataclass(frozen=True)
class Piece:
    entry: storage.Entry
    fmt: str
    kind: str = WHOLE
    start: int = 0  # RANGE: first byte; GROUPS / BATCHES: first row group / batch
    stop: int = 0  # exclusive
    nbytes: int = 0  # input bytes this piece stands for (progress and ETA)

    @property
    def compressed(self) -> bool:
        return self.entry.path.lower().endswith(".gz")


def splittable_units(entry: storage.Entry, fmt: str) -> tuple[str, list[int]] | None:
    """(kind, start offset of each unit in the file) for Parquet / Arrow files, None if not splittable."""
    try:
        if fmt == "parquet":
            return GROUPS, _parquet_group_offsets(entry)
        if fmt == "arrow":
            n = _arrow_batch_count(entry)
            return (BATCHES, [entry.size * i // n for i in range(n)]) if n else None
    except Exception:  # a corrupt file: read whole, the reader skips it with a clear message
        return None
    return None


def _parquet_group_offsets(entry: storage.Entry) -> list[int]:
    import pyarrow.parquet as pq

    with storage.open_file(entry.path) as f:
        meta = pq.ParquetFile(f).metadata
    offsets, pos = [], 4  # after the "PAR1" magic
    for i in range(meta.num_row_groups):
        offsets.append(pos)
        group = meta.row_group(i)
        pos += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
    return offsets


def _arrow_batch_count(entry: storage.Entry) -> int:
    import pyarrow as pa

    if storage.is_remote(entry.path):
        with storage.open_file(entry.path) as f:
            return pa.ipc.open_file(f).num_record_batches  # a stream (ArrowInvalid): read whole
    with pa.memory_map(storage.local_path(entry.path), "r") as source:
        try:
            return pa.ipc.open_file(source).num_record_batches
        except pa.ArrowInvalid:
            source.seek(0)
            return sum(1 for _ in pa.ipc.open_stream(source))  # memory-mapped: no data is copied


def plan_tasks(entries: list[storage.Entry], fmt_of, n: int) -> list[list[Piece]]:
    """The pieces of each of `n` tasks (see the module docstring)."""
    total = sum(e.size for e in entries)
    bounds = [total * t // n for t in range(n)]  # task t covers [bounds[t], bounds[t+1])

    def owner(x: int) -> int:
        return bisect.bisect_right(bounds, x) - 1

    plan: list[list[Piece]] = [[] for _ in range(n)]
    offset = 0
    for e in entries:
        fmt = fmt_of(e.path)
        end = offset + e.size
        if fmt == "jsonl" and not e.path.lower().endswith(".gz") and n > 1:
            for t in range(owner(offset), owner(max(offset, end - 1)) + 1):
                lo, hi = max(offset, bounds[t]), min(end, bounds[t + 1] if t + 1 < n else end)
                if lo < hi:
                    plan[t].append(Piece(e, fmt, RANGE, lo - offset, hi - offset, hi - lo))
        else:
            units = splittable_units(e, fmt) if n > 1 else None
            if not units:
                plan[owner(offset)].append(Piece(e, fmt, WHOLE, 0, e.size, e.size))
            else:
                kind, starts = units
                edges = starts[1:] + [e.size]
                first = 0
                for i in range(1, len(starts) + 1):  # runs of consecutive units with one owner
                    if i == len(starts) or owner(offset + starts[i]) != owner(offset + starts[first]):
                        begin = 0 if first == 0 else starts[first]
                        plan[owner(offset + starts[first])].append(Piece(e, fmt, kind, first, i, edges[i - 1] - begin))
                        first = i
        offset = end
    return plan
