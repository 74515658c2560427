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


def unit_path(root: Path, name: str, key: dict, suffix: str = "") -> tuple[Path, str]:
    """(where a unit of work lives, its fingerprint): the name plus a short fingerprint of `key`, which holds
    every setting of the unit and the fingerprints of its inputs. Units made under other settings or from
    other inputs live beside it under other names, so a study never reuses one for another setting."""
    from train.fingerprint import fingerprint, short

    fp = fingerprint(key)
    return root / f"{name}-{short(fp)}{suffix}", fp


def code_version() -> dict:
    """The code that ran a study: package version, git commit (with uncommitted changes flagged) and a hash of
    the project's Python sources, so a number can be traced to the code behind it, not only to its settings."""
    from importlib.metadata import PackageNotFoundError, version

    from train.fingerprint import file_sha256, fingerprint

    root = Path(__file__).resolve().parents[1]
    sources = sorted(p for pkg in ("corpus", "train", "eval", "safe_output") for p in (root / pkg).glob("*.py"))
    record = {"source_fingerprint": fingerprint([[str(p.relative_to(root)), file_sha256(p)] for p in sources])}
    try:
        record["package_version"] = version("gpt2-compress")
    except PackageNotFoundError:
        pass
    git = ["git", "-C", str(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", "corpus", "train", "eval",
                                    "safe_output"], capture_output=True, text=True, timeout=10).stdout.strip()
            record["git_commit"] = commit.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass  # not a git checkout (an installed package): the source fingerprint stands for the code
    return record


def units_section(units: dict[str, dict], code: dict | None = None) -> list[str]:
    """The report's provenance table: every unit behind the numbers, with its fingerprint and folder."""
    rows = [[f"`{name}`", u["kind"], f"`{u['fingerprint']}`", f"`{u['path']}`"] for name, u in units.items()]
    code_line = ("Code: " + ", ".join(f"{k.replace('_', ' ')} `{v}`" for k, v in code.items()) + ".") if code else ""
    return ["## Provenance", "",
            "Every unit behind the numbers above, keyed by the fingerprint of its settings and its inputs' fingerprints "
            "(raw input -> clean corpus -> token shards -> run -> evaluation). A changed setting or input gives a new "
            "fingerprint and a new unit beside the old one; an unchanged unit is reused.", "",
            markdown_table(["unit", "kind", "fingerprint", "where"], rows), "", *([code_line, ""] if code_line else [])]


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """The result of one unit of a study: computed once, then read back (so a study resumes).
    `path` names the unit by its fingerprint (`unit_path`), so a reused result is one made under the same settings."""
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


# two-sided 95% quantiles of Student's t by degrees of freedom, for when scipy is not installed
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980, math.inf: 1.960}


def table_t975(df: float) -> float:
    """The table, interpolated linearly in 1/df (exact at its entries)."""
    df = max(df, 1.0)
    keys = sorted(_T975)
    lo = max(k for k in keys if k <= df)
    hi = min(k for k in keys if k >= df)
    if lo == hi:
        return _T975[lo]
    w = (1 / lo - 1 / df) / (1 / lo - 1 / hi)
    return _T975[lo] + w * (_T975[hi] - _T975[lo])


def t_quantile_975(df: float) -> float:
    try:
        from scipy.stats import t
    except ImportError:
        return table_t975(df)
    return float(t.ppf(0.975, df))


def welch_interval(a: dict, b: dict) -> dict | None:
    """Mean difference a - b with its 95% confidence interval (Welch's t over seeds). None: under 2 seeds a side."""
    if a["n"] < 2 or b["n"] < 2:
        return None
    va, vb = a["std"] ** 2 / a["n"], b["std"] ** 2 / b["n"]
    diff = a["mean"] - b["mean"]
    se = math.sqrt(va + vb)
    if se == 0:
        return {"diff": diff, "low": diff, "high": diff, "df": None}
    df = (va + vb) ** 2 / (va ** 2 / (a["n"] - 1) + vb ** 2 / (b["n"] - 1))
    half = t_quantile_975(df) * se
    return {"diff": diff, "low": diff - half, "high": diff + half, "df": df}


def noise_sentence(name_a: str, a: dict, name_b: str, b: dict, metric: str, lower_is_better: bool, digits: int = 2) -> str:
    """One comparison: both means, the mean difference with its 95% CI, and whether the CI excludes 0."""
    head = f"- {metric}: {name_a} {fmt(a, digits)} vs {name_b} {fmt(b, digits)}"
    ci = welch_interval(a, b)
    if ci is None:
        return f"{head}: fewer than 2 seeds on a side, so no confidence interval (run 3 or more seeds)."
    interval = (f"difference {ci['diff']:+.{digits}f}, 95% CI [{ci['low']:+.{digits}f}, {ci['high']:+.{digits}f}] "
                f"(Welch's t, {a['n']} vs {b['n']} seeds)")
    if ci["low"] <= 0 <= ci["high"]:
        return f"{head}: {interval}: the interval includes 0, so no real difference is shown."
    better = name_a if (ci["diff"] < 0) == lower_is_better else name_b
    return f"{head}: {interval}: real (the interval excludes 0); {better} is better."


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
