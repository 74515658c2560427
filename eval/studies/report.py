"""Markdown pieces the studies' reports are made of: tables, formatted statistics, comparisons, provenance."""

from __future__ import annotations

from eval.studies.stats import welch_interval


def fmt(stat: dict, digits: int = 2) -> str:
    if stat["mean"] is None:
        return "-"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def noise_sentence(
    name_a: str, a: dict, name_b: str, b: dict, metric: str, lower_is_better: bool, digits: int = 2
) -> str:
    """One comparison: both means, the mean difference with its 95% CI, and whether the CI excludes 0."""
    head = f"- {metric}: {name_a} {fmt(a, digits)} vs {name_b} {fmt(b, digits)}"
    ci = welch_interval(a, b)
    if ci is None:
        return f"{head}: fewer than 2 seeds on a side, so no confidence interval (run 3 or more seeds)."
    interval = (
        f"difference {ci['diff']:+.{digits}f}, 95% CI [{ci['low']:+.{digits}f}, {ci['high']:+.{digits}f}] "
        f"(Welch's t, {a['n']} vs {b['n']} seeds)"
    )
    if ci["low"] <= 0 <= ci["high"]:
        return f"{head}: {interval}: the interval includes 0, so no real difference is shown."
    better = name_a if (ci["diff"] < 0) == lower_is_better else name_b
    return f"{head}: {interval}: real (the interval excludes 0); {better} is better."


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def units_section(units: dict[str, dict], code: dict | None = None) -> list[str]:
    """The report's provenance table: every unit behind the numbers, with its fingerprint and folder."""
    rows = [
        [f"`{name}`", u["kind"], f"`{u['fingerprint']}`", code_cell(u.get("code")), f"`{u['path']}`"]
        for name, u in units.items()
    ]
    code_line = ("Code: " + ", ".join(f"{k.replace('_', ' ')} `{v}`" for k, v in code.items()) + ".") if code else ""
    return [
        "## Provenance",
        "",
        "Every unit behind the numbers above, keyed by the fingerprint of its settings and its inputs' fingerprints "
        "(raw input -> clean corpus -> token shards -> run -> evaluation) and of the source of the modules "
        "that shape it (code). A changed setting, input or code gives a new fingerprint and a new unit beside "
        "the old one; an unchanged unit is reused. A unit made by other code is reused only with --reuse-stale, "
        "and marked **stale** here.",
        "",
        markdown_table(["unit", "kind", "fingerprint", "code", "where"], rows),
        "",
        *([code_line, ""] if code_line else []),
    ]


def code_cell(code: dict | None) -> str:
    """The code column of the provenance table: the source fingerprint a unit was made by, stale or current."""
    if not code:
        return "-"
    if code.get("stale"):
        return f"**stale**: made by `{code['made_by_code'][:10]}`, this code is `{code['code'][:10]}`"
    return f"`{code['code'][:10]}`"


def left_out_lines(signals: dict[str, dict]) -> list[str]:
    """One line per fine-tuning metric left out of the report: it does not learn at this scale."""
    lines = []
    for s in signals.values():
        if s["shown"]:
            continue
        base, d = s["baseline"], s["digits"]
        lines.append(
            f"**{s['title']} left out** of this report: at this scale not every fine-tuned model scores "
            f"{100 * base['margin']:.0f} points above the majority class (best model {s['best']:.{d}f}, majority "
            f"class of the {base['task']} dev set {base['value']:.{d}f} over {base['items']:,} examples); "
            f"`results.json` keeps its numbers."
        )
    return [*lines, ""] if lines else []


def signal_lines(signals: dict[str, dict]) -> list[str]:
    """The report's table: for each metric, whether it carries signal at this scale, and why not."""
    rows = []
    for s in signals.values():
        base, d, sd = s["baseline"], s["digits"], s["seed_sd"]
        if base["kind"] == "start":
            known = sorted({f"{v:.{d}f}" for v in base["arms"].values() if v is not None}, key=float)
            span = known[0] if len(known) == 1 else f"{known[0]} to {known[-1]}" if known else "not evaluated"
            bar = f"the model before training ({span})"
        elif base["kind"] == "chance":
            bar = f"{base['value']:.0%} + {base['margin']:.{d}f} (luck on {base['items']:,} pairs)"
        else:
            bar = f"majority class {base['value']:.{d}f} + {100 * base['margin']:.0f} points"
        above = {True: "yes", False: "no", None: "unknown"}[s["above_chance"]]
        why = "no model before training" if None in s["start"].values() else "fewer than 2 seeds"
        rising = {True: "yes", False: "no", None: f"unknown ({why})"}[s["rises"]]
        if sd is None or s["difference"] is None:
            spread = "unknown" + (" (fewer than 2 seeds)" if sd is None else " (one arm)")
        else:
            spread = f"{sd:.{d}f} {'<' if s['resolves'] else '>='} {s['difference']:.{d}f} ({s['difference_of']})"
        verdict = "carries signal" if s["carries_signal"] else "no signal at this scale: " + "; ".join(s["reasons"])
        rows.append([s["title"], f"{above}: best {s['best']:.{d}f} vs {bar}", rising, spread, verdict])
    return [
        "## Signal at this scale",
        "",
        "Whether each metric can tell the arms apart at this scale: above chance (every model better than the bar), "
        "rising with tokens (each arm's mean better than its model before training beyond its 95% interval), and "
        "a seed standard deviation (within arms, pooled) smaller than the difference it is asked to resolve.",
        "",
        markdown_table(["metric", "above chance", "rises with tokens", "seed SD vs difference", "verdict"], rows),
        "",
    ]
