"""Two arms of a study compared on every metric both were scored on: each arm's summary over seeds, the
seed-level 95% interval of the difference (Welch's t) with its minimum detectable difference (alpha 0.05, power
0.8), and the paired statistic on the items both arms were scored on (a per-item bootstrap for perplexities,
McNemar's test for accuracies). Runs are grouped into arms by one of their fields (`group`: the ablation's
`arm`, the compare study's `method`).
"""

from __future__ import annotations

from eval.studies.report import noise_sentence
from eval.studies.signal import COMPARED, METRICS
from eval.studies.stats import mcnemar, min_detectable_difference, paired_bootstrap, summarize, welch_interval


def arm_stat(runs: dict, arm: str, metric: str, group: str = "arm") -> dict:
    """`metric` over the runs of one arm (`run[group] == arm`)."""
    return summarize([r[metric] for r in runs.values() if r[group] == arm and r.get(metric) is not None])


def mcnemar_over_seed_pairs(correct_a: dict[int, list], correct_b: dict[int, list]) -> dict | None:
    """McNemar's exact test on per-item correctness (seed -> one 0/1 per item), pooled over the seeds both sides
    ran. None when they share no seed or a shared seed scored a different number of items."""
    seeds = sorted(set(correct_a) & set(correct_b))
    if not seeds or any(len(correct_a[s]) != len(correct_b[s]) for s in seeds):
        return None
    test = mcnemar([x for s in seeds for x in correct_a[s]], [x for s in seeds for x in correct_b[s]])
    return {"test": "McNemar (exact)", "seed_pairs": len(seeds), **test}


def mdd_sentence(mdd: float | None, digits: int) -> str:
    return "" if mdd is None else f" Minimum detectable difference (alpha 0.05, power 0.8): {mdd:.{digits}f}."


def mcnemar_sentence(p: dict, a: str, b: str, test: str = "McNemar", items: str = "items") -> str:
    return (
        f" Paired ({test}, {p['n']:,} {items} over {p['seed_pairs']} seed pairs): "
        f"{p['a_only']} right only with {a}, {p['b_only']} only with {b}, p = {p['p']:.3g}."
    )


def paired(a: str, b: str, metric: str, runs: dict, items: dict, group: str = "arm") -> dict | None:
    """The paired statistic of `metric` between arms a and b on the items both were scored on: a per-item
    bootstrap of the perplexity difference (item losses averaged over each arm's seeds), or McNemar's test
    over seed pairs (the same seed in both arms) for an accuracy. None when the items are not there."""
    kind = next(m[4] for m in METRICS if m[0] == metric)
    per_run = {name: items.get(name, {}).get(metric) for name, r in runs.items() if r[group] in (a, b)}
    if not per_run or any(v is None for v in per_run.values()):
        return None
    by_arm = {arm: {runs[n]["seed"]: v for n, v in per_run.items() if runs[n][group] == arm} for arm in (a, b)}
    if kind == "mcnemar":
        return mcnemar_over_seed_pairs(by_arm[a], by_arm[b])
    lengths = {len(v) for arm in by_arm.values() for v in arm.values()}
    if len(lengths) != 1:
        return None

    def mean_losses(arm: str) -> list[float]:
        lists = list(by_arm[arm].values())
        return [sum(run[i][0] for run in lists) / len(lists) for i in range(len(lists[0]))]

    counts = [n for _, n in next(iter(by_arm[a].values()))]
    if counts != [n for _, n in next(iter(by_arm[b].values()))]:
        return None  # not the same items (another tokenizer)
    return {"test": "paired bootstrap over items", **paired_bootstrap(mean_losses(a), mean_losses(b), counts)}


def compare_arms(a: str, b: str, kind: str, step: str | None, runs: dict, items: dict, group: str = "arm") -> dict:
    """Arm a against arm b on each compared metric: both summaries, the seed-level interval (Welch), its minimum
    detectable difference (alpha 0.05, power 0.8) and the paired statistic."""
    result = {"a": a, "b": b, "kind": kind, "step": step, "metrics": {}}
    for metric in COMPARED:
        sa, sb = arm_stat(runs, a, metric, group), arm_stat(runs, b, metric, group)
        if not sa["n"] or not sb["n"]:
            continue
        mdd = min_detectable_difference(sa["std"], sa["n"], sb["std"], sb["n"])
        result["metrics"][metric] = {
            "a": sa,
            "b": sb,
            "welch": welch_interval(sa, sb),
            "mdd": mdd,
            "paired": paired(a, b, metric, runs, items, group),
        }
    return result


def comparison_lines(c: dict, columns: list[tuple]) -> list[str]:
    """A comparison as report lines: the seed-level interval with its MDD, and the paired statistic beside it, for
    the report's `columns` (`signal.METRICS` rows as the report titles them; the fine-tuning metrics that do not
    learn are left out)."""
    lines = []
    titles = {k: (t, low, d) for k, t, low, d, _ in columns}
    for metric, m in c["metrics"].items():
        if metric not in titles:
            continue
        title, lower, digits = titles[metric]
        line = noise_sentence(c["a"], m["a"], c["b"], m["b"], title, lower, digits)
        line += mdd_sentence(m["mdd"], digits)
        p = m["paired"]
        if p and p["test"].startswith("McNemar"):
            line += mcnemar_sentence(p, c["a"], c["b"])
        elif p:
            verdict = "excludes 0" if not p["low"] <= 0 <= p["high"] else "includes 0"
            line += (
                f" Paired over {p['items']:,} items (bootstrap, seed-averaged losses): {p['diff']:+.{digits}f}, "
                f"95% CI [{p['low']:+.{digits}f}, {p['high']:+.{digits}f}] ({verdict})."
            )
        lines.append(line)
    return lines
