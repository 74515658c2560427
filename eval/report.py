"""What the three studies (ablation, compare, kd-study) share: resumable units, statistics, tables, plots."""
from __future__ import annotations

import json
import math
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from safe_output import StageFailed, atomic_json


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """The result of one unit of a study: computed once, then read back (so a study resumes)."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    atomic_json(path, result)
    return result


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


def summarize(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


def fmt(stat: dict, digits: int = 2) -> str:
    if stat["mean"] is None:
        return "-"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def differs(a: dict, b: dict) -> bool | None:
    """Is the gap between two means larger than their spreads combined? None: one seed, can't tell."""
    if a["n"] < 2 or b["n"] < 2:
        return None
    return abs(a["mean"] - b["mean"]) > a["std"] + b["std"]


def noise_sentence(name_a: str, a: dict, name_b: str, b: dict, metric: str, lower_is_better: bool) -> str:
    verdict = differs(a, b)
    if verdict is None:
        return f"- {metric}: {name_a} {fmt(a)} vs {name_b} {fmt(b)}: one seed each, so the spread is unknown."
    if not verdict:
        return f"- {metric}: {name_a} {fmt(a)} vs {name_b} {fmt(b)}: within noise (the gap is smaller than the spread over seeds)."
    better = name_a if (a["mean"] < b["mean"]) == lower_is_better else name_b
    return f"- {metric}: {name_a} {fmt(a)} vs {name_b} {fmt(b)}: {better} is better, by more than the spread over seeds."


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def read_curve(run_dir: Path, x: str = "tokens") -> list[tuple[float, float]]:
    """(x, validation loss) of a training run; x is `tokens` seen or `elapsed_s` of training."""
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines() if l]
    return [(l[x], l["val_loss"]) for l in lines if "val_loss" in l]


def plot_curves(curves: dict[str, list[list[tuple[float, float]]]], path: Path, title: str, xlabel: str = "tokens seen") -> None:
    """Validation loss against tokens seen (or time): one colour per variant, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (label, runs) in enumerate(curves.items()):
        color = f"C{i}"
        for j, curve in enumerate(runs):
            if curve:
                xs, ys = zip(*curve)
                ax.plot(xs, ys, color=color, alpha=0.85, lw=1.5, label=label if j == 0 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation loss (own held-out split)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bars(groups: dict[str, dict[str, dict]], path: Path, title: str, ylabel: str) -> None:
    """Grouped bars with error bars: groups[group][series] = summarize(...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(groups)), 4.5))
    for i, name in enumerate(series):
        xs = [gi + i * width for gi in range(len(groups))]
        means = [groups[g].get(name, {}).get("mean") or 0.0 for g in groups]
        errs = [groups[g].get(name, {}).get("std") or 0.0 for g in groups]
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=name, color=f"C{i}")
    ax.set_xticks([gi + width * (len(series) - 1) / 2 for gi in range(len(groups))])
    ax.set_xticklabels(list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def exp_or_none(x: float | None) -> float | None:
    return math.exp(x) if x is not None else None
