"""The metrics the pre-training studies (ablation, compare) report, and whether each carries signal at the study's
scale, as FineWeb's and DCLM's ablations choose theirs:

(a) above chance: BLiMP above 50% (beyond what a coin flipper gets by luck on as many pairs), a fine-tuning metric
    at least 10 points above the majority class of the dev examples scored, a perplexity or bits per byte better
    than the model before the study's training (the truncated student at step 0, evaluated once: `initial_model`);
(b) rising with tokens: each arm's end point (mean over seeds) better than its model before training beyond the
    95% interval of that mean;
(c) a seed spread (standard deviation within arms, pooled) smaller than the difference it is asked to resolve:
    the power target where the study sets one for the metric, else the largest difference between the arms' means.

A fine-tuning column is shown in a report only when every fine-tuned model of the study clears (a); otherwise the
report leaves it out and says so in one line (results.json keeps its numbers). The decisions are the small pure
functions of `stats.py`; this module gathers what they need and applies them to a study's runs.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from pathlib import Path

from eval.data import glue_dir
from eval.studies.stats import (
    FINETUNE_MARGIN,
    above_chance,
    chance_margin,
    learns,
    majority_accuracy,
    pooled_sd,
    resolves,
    rises,
    signal_verdict,
)
from eval.studies.units import locate, record_unit

# The metrics `pretraining.evaluate_model` gives every model: (key, column title, lower is better, digits, paired
# test). A metric added to the evaluation (and here) gets its column, its comparisons and its line in the signal table.
METRICS = [
    ("wikitext_ppl", "WikiText ppl (sliding)", True, 1, "bootstrap"),
    ("wikitext_blocks_ppl", "WikiText ppl (blocks)", True, 1, "bootstrap"),
    ("wikitext_bpb", "WikiText bits/byte", True, 3, "bootstrap"),  # no per-item scores: no paired test
    ("heldout_ppl", "held-out ppl", True, 1, "bootstrap"),
    ("blimp_acc", "BLiMP acc", False, 3, "mcnemar"),
    ("sst2_acc", "SST-2 acc", False, 3, "mcnemar"),
]
COMPARED = ("wikitext_ppl", "heldout_ppl", "blimp_acc", "sst2_acc")  # the metrics each comparison states
FINETUNED = {"sst2_acc": "sst2"}  # the fine-tuning metrics and their GLUE task (eval.glue.TASKS)
BLIMP_PARADIGMS = 67


def initial_model(
    tokens: Path,
    out: Path,
    name: str,
    seed: int,
    *,
    teacher: str,
    keep_layers: str,
    extra: list[str] = (),
    reuse_stale: bool = False,
) -> dict:
    """The model a `train pretrain` run with these options starts from (step 0: the truncated teacher, or the
    scratch model of the seed), built by the training code itself and exported like a run's, in
    `<out>/initial/<name>-<fingerprint>`. Keyed by what shapes it (teacher, tokenizer, model options, the seed of a
    scratch model) and the training code, so arms starting from one model share it and a rerun reuses it.
    Returns what `pretraining.evaluate_run` takes (`run_dir`, `unit`)."""
    import cli_config
    from safe_output import atomic_folder
    from train import TrainError
    from train.config import RunConfig
    from train.data import TokenBlocks
    from train.fingerprint import model_fingerprint
    from train.loop import build_model
    from train.tokenizer import load_tokenizer

    parser = cli_config.new_parser("python -m train pretrain")
    cli_config.add_arguments(parser, RunConfig)
    argv = ["--tokens", str(tokens), "--output", str(out), "--teacher", teacher, "--keep-layers", keep_layers]
    cfg = cli_config.resolve(RunConfig, parser.parse_args([*argv, "--seed", str(seed), *extra]), TrainError)
    blocks = TokenBlocks(tokens, "train")
    key = {
        "teacher": model_fingerprint(teacher),
        "vocab": blocks.manifest["fingerprint"],
        "model": asdict(cfg.model),
        "seed": seed if cfg.model.init == "scratch" else None,
    }
    run_dir, fp, code = locate(
        out / "initial", name, key, "initial model", "export/config.json", reuse_stale=reuse_stale
    )
    if not (run_dir / "export" / "config.json").exists():
        print(f"building {name}, the model before training, to evaluate it", flush=True)
        model, _ = build_model(cfg, blocks)
        with atomic_folder(run_dir / "export") as tmp:
            model.save_pretrained(tmp)
            load_tokenizer(blocks.dir / "tokenizer").save_pretrained(str(tmp))
    record_unit(run_dir, fp, code)
    return {
        "run_dir": str(run_dir),
        "unit": {"kind": "initial model", "fingerprint": fp, "path": str(run_dir), "code": code},
    }


def baselines(blimp_pairs: int, glue_dev: int, start: dict[str, dict]) -> dict[str, dict]:
    """What each metric must beat, per metric: its kind, its value (or per arm: `start` maps each arm to the
    metrics of the model it starts from) and the margin. `blimp_pairs`, `glue_dev`: the scale's (0: all)."""
    result = {}
    for key, _, lower, _, _ in METRICS:
        if lower:
            result[key] = {"kind": "start", "arms": {a: m.get(key) for a, m in start.items()}, "margin": 0.0}
    pairs = BLIMP_PARADIGMS * (blimp_pairs or 1000)
    result["blimp_acc"] = {"kind": "chance", "value": 0.5, "margin": chance_margin(pairs), "items": pairs}
    for key, task in FINETUNED.items():
        result[key] = {"kind": "majority", **majority_baseline(task, glue_dev)}
    return result


