"""Repeated, interleaved measurements: on a shared machine one pair of runs is not a measurement.

Each contender is a function returning its own figure (tokens/s, MB/s, ...). `interleaved` calls them in
turn, A B C A B C ..., after one untimed warm-up round, so a drift in the machine's speed hits all alike;
`spread` reports the median with the min and max beside it.
"""

from __future__ import annotations

import statistics
from typing import Callable


def interleaved(contenders: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """{name: [figure of each timed round]}; `warmup` rounds first, not counted."""
    figures: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + repeats):
        for name, measure in contenders.items():
            value = measure()
            if round_ >= warmup:
                figures[name].append(value)
    return figures


def spread(values: list[float]) -> dict:
    """{"median", "min", "max", "runs"}: quote the median; min and max show how noisy the machine was."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": list(values)}


def show(values: list[float], fmt: str = ",.0f") -> str:
    """'median (min-max)' of the values."""
    s = spread(values)
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}-{s['max']:{fmt}})"
