"""The studies' plots: validation-loss curves and grouped bars with error bars, as PNG files."""
from __future__ import annotations

from pathlib import Path


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


def plot_bands(bands: dict[str, list[tuple[float, float, float, float]]], path: Path, title: str, ylabel: str,
               xlabel: str = "tokens seen") -> None:
    """One line per arm (the mean over seeds) with its shaded 95% band: bands[arm] = [(x, mean, low, high), ...]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (label, band) in enumerate(bands.items()):
        if not band:
            continue
        xs, means, lows, highs = zip(*band)
        ax.plot(xs, means, color=f"C{i % 10}", lw=1.6, label=label, ls="-" if i < 10 else "--")
        ax.fill_between(xs, lows, highs, color=f"C{i % 10}", alpha=0.18, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2 if len(bands) > 6 else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
