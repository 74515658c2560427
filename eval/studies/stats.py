"""Statistics over seeds and items: summaries, the confidence interval of a difference between two settings, its
power, paired comparisons on shared items, and curve bands.

- `welch_interval`: the mean difference of two arms over seeds with its 95% interval (Welch's t).
- `min_detectable_difference`: the smallest true difference a two-sided Welch test at `alpha` finds with
  probability `power`, given each arm's seed-level spread; `seeds_for_half_width`: how many seeds per arm bring
  the interval down to a target.
- `paired_bootstrap`: arms scored on the same items (WikiText windows, held-out blocks): the difference of their
  perplexities, resampling items (the same resample for both arms), so item difficulty cancels.
- `mcnemar`: two classifiers on the same examples: the exact test on the examples where they disagree.
- `curve_band`: validation curves of several seeds -> mean and 95% band per point.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy.stats import t


def summarize(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
        "values": values,
    }


def welch_interval(a: dict, b: dict) -> dict | None:
    """Mean difference a - b with its 95% confidence interval (Welch's t over seeds). None: under 2 seeds a side."""
    if a["n"] < 2 or b["n"] < 2:
        return None
    va, vb = a["std"] ** 2 / a["n"], b["std"] ** 2 / b["n"]
    diff = a["mean"] - b["mean"]
    se = math.sqrt(va + vb)
    if se == 0:
        return {"diff": diff, "low": diff, "high": diff, "df": None}
    df = (va + vb) ** 2 / (va**2 / (a["n"] - 1) + vb**2 / (b["n"] - 1))
    half = float(t.ppf(0.975, df)) * se
    return {"diff": diff, "low": diff - half, "high": diff + half, "df": df}


ALPHA = 0.05
POWER = 0.8


def _t(q: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


def welch_df(std_a: float, n_a: int, std_b: float, n_b: int) -> float:
    va, vb = std_a**2 / n_a, std_b**2 / n_b
    if va + vb == 0:
        return float(n_a + n_b - 2)
    return (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))


def min_detectable_difference(
    std_a: float, n_a: int, std_b: float, n_b: int, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """(t_{1-alpha/2} + t_{power}) x the standard error of the difference, with Welch's degrees of freedom.
    None: fewer than 2 seeds on a side (no spread to reason from)."""
    if n_a < 2 or n_b < 2:
        return None
    se = math.sqrt(std_a**2 / n_a + std_b**2 / n_b)
    df = welch_df(std_a, n_a, std_b, n_b)
    return (_t(1 - alpha / 2, df) + _t(power, df)) * se


def half_width(std_a: float, n_a: int, std_b: float, n_b: int, alpha: float = ALPHA) -> float | None:
    """Half the width of the Welch interval of the difference of means."""
    if n_a < 2 or n_b < 2:
        return None
    se = math.sqrt(std_a**2 / n_a + std_b**2 / n_b)
    return _t(1 - alpha / 2, welch_df(std_a, n_a, std_b, n_b)) * se


def seeds_for_half_width(
    std_a: float, std_b: float, target: float, alpha: float = ALPHA, most: int = 10_000
) -> int | None:
    """The fewest seeds per arm (the same number on both sides) whose interval half-width is at most `target`,
    if the spread stays what it is. None: not within `most` seeds."""
    for n in range(2, most + 1):
        hw = half_width(std_a, n, std_b, n, alpha)
        if hw is not None and hw <= target:
            return n
    return None


def items_for_half_width(current_half: float, items: int, target: float) -> int:
    """Items needed for a paired interval of half-width `target`: a bootstrap interval narrows as 1/sqrt(items)."""
    if current_half <= target:
        return items
    return math.ceil(items * (current_half / target) ** 2)


def _ppl(loss: np.ndarray, count: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.exp((weights @ loss) / (weights @ count))


def paired_bootstrap(
    loss_a: list[float],
    loss_b: list[float],
    counts: list[int],
    resamples: int = 2000,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict:
    """Perplexity difference a - b over the same items: `loss_*[i]` is the summed token loss of item i
    (averaged over an arm's seeds), `counts[i]` its scored tokens. Items are resampled with replacement,
    the same resample for both arms; the interval is the percentile interval of the resampled differences."""
    loss_a, loss_b, count = (np.asarray(x, dtype=np.float64) for x in (loss_a, loss_b, counts))
    if not (len(loss_a) == len(loss_b) == len(count)) or len(count) == 0:
        raise ValueError(f"paired items differ in number: {len(loss_a)}, {len(loss_b)}, {len(count)} (or none)")
    n = len(count)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    diffs = _ppl(loss_a, count, weights) - _ppl(loss_b, count, weights)
    ones = np.ones((1, n))
    diff = float((_ppl(loss_a, count, ones) - _ppl(loss_b, count, ones))[0])
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return {"diff": diff, "low": float(low), "high": float(high), "items": n, "resamples": resamples}


def mcnemar(correct_a: list[bool], correct_b: list[bool]) -> dict:
    """Exact McNemar test: of the examples exactly one classifier gets right (a only: `a_only`, b only: `b_only`),
    is the split further from 50/50 than chance? Accuracy difference a - b beside it."""
    from scipy.stats import binomtest

    if len(correct_a) != len(correct_b) or not correct_a:
        raise ValueError(f"paired examples differ in number: {len(correct_a)} vs {len(correct_b)} (or none)")
    a_only = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    b_only = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    p = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {
        "a_only": a_only,
        "b_only": b_only,
        "p": float(p),
        "diff": (a_only - b_only) / len(correct_a),
        "n": len(correct_a),
    }


def curve_band(
    curves: list[list[tuple[float, float]]], alpha: float = ALPHA
) -> list[tuple[float, float, float, float]]:
    """(x, mean, low, high) at each x every seed's curve reached: the mean over seeds and its t interval."""
    points: dict[float, list[float]] = {}
    for curve in curves:
        for x, y in curve:
            points.setdefault(x, []).append(y)
    band = []
    for x in sorted(points):
        ys = points[x]
        if len(ys) < len(curves):
            continue
        mean = float(np.mean(ys))
        if len(ys) < 2:
            band.append((x, mean, mean, mean))
            continue
        half = _t(1 - alpha / 2, len(ys) - 1) * float(np.std(ys, ddof=1)) / math.sqrt(len(ys))
        band.append((x, mean, mean - half, mean + half))
    return band


# ---------------------------------------------------------------- does a metric carry signal at this scale?
# A metric is worth reading only when it is above chance, moves with training, and its seed spread is smaller than
# the differences it is asked to resolve (the criteria FineWeb's and DCLM's ablations choose their metrics by).
FINETUNE_MARGIN = 0.10  # a fine-tuning column is shown when every fine-tuned model is this far above the majority


def majority_accuracy(labels: list) -> float:
    """The accuracy of always answering the most frequent label of `labels` (the dev set's majority class)."""
    if not labels:
        raise ValueError("no labels: the majority class is undefined")
    return max(labels.count(x) for x in set(labels)) / len(labels)


def chance_margin(items: int, z: float = 1.96) -> float:
    """How far above 50% a coin-flipping model lands by luck on `items` two-way choices (z standard errors)."""
    return z * 0.5 / math.sqrt(items)


def learns(scores: list[float], majority: float, margin: float = FINETUNE_MARGIN) -> bool:
    """A fine-tuning metric is shown only when every fine-tuned model scores at least `margin` above the majority
    class (scores and majority as fractions; 1e-9 absorbs the rounding of a score exactly at the margin)."""
    return bool(scores) and min(scores) - majority >= margin - 1e-9


def better(value: float, than: float, lower_is_better: bool) -> bool:
    return value < than if lower_is_better else value > than


def above_chance(values: list[float], baseline: float, lower_is_better: bool, margin: float = 0.0) -> bool:
    """Every value better than `baseline` by more than `margin`."""
    bar = baseline - margin if lower_is_better else baseline + margin
    return bool(values) and all(better(v, bar, lower_is_better) for v in values)


def mean_interval(values: list[float], alpha: float = ALPHA) -> tuple[float, float] | None:
    """The 95% t interval of the mean over seeds; None under 2 values."""
    if len(values) < 2:
        return None
    mean, half = float(np.mean(values)), _t(1 - alpha / 2, len(values) - 1) * statistics.stdev(values)
    half /= math.sqrt(len(values))
    return mean - half, mean + half


def rises(start: float, values: list[float], lower_is_better: bool) -> bool | None:
    """Did training move the metric? The end point (the mean over seeds) better than the `start` (the model before
    training) beyond its 95% interval: the whole interval on the better side. None: under 2 seeds, no interval."""
    interval = mean_interval(values)
    if interval is None:
        return None
    low, high = interval
    return high < start if lower_is_better else low > start


def pooled_sd(values_by_arm: dict[str, list[float]]) -> float | None:
    """The seed standard deviation within arms, pooled over the arms with 2 or more seeds (root of the mean
    variance). None: no arm has 2 seeds."""
    variances = [statistics.variance(v) for v in values_by_arm.values() if len(v) >= 2]
    return math.sqrt(statistics.fmean(variances)) if variances else None


def resolves(seed_sd: float | None, difference: float | None) -> bool | None:
    """Is the seed spread smaller than the difference the metric is asked to resolve? None when either is unknown."""
    if seed_sd is None or difference is None:
        return None
    return seed_sd < difference


def signal_verdict(
    above: bool | None, rising: bool | None, resolving: bool | None, spread_unknown: str = "fewer than 2 seeds"
) -> tuple[bool, list[str]]:
    """(carries signal, the reasons it does not): all three criteria must hold; an unknown one fails
    (`spread_unknown`: why the spread could not be weighed)."""
    reasons = []
    if not above:
        reasons.append("not above chance" if above is False else "chance level unknown")
    if not rising:
        reasons.append("does not rise with tokens" if rising is False else "no interval to tell whether it rises")
    if not resolving:
        reasons.append(
            "seed spread not smaller than the difference to resolve"
            if resolving is False
            else f"seed spread not weighed ({spread_unknown})"
        )
    return not reasons, reasons
