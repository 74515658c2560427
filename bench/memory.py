"""Peak resident memory of a command and all its child processes, sampled every 50 ms."""

from __future__ import annotations

import subprocess
import time

import psutil


def peak_rss(cmd: list[str], **popen_kwargs) -> tuple[float, float, int]:
    """(peak RSS of the process tree in MB, wall seconds, exit code)."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen_kwargs)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root] + root.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    return peak / 2**20, time.time() - start, proc.returncode
