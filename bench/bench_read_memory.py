"""Peak memory of reading an oversize record: it stays within a small multiple of the 64 MiB document limit.

A JSON line (plain or gzip), a plain-text file and an Arrow row far over the limit are each given to
`corpus-clean --preset none --workers 1` (reading happens in its main process) between two small documents;
the oversize record is skipped (counted as too_large) without being held in memory. The peak RSS of the
run (`getrusage` of the finished child) is printed beside the file's size and the peak of a run on a small
file of the same kind, the baseline.

    python -m bench bench_read_memory
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MIB = 2**20
SMALL = [
    {"id": "first", "text": "A small document before the long one. " * 20},
    {"id": "last", "text": "A small document after the long one. " * 20},
]


def write_long_line_jsonl(path: Path, line_bytes: int) -> Path:
    """Small record, one record of about `line_bytes` bytes, small record; `.gz` in the name: gzip (a few
    hundred KB for hundreds of MB: the text repeats). Written in 1 MiB pieces."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(json.dumps(SMALL[0]).encode() + b"\n")
        f.write(b'{"id": "long", "text": "')
        piece = b"x" * MIB
        for _ in range(line_bytes // MIB):
            f.write(piece)
        f.write(b'"}\n')
        f.write(json.dumps(SMALL[1]).encode() + b"\n")
    return path


def write_long_text(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(b"word " * (MIB // 5) + b"\n")
    return path


def write_long_arrow(path: Path, size: int) -> Path:
    import pyarrow as pa

    table = pa.table({"id": ["first", "long", "last"], "text": [SMALL[0]["text"], "x" * size, SMALL[1]["text"]]})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def write_long_parquet(path: Path, size: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": ["first", "long", "last"], "text": [SMALL[0]["text"], "x" * size, SMALL[1]["text"]]})
    pq.write_table(table, path, compression="zstd")
    return path


def peak_rss_mb(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Peak RSS (MB) of `cmd`'s largest process, measured by the kernel (getrusage of a child that ended),
    in a fresh Python process so that no earlier child counts."""
    probe = (
        "import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode, r.stderr[-2000:]]))"
    )
    done = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    kib, code, stderr = json.loads(done.stdout)
    return kib / 1024, subprocess.CompletedProcess(cmd, code, "", stderr)


def clean_cmd(src: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "corpus.cli",
        "--input",
        str(src),
        "--output",
        str(out),
        "--preset",
        "none",
        "--workers",
        "1",
    ]


KINDS = {  # name: (file name, writer)
    "jsonl": ("long.jsonl", write_long_line_jsonl),
    "jsonl.gz": ("long.jsonl.gz", write_long_line_jsonl),
    "txt": ("long.txt", write_long_text),
    "arrow": ("long.arrow", write_long_arrow),
    "parquet": ("long.parquet", write_long_parquet),
}


def main(out_dir: Path, sizes_mb: tuple[int, ...] = (150, 300)) -> dict:
    results = {}
    print(f"{'input':<10}{'record MB':>10}{'file MB':>10}{'peak RSS MB':>13}{'small-file RSS MB':>19}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind, (name, write) in KINDS.items():
            small = write(tmp / f"small-{name}", MIB)
            base, _ = peak_rss_mb(clean_cmd(small, tmp / f"out-small-{kind}"))
            for mb in sizes_mb:
                src = write(tmp / f"{mb}-{name}", mb * MIB)
                peak, run = peak_rss_mb(clean_cmd(src, tmp / f"out-{mb}-{kind}"))
                file_mb = src.stat().st_size / MIB
                results[f"{kind} {mb} MB"] = {
                    "file_mb": round(file_mb, 2),
                    "peak_rss_mb": round(peak),
                    "baseline_rss_mb": round(base),
                    "exit": run.returncode,
                }
                print(f"{kind:<10}{mb:>10}{file_mb:>10.1f}{peak:>13.0f}{base:>19.0f}")
                src.unlink()
    return results


if __name__ == "__main__":
    main(Path("."))
