"""Running the project's own commands as steps of a study, and reading what a training run recorded."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from safe_output import StageFailed


def run_command(cmd: list[str], log: Path) -> float:
    """Run a CLI step (its progress goes to the terminal and to `log`); returns wall seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"$ {shlex.join(cmd)}", flush=True)
    start = time.time()
    with open(log, "a") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            f.write(line)
            if line.startswith(("step ", "validation", "token shards", "tokenizer", "  tokenize")):
                print("   " + line.rstrip(), flush=True)
        if proc.wait() != 0:
            raise StageFailed(f"a step failed (exit {proc.returncode}); read {log} (command: {shlex.join(cmd)})")
    return time.time() - start


def python_module(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def read_curve(run_dir: Path, x: str = "tokens") -> list[tuple[float, float]]:
    """(x, validation loss) of a training run; x is `tokens` seen or `elapsed_s` of training."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return [(record[x], record["val_loss"]) for record in lines if "val_loss" in record]
