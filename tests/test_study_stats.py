"""The studies' statistics against direct computations and simulation: power, paired tests, curve bands."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from eval.studies.report import left_out_lines, signal_lines
from eval.studies.stats import (
    above_chance,
    better,
    chance_margin,
    curve_band,
    half_width,
    items_for_half_width,
    learns,
    majority_accuracy,
    mcnemar,
    mean_interval,
    min_detectable_difference,
    paired_bootstrap,
    pooled_sd,
    resolves,
    rises,
    seeds_for_half_width,
    signal_verdict,
)


def test_min_detectable_difference_has_its_power():
    """A true difference equal to the MDD is found by Welch's test in about 80% of simulated studies."""
    sd, n = 3.0, 5
    mdd = min_detectable_difference(sd, n, sd, n)
    rng = np.random.default_rng(0)
    trials = 4000
    a = rng.normal(mdd, sd, (trials, n))
    b = rng.normal(0.0, sd, (trials, n))
    found = (sps.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean()
    assert 0.76 < found < 0.84
    assert min_detectable_difference(sd, 1, sd, 5) is None


def test_seeds_for_half_width_reaches_the_target_and_no_fewer_do():
    target = 25.3
    n = seeds_for_half_width(30.1, 19.0, target)
    assert half_width(30.1, n, 19.0, n) <= target < half_width(30.1, n - 1, 19.0, n - 1)
    assert seeds_for_half_width(30.0, 30.0, 1e-9, most=50) is None
    assert items_for_half_width(2.0, 100, 1.0) == 400 and items_for_half_width(0.5, 100, 1.0) == 100


def test_paired_bootstrap_cancels_item_difficulty():
    """Items of very different difficulty, arm a uniformly 1% worse per token: the paired interval excludes 0
    and holds the true difference, though an unpaired view would drown it in the spread between items."""
    rng = np.random.default_rng(1)
    counts = rng.integers(50, 200, 300)
    per_token = rng.uniform(2.0, 8.0, 300)
    loss_b = per_token * counts
    loss_a = loss_b * 1.01
    r = paired_bootstrap(loss_a.tolist(), loss_b.tolist(), counts.tolist(), resamples=1000)
    true = math.exp(loss_a.sum() / counts.sum()) - math.exp(loss_b.sum() / counts.sum())
    assert r["diff"] == pytest.approx(true)
    assert 0 < r["low"] <= r["diff"] <= r["high"]
    same = paired_bootstrap(loss_b.tolist(), loss_b.tolist(), counts.tolist(), resamples=200)
    assert same["diff"] == same["low"] == same["high"] == 0
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0], [1, 1])


def test_mcnemar_counts_disagreements_and_matches_the_binomial():
    a = [True] * 10 + [False] * 2 + [True] * 30 + [False] * 8
    b = [False] * 10 + [True] * 2 + [True] * 30 + [False] * 8
    r = mcnemar(a, b)
    assert (r["a_only"], r["b_only"], r["n"]) == (10, 2, 50)
    assert r["p"] == pytest.approx(sps.binomtest(10, 12, 0.5).pvalue) and r["p"] < 0.05
    assert r["diff"] == pytest.approx(8 / 50)
    assert mcnemar([True, False], [True, False])["p"] == 1.0


def test_curve_band_is_the_t_interval_at_each_shared_point():
    curves = [[(10, 5.0), (20, 4.0)], [(10, 6.0), (20, 4.5)], [(10, 7.0)]]
    band = curve_band(curves)
    assert [p[0] for p in band] == [10]  # 20 was reached by two seeds of three: left out
    x, mean, low, high = band[0]
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((6.0, 6.0 - half, 6.0 + half))


# ---------------------------------------------------------------- does a metric carry signal?
def signals_of(values: dict, start: float = 100.0, blimp_pairs: int = 4, glue_dev: int = 64, targets=None) -> dict:
    """The signal of every metric of a study whose arms have `values` (arm -> metric -> runs' values); every arm
    starts from a model scoring `start` on the perplexities and 0.5 on the accuracies."""
    from eval.studies.signal import METRICS, baselines, metric_signals

    before = {k: (start if lower else 0.5) for k, _, lower, *_ in METRICS}
    starts = {a: before for a in values}
    bases = baselines(blimp_pairs, glue_dev, starts)
    return metric_signals(METRICS, values, bases, starts, targets)