def majority_baseline(task: str, max_dev: int) -> dict:
    """What a fine-tuned model of a GLUE task must beat: the score of always answering the majority class on the
    dev examples it is scored on (`max_dev`, 0: all), by FINETUNE_MARGIN. MCC: a constant answer scores 0."""
    from eval.glue import TASKS, read_tsv

    folder, *_, metric = TASKS[task]
    _, labels, _ = read_tsv(glue_dir() / folder / "dev.tsv", task)
    labels = labels[: max_dev or None]
    value = 0.0 if metric == "mcc" else majority_accuracy(labels)
    return {"value": value, "margin": FINETUNE_MARGIN, "items": len(labels), "task": folder}


def combined(verdicts: list[bool | None]) -> bool | None:
    """Every arm's verdict: False if one fails, None if one is unknown, True when all hold."""
    if any(v is False for v in verdicts):
        return False
    return None if any(v is None for v in verdicts) or not verdicts else True


def metric_signals(
    metrics: list[tuple],
    values: dict[str, dict[str, list[float]]],
    bases: dict[str, dict],
    start: dict[str, dict],
    targets: dict[str, float] | None = None,
) -> dict[str, dict]:
    """Per metric: above chance, rising with tokens, seed spread vs the difference to resolve, the verdict, and
    whether its column is shown. `values`: arm -> metric -> the runs' values; `bases`: `baselines(...)`; `start`:
    arm -> the metrics of its model before training; `targets`: metric -> the difference the study's power target
    asks it to resolve (else: the largest difference between the arms' means)."""
    signals = {}
    for key, title, lower, digits, *_ in metrics:
        by_arm = {a: v[key] for a, v in values.items() if v.get(key)}
        base = bases.get(key)
        if not by_arm or base is None:
            continue
        every = [x for vals in by_arm.values() for x in vals]
        if base["kind"] == "majority":
            above = learns(every, base["value"], base["margin"])
        elif base["kind"] == "chance":
            above = above_chance(every, base["value"], lower, base["margin"])
        else:
            above = combined(
                [
                    None if base["arms"].get(a) is None else above_chance(vals, base["arms"][a], lower)
                    for a, vals in by_arm.items()
                ]
            )
        starts = {a: start.get(a, {}).get(key) for a in by_arm}
        rising = combined([None if starts[a] is None else rises(starts[a], vals, lower) for a, vals in by_arm.items()])
        means = {a: statistics.fmean(v) for a, v in by_arm.items()}
        if targets and key in targets:
            difference, of = targets[key], "the power target"
        else:
            spread = max(means.values()) - min(means.values())
            difference, of = (spread if len(means) > 1 else None), "the largest difference between arms"
        sd = pooled_sd(by_arm)
        unknown = "fewer than 2 seeds" if sd is None else "one arm: no difference to resolve"
        carries, reasons = signal_verdict(above, rising, resolves(sd, difference), unknown)
        signals[key] = {
            "title": title,
            "digits": digits,
            "lower_is_better": lower,
            "baseline": base,
            "above_chance": above,
            "best": (min if lower else max)(every),
            "start": starts,
            "rises": rising,
            "seed_sd": sd,
            "difference": difference,
            "difference_of": of,
            "resolves": resolves(sd, difference),
            "carries_signal": carries,
            "reasons": reasons,
            "shown": base["kind"] != "majority" or above,
        }
    return signals


def study_signals(
    metrics: list[tuple],
    runs: dict[str, dict],
    by: str,
    start: dict[str, dict],
    blimp_pairs: int,
    glue_dev: int,
    targets: dict[str, float] | None = None,
) -> dict[str, dict]:
    """`metric_signals` of a study's runs, grouped into arms by the runs' field `by` (`arm`, `method`); `start`:
    each arm -> the metrics of the model it starts from."""
    values = {
        a: {key: [r[key] for r in runs.values() if r[by] == a and r.get(key) is not None] for key, *_ in metrics}
        for a in start
    }
    return metric_signals(metrics, values, baselines(blimp_pairs, glue_dev, start), start, targets)


def shown(metrics: list[tuple], signals: dict[str, dict]) -> list[tuple]:
    """The metrics a report shows: all but the fine-tuning metrics that do not learn at this scale."""
    return [m for m in metrics if signals.get(m[0], {}).get("shown", True)]
