"""One run per output folder at a time.

The lock is `fcntl.flock` on `<folder>/.lock`: the kernel releases it when the holder exits, even after
SIGKILL, so a stale lock never needs cleaning. The file names the holder (pid, host, command), so a second
run can say which run it is waiting for.
"""
from __future__ import annotations

import fcntl
import os
import shlex
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from safe_output.errors import UserError

LOCK = ".lock"  # in the output folder; kept when the folder is emptied for --overwrite


@contextmanager
def output_lock(folder: str | os.PathLike, wait: bool = False, command: str | None = None) -> Iterator[None]:
    """Hold the lock of `folder` (an output folder already claimed) for the duration of the block. Another
    holder: raise UserError naming it, or with `wait`, block until it is done."""
    path = Path(folder) / LOCK
    f = open(path, "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            if not wait:
                raise UserError(f"{folder} is in use by {holder}; wait for that run to end, or pass --wait") from None
            print(f"waiting for {holder} to finish with {folder} ...", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        command = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')} ({command})\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
    finally:
        f.close()  # closing the last descriptor releases the lock