def test_majority_class_is_read_from_the_dev_labels(shared_data):
    """SST-2's dev majority: counted here from the TSV's label column, against the baseline the studies use."""
    from eval.studies.signal import baselines

    rows = (shared_data / "glue" / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    labels = [row.rsplit("\t", 1)[1] for row in rows if row.strip()]
    expected = max(labels.count(x) for x in set(labels)) / len(labels)
    assert baselines(0, 0, {})["sst2_acc"]["value"] == pytest.approx(expected) and 0.5 < expected < 0.52
    assert baselines(0, 0, {})["sst2_acc"]["items"] == len(labels) == 872
    first = labels[:64]
    assert baselines(0, 64, {})["sst2_acc"]["value"] == pytest.approx(max(map(first.count, set(first))) / 64)
    assert majority_accuracy([0, 1, 1, 1]) == 0.75 and majority_accuracy(["a"]) == 1.0


def test_a_finetuning_column_is_shown_only_when_every_model_is_10_points_above_the_majority():
    assert learns([0.70, 0.601], 0.50) and not learns([0.70, 0.599], 0.50) and not learns([], 0.5)
    assert learns([0.60], 0.50)  # exactly 10 points: kept (the float sum 0.5 + 0.1 does not drop it)
    from eval.studies.signal import baselines

    majority = baselines(0, 64, {})["sst2_acc"]["value"]
    ppl = {"wikitext_ppl": [50.0, 51.0]}
    below = signals_of({"a": {**ppl, "sst2_acc": [majority + 0.099, 0.9]}, "b": {**ppl, "sst2_acc": [0.9, 0.9]}})
    above = signals_of({"a": {**ppl, "sst2_acc": [majority + 0.101, 0.9]}, "b": {**ppl, "sst2_acc": [0.9, 0.9]}})
    assert not below["sst2_acc"]["shown"] and below["sst2_acc"]["above_chance"] is False
    assert above["sst2_acc"]["shown"] and above["sst2_acc"]["above_chance"] is True
    assert below["wikitext_ppl"]["shown"]  # only fine-tuning columns are ever left out
    line = "\n".join(left_out_lines(below))
    assert "SST-2 acc left out" in line and "best model 0.900" in line and f"dev set {majority:.3f}" in line
    assert left_out_lines(above) == []


def test_above_chance_rises_and_seed_spread_each_decide_the_verdict():
    # BLiMP on 67 x 4 pairs: a coin flipper reaches 50% + 6.0 points by luck
    assert chance_margin(268) == pytest.approx(1.96 * 0.5 / math.sqrt(268))
    lucky = signals_of({"a": {"blimp_acc": [0.55, 0.56]}, "b": {"blimp_acc": [0.55, 0.555]}})["blimp_acc"]
    assert lucky["above_chance"] is False and "not above chance" in lucky["reasons"]
    # perplexity: below the model before training (100), falling beyond its interval, arms 20 apart, SD about 1
    good = {"a": {"wikitext_ppl": [60.0, 61.0, 59.0]}, "b": {"wikitext_ppl": [80.0, 81.0, 79.0]}}
    s = signals_of(good)["wikitext_ppl"]
    assert (s["above_chance"], s["rises"], s["resolves"], s["carries_signal"]) == (True, True, True, True)
    assert s["seed_sd"] == pytest.approx(1.0) and s["difference"] == pytest.approx(20.0)
    # the seed spread exceeds the difference between the arms: flagged
    noisy = {"a": {"wikitext_ppl": [60.0, 70.0, 50.0]}, "b": {"wikitext_ppl": [62.0, 72.0, 52.0]}}
    s = signals_of(noisy)["wikitext_ppl"]
    assert s["resolves"] is False and not s["carries_signal"]
    assert s["reasons"] == ["seed spread not smaller than the difference to resolve"]
    # ... or the power target, where the study sets one
    s = signals_of(good, targets={"wikitext_ppl": 0.5})["wikitext_ppl"]
    assert s["resolves"] is False and s["difference_of"] == "the power target"
    # worse than the model before training: not above chance, not rising
    s = signals_of({"a": {"wikitext_ppl": [120.0, 121.0]}, "b": {"wikitext_ppl": [60.0, 61.0]}})["wikitext_ppl"]
    assert s["above_chance"] is False and s["rises"] is False
    # better than before, but its interval reaches back over the start: above chance, yet not shown to rise
    assert rises(100.0, [10.0, 99.0], lower_is_better=True) is False
    assert rises(100.0, [98.0, 98.5, 98.2], lower_is_better=True) is True
    assert rises(0.5, [0.6, 0.61], lower_is_better=False) is True and rises(0.5, [0.6], False) is None
    # one seed: no spread, no interval, so no verdict of signal
    s = signals_of({"a": {"wikitext_ppl": [60.0]}, "b": {"wikitext_ppl": [80.0]}})["wikitext_ppl"]
    assert (s["rises"], s["seed_sd"], s["carries_signal"]) == (None, None, False)
    assert pooled_sd({"a": [1.0, 3.0], "b": [2.0, 2.0], "c": [5.0]}) == pytest.approx(math.sqrt(1.0))


def test_the_signal_table_states_each_verdict():
    signals = signals_of(
        {"a": {"wikitext_ppl": [60.0, 61.0, 59.0], "blimp_acc": [0.5, 0.51]}, "b": {"wikitext_ppl": [80.0, 81.0, 79.0]}}
    )
    table = "\n".join(signal_lines(signals))
    assert "| WikiText ppl (sliding) | yes: best 59.0 vs the model before training (100.0) | yes | 1.0 < 20.0" in table
    assert "| BLiMP acc | no: best 0.510 vs 50% + 0.060 (luck on 268 pairs) |" in table
    assert "no signal at this scale: not above chance" in table


# restated formulas at their edges: 2 seeds (the fewest allowed), unequal spreads and counts, alpha and power other
# than the defaults, so no two parameters can stand in for each other
def welch_se_df(sa: float, na: int, sb: float, nb: int) -> tuple[float, float]:
    va, vb = sa * sa / na, sb * sb / nb
    return math.sqrt(va + vb), (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))


