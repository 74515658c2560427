"""Statistics over seeds: summaries, and the confidence interval of a difference between two settings."""
from __future__ import annotations

import math
import statistics


def summarize(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


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
