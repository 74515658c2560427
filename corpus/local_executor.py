"""datatrove's local executor, with a full disk said in one line.

When the disk fills, a task's failure is logged by datatrove (with its traceback) and its log file cannot be
written either, so loguru prints a "Logging error" block for each line it could not write: hundreds of lines before
the one that matters (`use_output` ends the run with one line naming the full folder and saying that the same
command resumes). While a task runs, its standard error goes through `FullDiskFilter`, which leaves out exactly
those messages and passes everything else through unchanged.
"""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager

from datatrove.executor import LocalPipelineExecutor
from datatrove.utils.logging import setup_default_logger

FULL_DISK_MARKS = tuple(f"[Errno {code}]" for code in (errno.ENOSPC, errno.EDQUOT)) + tuple(
    os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT)
)
BLOCK_START = "--- Logging error in Loguru Handler"
BLOCK_END = "--- End of logging error ---"


def says_disk_full(text: str) -> bool:
    return any(mark in text for mark in FULL_DISK_MARKS)


class FullDiskFilter:
    """A text stream in front of `stream` that drops the messages a full disk causes: a logged message that names
    it (with its traceback), and loguru's "Logging error" blocks whose error is the full disk. A block is held
    until its end line, so a block about anything else passes whole."""

    def __init__(self, stream):
        self.stream = stream
        self.block: list[str] | None = None

    def write(self, text: str) -> int:
        if self.block is not None:
            self.block.append(text)
            if BLOCK_END in text:
                block, self.block = "".join(self.block), None
                if not says_disk_full(block):
                    self.stream.write(block)
            return len(text)
        if text.startswith(BLOCK_START):
            self.block = [text]
            return len(text)
        if says_disk_full(text):
            return len(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextmanager
def full_disk_filtered_stderr():
    real = sys.stderr
    sys.stderr = FullDiskFilter(real)
    try:
        yield
    finally:
        if isinstance(sys.stderr, FullDiskFilter) and sys.stderr.block:
            real.write("".join(sys.stderr.block))  # an unfinished block: nothing is held back for good
        sys.stderr = real
        setup_default_logger()  # datatrove's logger after a task, on the real stream again


class LocalExecutor(LocalPipelineExecutor):
    def _run_for_rank(self, rank: int, local_rank: int = 0):
        with full_disk_filtered_stderr():
            return super()._run_for_rank(rank, local_rank)