def test_welch_formulas_restated_from_two_seeds_on():
    from eval.studies.stats import summarize, welch_df, welch_interval

    assert summarize([1.0, 4.0])["std"] == pytest.approx(math.sqrt(4.5))  # two values have a spread
    a, b = summarize([3.1, 2.2, 4.6]), summarize([5.5, 7.0])
    se, df = welch_se_df(a["std"], 3, b["std"], 2)
    half = sps.t.ppf(0.975, df) * se
    assert welch_interval(a, b) == pytest.approx(
        {"diff": a["mean"] - 6.25, "low": a["mean"] - 6.25 - half, "high": a["mean"] - 6.25 + half, "df": df}
    )
    assert welch_df(1.3, 3, 2.9, 6) == pytest.approx(welch_se_df(1.3, 3, 2.9, 6)[1], rel=1e-12)
    assert welch_df(1.0, 4, 2.0, 16) == pytest.approx(welch_se_df(1.0, 4, 2.0, 16)[1])  # equal standard errors
    assert welch_df(0.0, 3, 0.0, 6) == 7.0  # no spread: the pooled degrees of freedom


def test_power_formulas_restated_from_two_seeds_on():
    for sa, na, sb, nb in ((1.3, 2, 2.9, 3), (0.7, 5, 0.4, 2)):
        se, df = welch_se_df(sa, na, sb, nb)
        mdd = (sps.t.ppf(0.975, df) + sps.t.ppf(0.8, df)) * se
        assert min_detectable_difference(sa, na, sb, nb) == pytest.approx(mdd, rel=1e-9)
        other = (sps.t.ppf(0.95, df) + sps.t.ppf(0.9, df)) * se
        assert min_detectable_difference(sa, na, sb, nb, alpha=0.1, power=0.9) == pytest.approx(other, rel=1e-9)
        assert half_width(sa, na, sb, nb) == pytest.approx(sps.t.ppf(0.975, df) * se, rel=1e-9)
        assert half_width(sa, na, sb, nb, alpha=0.1) == pytest.approx(sps.t.ppf(0.95, df) * se, rel=1e-9)
    assert half_width(1.3, 1, 2.9, 5) is None and half_width(1.3, 5, 2.9, 1) is None
    assert min_detectable_difference(1.3, 5, 2.9, 1) is None

    # the fewest seeds: a target met exactly counts; 2 seeds can be enough; `most` is the last count tried
    exact = half_width(1.3, 4, 2.9, 4)
    assert seeds_for_half_width(1.3, 2.9, exact) == 4 and seeds_for_half_width(1.3, 2.9, 1e6) == 2
    assert seeds_for_half_width(1.3, 2.9, half_width(1.3, 6, 2.9, 6, alpha=0.1), alpha=0.1) == 6
    assert seeds_for_half_width(1.3, 2.9, half_width(1.3, 6, 2.9, 6), most=6) == 6
    assert seeds_for_half_width(1.3, 2.9, half_width(1.3, 7, 2.9, 7), most=6) is None
    assert seeds_for_half_width(1.0, 1.0, half_width(1.0, 10_001, 1.0, 10_001)) is None  # at most 10,000 by default
    assert items_for_half_width(3.0, 100, 2.0) == 225  # (3 / 2)^2 times the items


