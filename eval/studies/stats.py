"""Statistics over seeds: summaries, and the confidence interval of a difference between two settings."""
from __future__ import annotations

import math
import statistics

from scipy.stats import t


def summarize(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


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
    half = float(t.ppf(0.975, df)) * se
    return {"diff": diff, "low": diff - half, "high": diff + half, "df": df}