def test_paired_bootstrap_and_mcnemar_restated():
    counts = [40, 70, 55, 90, 65]
    loss_a, loss_b = [121.0, 260.5, 150.2, 330.9, 170.4], [118.3, 251.0, 160.7, 301.2, 175.5]
    r = paired_bootstrap(loss_a, loss_b, counts, alpha=0.2)
    assert r["resamples"] == 2000 and r["items"] == 5 and set(r) == {"diff", "low", "high", "items", "resamples"}
    assert r == paired_bootstrap(loss_a, loss_b, counts, seed=0, alpha=0.2)  # seed 0 by default
    assert r != paired_bootstrap(loss_a, loss_b, counts, seed=1, alpha=0.2)
    # the same resamples drawn by hand: each a multinomial count per item, both arms weighted alike
    draws = np.random.default_rng(0).multinomial(5, [0.2] * 5, size=2000)

    def ppl(loss, w):
        return math.exp(sum(x * k for x, k in zip(loss, w)) / sum(c * k for c, k in zip(counts, w)))

    diffs = [ppl(loss_a, w) - ppl(loss_b, w) for w in draws.tolist()]
    assert (r["low"], r["high"]) == pytest.approx(tuple(np.quantile(diffs, [0.1, 0.9])), rel=1e-9)
    assert r["diff"] == pytest.approx(ppl(loss_a, [1] * 5) - ppl(loss_b, [1] * 5), rel=1e-12)
    one = paired_bootstrap([30.0], [20.0], [10], resamples=50)  # one item: every resample is that item
    assert one["low"] == one["high"] == one["diff"] == pytest.approx(math.exp(3.0) - math.exp(2.0))
    with pytest.raises(ValueError, match=r"paired items differ in number: 1, 2, 2 \(or none\)"):
        paired_bootstrap([1.0], [1.0, 2.0], [1, 1])

    with pytest.raises(ValueError, match="paired examples differ in number: 2 vs 3"):
        mcnemar([True, False], [True, False, True])
    with pytest.raises(ValueError, match="paired examples differ in number: 0 vs 0"):
        mcnemar([], [])


def test_curve_band_restated():
    curves = [[(10, 5.0), (20, 4.0), (30, 3.0)], [(20, 6.0), (30, 5.0)], [(20, 8.0), (30, 1.0)]]
    band = curve_band(curves)  # 10 was reached by one seed of three: left out, later points kept
    assert [p[0] for p in band] == [20, 30]
    half = sps.t.ppf(0.975, 2) * 2.0 / math.sqrt(3)  # 4, 6, 8: standard deviation 2
    assert band[0] == pytest.approx((20, 6.0, 6.0 - half, 6.0 + half))
    two = curve_band([[(1, 2.0)], [(1, 5.0)]], alpha=0.1)  # two seeds: an interval already
    half = sps.t.ppf(0.95, 1) * math.sqrt(4.5) / math.sqrt(2)
    assert len(two) == 1 and two[0] == pytest.approx((1, 3.5, 3.5 - half, 3.5 + half))
    assert curve_band([[(1, 2.0), (2, 3.0)]]) == [(1, 2.0, 2.0, 2.0), (2, 3.0, 3.0, 3.0)]  # one seed: no band


def test_signal_rules_at_their_edges():
    """Each rule of "carries signal" at the value where it flips: strict comparisons stay strict, the margin
    counts in the right direction, the rounding allowance of the fine-tuning margin holds, and every verdict
    names each failed criterion."""
    with pytest.raises(ValueError, match="^no labels: the majority class is undefined$"):
        majority_accuracy([])
    assert majority_accuracy(["a", "b", "b"]) == pytest.approx(2 / 3)
    assert learns([0.6, 0.7], 0.5) and not learns([0.59, 0.7], 0.5) and not learns([], 0.5)  # 0.6 - 0.5 < 0.1 in floats
    assert (better(1, 1, True), better(1, 1, False), better(0, 1, True), better(2, 1, False)) == (
        False,
        False,
        True,
        True,
    )
    assert not above_chance([0.6], 0.5, lower_is_better=False, margin=0.1)  # at the bar: not above it
    assert above_chance([0.61, 0.7], 0.5, lower_is_better=False, margin=0.1)
    assert not above_chance([0.61, 0.55], 0.5, lower_is_better=False, margin=0.1)  # every value must clear it
    assert not above_chance([90.0], 100.0, lower_is_better=True, margin=10.0) and above_chance(
        [89.0], 100.0, True, 10.0
    )
    assert not above_chance([], 0.5, lower_is_better=False)
    assert above_chance([0.51], 0.5, lower_is_better=False)  # no margin unless one is given
    assert chance_margin(100) == pytest.approx(0.098)
    assert mean_interval([1.0]) is None
    low, high = mean_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.303
    assert (low, high) == (pytest.approx(2 - 4.3027 / 3**0.5, abs=1e-3), pytest.approx(2 + 4.3027 / 3**0.5, abs=1e-3))
    assert mean_interval([1.0, 2.0]) is not None
    assert rises(5.0, [5.0, 5.0], lower_is_better=True) is False and rises(5.0, [5.0, 5.0], False) is False
    assert rises(5.0, [4.0, 4.0], lower_is_better=True) is True and rises(5.0, [6.0, 6.0], False) is True
    assert resolves(1.0, 1.0) is False and resolves(0.9, 1.0) is True
    assert resolves(None, 1.0) is None and resolves(1.0, None) is None
    assert signal_verdict(True, True, True) == (True, [])
    assert signal_verdict(False, True, True) == (False, ["not above chance"])
    assert signal_verdict(None, True, True) == (False, ["chance level unknown"])
    assert signal_verdict(True, False, True) == (False, ["does not rise with tokens"])
    assert signal_verdict(True, None, True) == (False, ["no interval to tell whether it rises"])
    assert signal_verdict(True, True, False) == (False, ["seed spread not smaller than the difference to resolve"])
    assert signal_verdict(True, True, None) == (False, ["seed spread not weighed (fewer than 2 seeds)"])
    assert signal_verdict(True, True, None, spread_unknown="one arm") == (False, ["seed spread not weighed (one arm)"])
    assert signal_verdict(False, False, False)[1] == [
        "not above chance",
        "does not rise with tokens",
        "seed spread not smaller than the difference to resolve",
    ]


def test_the_overlap_verdict_counts_what_the_students_read():
    """Arms' documents found alike a teacher document and left out of their token shards do not count as
    overlap read by the students; an evaluation text among the teacher's documents does."""
    from eval.studies.teacher_overlap import overlap_lines

    def group(found: int) -> dict:
        return {"docs": 100, "docs_with_reference_duplicate": found, "reference_docs_with_duplicate": found,
                "examples": [f"doc{i}" for i in range(found)][:5]}  # fmt: skip

    variants = {"none": {"left_out_for_teacher_overlap": 2}, "full": {"left_out_for_teacher_overlap": 0}}
    clean = "\n".join(overlap_lines({"none": group(0), "full": group(0), "evaluation sets": group(0)}, "T", variants))
    assert "0 everywhere" in clean
    left_out = overlap_lines({"none": group(2), "full": group(0), "evaluation sets": group(0)}, "T", variants)
    text = "\n".join(left_out)
    left_out = text.splitlines()
    assert (
        "2 documents of the studied corpora" in text
        and "**0 overlap in what the students read and are scored on**" in text
    )
    assert "| `none` | 100 | 2 | 2 | 2 | 0 | `doc0`, `doc1` |" in left_out
    assert "| `evaluation sets` | 100 | 0 | 0 | - | 0 | - |" in left_out
    seen = "\n".join(overlap_lines({"none": group(2), "full": group(0), "evaluation sets": group(1)}, "T", variants))
    assert "**1 documents overlap** in what the students read or are scored on" in seen
    unexcluded = {"none": {"left_out_for_teacher_overlap": 1}, "full": {}}
    assert "**1 documents overlap**" in "\n".join(
        overlap_lines({"none": group(2), "full": group(0), "evaluation sets": group(0)}, "T", unexcluded)
    )
