"""`make ablation`: does cleaning the pre-training data help the truncated student, and which step?

Only the data differs between arms. Two studies (`--study`):
- `presets` (default): the cleaning presets none, paper, full of the same raw corpus;
- `steps`: the `full` recipe with each of its steps left out (language ID, Gopher repetition, Gopher quality,
  C4, FineWeb, exact dedup, near dedup), and the steps added one at a time in that order, each arm cleaned
  with `corpus-clean --preset full --set ...`.
For each arm: tokenize with the teacher's tokenizer, pre-train the same truncated student (teacher blocks `alt`)
from the same teacher, with the same token budget and the same seeds, validate every run on one shared
held-out set (so the learning curves compare), then evaluate each run on the same data: WikiText test
perplexity, perplexity on the held-out split of the *raw* corpus (whole near-duplicate clusters), and SST-2
accuracy after fine-tuning.

The teacher must not have seen the study's data: `make teacher` trains it on the teacher part of the raw
corpus (`python -m train partition`), the arms are cleaned from the study part, and with `--teacher-data` the
report measures the near-duplicate overlap between the teacher's documents and every arm's and the
evaluation sets' (it must be 0).

Everything lands in `<out>/`: report.md, report.html, results.json, plots. Every unit of work (clean variant,
token shards, run, evaluation) is cached there in a folder named by the fingerprint of its settings, its
inputs and the code that shapes it: an interrupted ablation resumes, a rerun with other settings or other code
makes new units beside the old ones (`--reuse-stale` reuses units of other code, flagged in the report), and
the report lists every unit's fingerprint.

Data quantity would confound the comparison: the budget is at most one pass over the smallest arm (the scale's
budget is lowered to it; more needs --allow-repeats), and the report gives each arm's epochs. Each comparison
states the mean difference with a 95% confidence interval over seeds (Welch's t), its minimum detectable
difference, and paired statistics on the items both arms were scored on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cli_config import opt, positive
from eval import EvalError
from eval.studies.options import each_of
from eval.studies.plots import plot_bands, plot_bars
from eval.studies.pretraining import (
    SCALES as PRETRAINING_SCALES,
    PretrainStudyOptions,
    Scale,
    evaluate_run,
    pretrain,
    resolve_budget,
    result_items,
    tokenize,
)
from eval.studies.provenance import code_version
from eval.studies.report import fmt, left_out_lines, markdown_table, signal_lines, units_section
from eval.studies.report_html import write_report_files
from eval.studies.runs import python_module, read_curve, run_command
from eval.studies.comparisons import arm_stat, compare_arms, comparison_lines, paired
from eval.studies.teacher_overlap import decontamination_files, overlap_lines, teacher_overlap
from eval.studies.signal import METRICS as EVALUATED, initial_model, shown, study_signals
from eval.studies.stats import (
    curve_band,
    half_width,
    items_for_half_width,
    seeds_for_half_width,
    summarize,
)
from eval.studies.units import locate, record_unit
from safe_output import atomic_json
from train.config import keep_layers_check

# The default scale: 10 seeds at lr 3e-4. The students continue a trained model: at lr 1e-3 the last steps' noise
# set the seed spread of WikiText perplexity at 3.7% of the mean (29 seeds for the +-2% power target); at 3e-4 it
# measured ~2%: 10 seeds reach +-22.5 against +-21.8, 3% short (docs/studies-design.md), within the 2-hour budget
# that 12 seeds would exceed. smoke and large as shared.
SCALES = {
    **PRETRAINING_SCALES,
    "default": replace(PRETRAINING_SCALES["default"], seeds=list(range(10)), lr=3e-4),
}
POWER_TARGET = 0.02  # the full vs none WikiText interval should be at most +-2% of the none mean

# The metrics of every model (`signal.METRICS`: key, column title, lower is better, digits, paired test); here the
# held-out set is the raw corpus's.
METRICS = [(k, "raw held-out ppl" if k == "heldout_ppl" else title, *rest) for k, title, *rest in EVALUATED]

# the steps of the `full` recipe in the order the study adds them (the recipe tests Gopher quality before Gopher
# repetition; both only test, so each arm keeps the same pages in either order): (name, the --set that leaves it
# out, its name in stats.json)
STEPS = [
    ("language", "filters.languages=null", "language"),
    ("gopher_repetition", "filters.gopher_repetition=null", "gopher_repetition"),
    ("gopher_quality", "filters.gopher_quality=null", "gopher_quality"),
    ("c4_quality", "filters.c4_quality=null", "c4_quality"),
    ("fineweb_quality", "filters.fineweb_quality=null", "fineweb_quality"),
    ("exact_dedup", "exact_dedup=false", "exact_dedup"),
    ("near_dedup", "near_dedup=false", "minhash"),
]
STEP_OFF = {name: setting for name, setting, _ in STEPS}
STEP_STAT = {name: stat for name, _, stat in STEPS}


PRESETS = ("none", "paper", "full")  # corpus-clean's recipes (not imported: that would load datatrove here)


@dataclass
class Arm:
    name: str
    preset: str
    settings: list[str] = field(default_factory=list)  # corpus-clean --set overrides


@dataclass
class AblationConfig(PretrainStudyOptions):
    output: str = opt("runs/ablation", "study folder: report, results and every unit, by fingerprint", metavar="DIR")
    study: str = opt(
        "presets",
        "presets: compare the cleaning presets (--presets); steps: the full recipe with each "
        "step left out and the steps added one at a time (--steps)",
        choices=("presets", "steps"),
    )
    input: list[str] = opt(
        ["data/demo/jsonl"], "raw corpus (make ablation: the study part, data/partition/study)", metavar="PATH"
    )
    clean_root: str = opt(
        "data/clean", "where `make clean-corpus` put its variants (used with --no-decontaminate)", metavar="DIR"
    )
    teacher_data: str = opt(
        "",
        "the clean corpus the teacher was trained on (make teacher: data/clean/teacher-full): "
        "the report measures its overlap with every arm and the evaluation sets; empty: not "
        "measured",
        metavar="CLEAN_DIR",
    )
    keep_layers: str = opt(
        "alt",
        "teacher blocks the student keeps (alt, distil, bottom, top or a list like 0,2,4)",
        check=keep_layers_check(),
    )
    presets: list[str] = opt(
        ["none", "paper", "full"],
        "--study presets: cleaning presets to compare (none is always made: its held-out split is shared)",
        check=each_of(PRESETS),
        metavar="PRESET",
    )
    steps: list[str] = opt(
        [name for name, _, _ in STEPS],
        "--study steps: the steps of the full recipe to study",
        check=each_of(tuple(STEP_OFF)),
        metavar="STEP",
    )
    decontaminate: bool = opt(
        True,
        "clean each preset here, decontaminated against the evaluation sets (off: train "
        "on `make clean-corpus`'s outputs as they are; presets study only)",
    )
    workers: int = opt(2, "corpus-clean worker processes", check=positive())
    reuse_stale: bool = opt(
        False,
        "reuse units (clean corpora, shards, runs, evaluations) made under the same "
        "settings by other code of the modules that shape them, flagged in the report "
        "(default: they are made anew by this code)",
    )

    def validate(self):
        super().validate()
        if self.study == "steps" and not self.decontaminate:
            raise ValueError(
                "--no-decontaminate uses `make clean-corpus`'s presets as they are; the steps study cleans its own arms"
            )


def study_arms(cfg: AblationConfig) -> tuple[list[Arm], list[tuple[str, str, str, str | None]]]:
    """(the arms, the comparisons (a, b, kind, step)): presets against `none`; or, per step, full against full
    without it (kind `leave out`), and each arm of the chain base -> +step ... -> full against the arm before it
    (`add`). Arms with the same settings are one arm (the last link of the chain is full without the last step)."""
    if cfg.study == "presets":
        arms = [Arm(p, p) for p in cfg.presets]
        return arms, [(p, "none", "preset", None) for p in cfg.presets if p != "none" and "none" in cfg.presets]
    steps = [name for name, _, _ in STEPS if name in cfg.steps]  # pipeline order
    by_settings: dict[tuple, Arm] = {}

    def arm(name: str, off: list[str]) -> Arm:
        settings = tuple(STEP_OFF[s] for s in off)
        return by_settings.setdefault(settings, Arm(name, "full", list(settings)))

    full = arm("full", [])
    comparisons = [(full.name, arm(f"full-no-{s}", [s]).name, "leave out", s) for s in steps]
    chain = [arm("base" if k == 0 else f"+{steps[k - 1]}", steps[k:]) for k in range(len(steps))] + [full]
    comparisons += [(chain[k + 1].name, chain[k].name, "add", steps[k]) for k in range(len(steps))]
    return list(by_settings.values()), comparisons


def clean_variant(cfg: AblationConfig, arm: Arm, out: Path, raw_fp: str, eval_files: list[Path]) -> tuple[Path, dict]:
    """The clean corpus of one arm, decontaminated, keyed by the raw input's content, the preset and its settings,
    the evaluation files and the cleaning code; or, with --no-decontaminate, `make clean-corpus`'s output as it is."""
    from train.fingerprint import clean_fingerprint, files_fingerprint

    code = None
    if not cfg.decontaminate:
        if arm.settings:
            raise EvalError(
                "--no-decontaminate uses `make clean-corpus`'s presets as they are; the steps study cleans its own arms"
            )
        directory, key_fp = Path(cfg.clean_root) / arm.preset, None
    else:
        key = {"preset": arm.preset, "input": raw_fp, "decontaminate": files_fingerprint(eval_files)}
        if arm.settings:
            key["settings"] = arm.settings
        directory, key_fp, code = locate(
            out / "clean",
            arm.name.replace("+", "plus-"),
            key,
            "clean corpus",
            "manifest.json",
            reuse_stale=cfg.reuse_stale,
        )
    if not (directory / "manifest.json").exists():
        args = [
            "--input",
            *cfg.input,
            "--output",
            str(directory),
            "--preset",
            arm.preset,
            "--workers",
            str(cfg.workers),
        ]
        args += [a for s in arm.settings for a in ("--set", s)]
        if cfg.decontaminate:
            args += ["--decontaminate", *map(str, eval_files)]
        run_command(python_module("corpus.cli", *args), out / "logs" / f"clean-{directory.name}.log")
    if code:
        record_unit(directory, key_fp, code)
    content = clean_fingerprint(directory)
    return directory, {
        "kind": "clean corpus",
        "fingerprint": key_fp or content,
        "content": content,
        "path": str(directory),
        **({"code": code} if code else {}),
    }


def run_ablation(cfg: AblationConfig, scale: Scale, command: str = "", explicit_budget: bool = False) -> dict:
    from train.fingerprint import files_fingerprint, model_fingerprint

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    if not (Path(cfg.teacher) / "config.json").exists():
        raise EvalError(f"teacher {cfg.teacher} not found: run `make teacher` first (or pass --teacher DIR)")
    missing = [str(p) for p in cfg.input if not Path(p).exists()]
    if missing:
        raise EvalError(
            f"--input {missing[0]} not found (the study part of the demo corpus is made by `make partition`)"
        )
    unknown = sorted(set(cfg.steps) - set(STEP_OFF))
    if unknown:
        raise EvalError(f"--steps {unknown[0]}: unknown step; choose from {', '.join(STEP_OFF)}")
    arms, comparisons = study_arms(cfg)
    teacher_fp = model_fingerprint(cfg.teacher)
    units = {"teacher": {"kind": "teacher", "fingerprint": teacher_fp, "path": cfg.teacher}}
    raw_fp = files_fingerprint(cfg.input)
    units["raw input"] = {"kind": "raw input", "fingerprint": raw_fp, "path": " ".join(cfg.input)}
    # the raw variant always: its held-out split is every arm's held-out evaluation and validation set
    made = ([] if any(a.name == "none" for a in arms) else [Arm("none", "none")]) + arms
    cleaned = {}
    for arm in made:
        cleaned[arm.name], units[f"clean/{arm.name}"] = clean_variant(cfg, arm, out, raw_fp, decontamination_files())
    overlap, units["teacher overlap"] = teacher_overlap(
        cfg.teacher_data, {a: (cleaned[a], units[f"clean/{a}"]["fingerprint"]) for a in cleaned}, out, cfg.reuse_stale
    )
    if units["teacher overlap"] is None:
        del units["teacher overlap"]
    variants = {}
    for arm in made:
        clean = cleaned[arm.name]
        # cleaning changes texts (cut lines): a document apart from the teacher's by raw text may come out a
        # near-duplicate of one; it is left out of the arm's token shards, so no student reads it
        tokens, units[f"tokens/{arm.name}"] = tokenize(
            scale,
            clean,
            arm.name.replace("+", "plus-"),
            out,
            teacher=cfg.teacher,
            teacher_fp=teacher_fp,
            reuse_stale=cfg.reuse_stale,
            exclude=overlap[arm.name]["ids"] if overlap else [],
        )
        corpus_stats = json.loads((clean / "stats.json").read_text())
        token_manifest = json.loads((tokens / "manifest.json").read_text())
        splits = token_manifest["splits"]
        variants[arm.name] = {
            "preset": arm.preset,
            "settings": arm.settings,
            "clean_dir": str(clean),
            "tokens_dir": str(tokens),
            "stats": corpus_stats,
            "train_tokens": splits["train"]["tokens"],
            "tokens": splits["train"]["tokens"] + splits["val"]["tokens"],
            "split": token_manifest.get("split", {}),
            "left_out_for_teacher_overlap": token_manifest.get("excluded", {}).get("docs_left_out", 0),
            "docs_kept": corpus_stats["output"]["documents"],
            "docs_in": corpus_stats["input"]["documents"],
            "fingerprints": {
                "clean": units[f"clean/{arm.name}"]["fingerprint"],
                "tokens": units[f"tokens/{arm.name}"]["fingerprint"],
            },
        }
    scale = resolve_budget(
        scale, {a.name: variants[a.name]["train_tokens"] for a in arms}, explicit_budget, cfg.allow_repeats
    )
    heldout = (Path(variants["none"]["tokens_dir"]), units["tokens/none"])
    runs, items = {}, {}
    for arm in arms:
        for seed in scale.seeds:
            name = f"{arm.name}-seed{seed}"
            summary = pretrain(
                scale,
                Path(variants[arm.name]["tokens_dir"]),
                out / "runs" / name.replace("+", "plus-"),
                seed,
                teacher=cfg.teacher,
                keep_layers=cfg.keep_layers,
                execution=cfg.execution(),
                val_tokens=heldout[0],
                log=out / "logs" / f"train-{name}.log",
                reuse_stale=cfg.reuse_stale,
            )
            metrics, units[f"result/{name}"] = evaluate_run(
                summary,
                heldout,
                scale,
                seed,
                out,
                name.replace("+", "plus-"),
                cfg.execution(),
                reuse_stale=cfg.reuse_stale,
            )
            units[f"run/{name}"] = summary["unit"]
            items[name] = result_items(units[f"result/{name}"])
            runs[name] = {
                "arm": arm.name,
                "preset": arm.preset,
                "seed": seed,
                "summary": summary,
                **metrics,
                "curve": read_curve(Path(summary["run_dir"])),
                "fingerprints": {
                    "run": summary["unit"]["fingerprint"],
                    "result": units[f"result/{name}"]["fingerprint"],
                },
            }
    results = {
        "command": command,
        "config": asdict(cfg),
        "scale": asdict(scale),
        "arms": [a.name for a in arms],
        "variants": variants,
        "runs": runs,
        "teacher_overlap": overlap,
        "comparisons": [compare_arms(a, b, kind, step, runs, items) for a, b, kind, step in comparisons],
        "units": units,
        "code": code_version(),
    }
    results["power"] = power_check(results, items)
    # the student before any training (every arm starts from it): the bar its perplexities must beat
    initial = initial_model(
        heldout[0],
        out,
        "student",
        scale.seeds[0],
        teacher=cfg.teacher,
        keep_layers=cfg.keep_layers,
        reuse_stale=cfg.reuse_stale,
    )
    start, units["initial result/student"] = evaluate_run(
        initial, heldout, scale, scale.seeds[0], out, "initial-student", cfg.execution(), reuse_stale=cfg.reuse_stale
    )
    units["initial/student"] = initial["unit"]
    results["start"] = start
    results["signal"] = study_signal(results, start)
    atomic_json(out / "config.json", {"command": command, "ablation": asdict(cfg), "scale": asdict(scale)})
    write_report(results, out)
    return results


# ---------------------------------------------------------------- statistics of the comparisons
def study_signal(results: dict, start: dict) -> dict:
    """Whether each metric carries signal at this scale (`signal.metric_signals`): every arm starts from `start`,
    the model before training; WikiText perplexity is asked to resolve the power target where there is one."""
    scale, power = results["scale"], results.get("power")
    return study_signals(
        METRICS,
        results["runs"],
        "arm",
        {a: start for a in results["arms"]},
        scale["blimp_pairs"],
        scale["glue_dev"],
        {"wikitext_ppl": power["target"]} if power else {},
    )


def power_check(results: dict, items: dict) -> dict | None:
    """Does the budget reach the target (95% interval of the full vs none WikiText difference at most +-2% of the
    none mean)? If not: seeds per arm that would at the measured spread, and evaluation items for the paired
    interval."""
    runs = results["runs"]
    if not {"full", "none"} <= {r["arm"] for r in runs.values()}:
        return None
    full, none = arm_stat(runs, "full", "wikitext_ppl"), arm_stat(runs, "none", "wikitext_ppl")
    target = POWER_TARGET * none["mean"]
    check = {"target": target, "target_fraction": POWER_TARGET, "seeds": [full["n"], none["n"]]}
    half = half_width(full["std"], full["n"], none["std"], none["n"])
    check["half_width"] = half
    check["met"] = half is not None and half <= target
    if half is not None and not check["met"]:
        check["seeds_needed"] = seeds_for_half_width(full["std"], none["std"], target)
    pair = paired("full", "none", "wikitext_ppl", runs, items)
    if pair:
        paired_half = (pair["high"] - pair["low"]) / 2
        check.update(
            paired_half_width=paired_half,
            paired_items=pair["items"],
            paired_items_needed=items_for_half_width(paired_half, pair["items"], target),
        )
    return check


def power_lines(power: dict | None) -> list[str]:
    if power is None:
        return []
    head = (
        f"Target: the 95% interval of the `full` vs `none` WikiText perplexity difference within "
        f"±{100 * power['target_fraction']:.0f}% of the `none` mean (±{power['target']:.1f})."
    )
    if power["half_width"] is None:
        return ["## Power", "", f"{head} Not measurable: fewer than 2 seeds per arm.", ""]
    state = (
        f"**Met**: ±{power['half_width']:.1f} with {power['seeds'][0]} seeds per arm."
        if power["met"]
        else f"**Not met**: ±{power['half_width']:.1f} with {power['seeds'][0]} seeds per arm; at the measured spread "
        + (
            f"{power['seeds_needed']} seeds per arm would reach it"
            if power.get("seeds_needed")
            else "no number of seeds up to 10,000 would reach it"
        )
        + " (`--seeds`). More training tokens change the spread itself, so they cannot be predicted from this "
        "run."
    )
    lines = ["## Power", "", f"{head} {state}"]
    if "paired_half_width" in power:
        lines.append(
            f"The paired interval over {power['paired_items']:,} WikiText windows is "
            f"±{power['paired_half_width']:.1f}; it ignores the spread between seeds, and would reach the "
            f"target with about {power['paired_items_needed']:,} windows if the seed spread were nil."
        )
    return [*lines, ""]


# ---------------------------------------------------------------- the report
def step_rows(results: dict) -> list[list]:
    """Per compared step: documents and tokens it removed where it was added and where it was left out."""
    variants, rows = results["variants"], []
    for c in results["comparisons"]:
        if c["kind"] == "preset":
            continue
        # a is the arm with the step, b the arm without it
        with_step, without, step = variants[c["a"]], variants[c["b"]], c["step"]
        stat = next((s for s in with_step["stats"]["steps"] if s["step"] == STEP_STAT.get(step)), None)
        wiki = c["metrics"].get("wikitext_ppl", {})
        ci = wiki.get("welch")
        rows.append(
            [
                f"`{step}`",
                c["kind"],
                f"`{c['b']}` -> `{c['a']}`",
                f"{without['docs_kept'] - with_step['docs_kept']:,}",
                f"{without['tokens'] - with_step['tokens']:,}",
                f"{stat['docs_removed']:,}" if stat else "-",
                f"{ci['diff']:+.1f} [{ci['low']:+.1f}, {ci['high']:+.1f}]" if ci else "-",
                f"{wiki['mdd']:.1f}" if wiki.get("mdd") is not None else "-",
            ]
        )
    return rows


def write_report(results: dict, out: Path) -> None:
    cfg, scale, variants = results["config"], results["scale"], results["variants"]
    runs, arms = results["runs"], results["arms"]
    stat = {a: {m[0]: arm_stat(runs, a, m[0]) for m in METRICS} for a in arms}
    signals = results.get("signal", {})
    columns = shown(METRICS, signals)  # fine-tuning columns only where they learn
    train_time = {a: summarize([r["summary"]["train_time_s"] for r in runs.values() if r["arm"] == a]) for a in arms}
    trained = {a: max(r["summary"]["tokens"] for r in runs.values() if r["arm"] == a) for a in arms}
    rows = []
    for a in arms:
        v = variants[a]
        decontam = next((s["docs_removed"] for s in v["stats"]["steps"] if s["step"] == "decontaminate"), None)
        rows.append(
            [
                f"`{a}`",
                f"{v['docs_kept']:,} / {v['docs_in']:,}",
                f"{v['train_tokens']:,}",
                f"{trained[a] / v['train_tokens']:.2f}",
                "-" if decontam is None else f"{decontam:,}",
                *[fmt(stat[a][key], digits) for key, _, _, digits, _ in columns],
                fmt(train_time[a], 0),
            ]
        )
    headers = [
        "data",
        "docs kept",
        "train tokens",
        "epochs",
        "decontaminated docs",
        *[m[1] for m in columns],
        "train time (s)",
    ]
    bands = {
        a: curve_band([[(x, _exp(y)) for x, y in r["curve"]] for r in runs.values() if r["arm"] == a]) for a in arms
    }
    results["curves"] = {a: [list(p) for p in band] for a, band in bands.items()}
    plot_bands(
        bands,
        out / "val_ppl.png",
        f"validation perplexity vs tokens: mean and 95% band over {len(scale['seeds'])} seeds",
        "validation perplexity (the raw held-out split)",
    )
    removal = {}
    for a in arms:
        for s in variants[a]["stats"]["steps"]:
            removal.setdefault(s["step"], {})[a] = {
                "mean": 100 * s["bytes_removed"] / max(1, s["bytes_in"]),
                "std": 0.0,
            }
    if removal:
        plot_bars(
            removal, out / "cleaning_steps.png", "what each cleaning step removed", "% of the bytes reaching the step"
        )
    stale = [name for name, u in results["units"].items() if (u.get("code") or {}).get("stale")]
    title = "Data-cleaning ablation" + (": one step at a time" if cfg["study"] == "steps" else "")
    lines = [
        f"# {title}",
        "",
        *(
            [
                f"**Stale units reused (--reuse-stale)**: {len(stale)} units were made by other code than this run's "
                f"({', '.join(f'`{s}`' for s in stale[:8])}{', ...' if len(stale) > 8 else ''}); "
                "their numbers may not be "
                "what this code computes. Rerun without --reuse-stale to remake them.",
                "",
            ]
            if stale
            else []
        ),
        f"Produced by `{results['command']}` (config in `config.json`, every number below read from this run's files).",
        f"Student: teacher `{cfg['teacher']}` truncated to layers `{cfg['keep_layers']}`, pre-trained on "
        f"{scale['budget_tokens']:,} tokens per run (batch {scale['batch_size']} x {scale['block_size']}, "
        f"lr {scale['lr']}), seeds {scale['seeds']}. Only the pre-training data differs between rows.",
        "",
        markdown_table(headers, rows),
        "",
        "Mean ± standard deviation over seeds. Epochs: tokens each run trained on / the arm's training tokens"
        + (
            " (--allow-repeats: an arm may repeat data). "
            if cfg.get("allow_repeats")
            else " (at most one pass: no arm repeats data). "
        )
        + f"WikiText: first {scale['wikitext_tokens'] or 'all'} tokens of the test split, "
        f"two protocols: a sliding window (each token scored with up to context - 1 tokens before it) and Hugging Face "
        f"run_clm.py's non-overlapping blocks of the model's context (the protocol of the paper's WikiText-103 "
        f"numbers; less context per token, so higher). Raw held-out: the `none` variant's validation documents (held "
        f"out of every arm). SST-2: {scale['glue_train'] or 'all'} training examples, {scale['glue_epochs']} epochs, "
        f"peak lr {scale['glue_lr']:g}, dev set. Bits per byte: the sliding window's loss in bits over the "
        f"UTF-8 bytes it scored (comparable across tokenizers). BLiMP: zero-shot accuracy on "
        f"{scale['blimp_pairs'] or 'all 1,000'} pairs of each of the 67 paradigms (chance 50%).",
        "",
        *left_out_lines(signals),
    ]
    if cfg["study"] == "steps":
        lines += [
            *(
                f"- `{a}`: `--preset {variants[a]['preset']}`"
                + "".join(f" `--set {s}`" for s in variants[a]["settings"])
                for a in arms
            ),
            "",
        ]
    lines += [
        *overlap_lines(results.get("teacher_overlap"), cfg.get("teacher_data", ""), variants),
        *leakage_lines(variants),
        *power_lines(results.get("power")),
        *signal_lines(signals),
    ]
    if cfg["study"] == "steps":
        lines += [
            "## What each step buys",
            "",
            "For each step: where it was added to the chain (`add`: the arm before it -> the arm with it) and "
            "where it was left out of `full` (`leave out`: full without it -> full). Removed: documents and "
            "tokens (training + held out) of the arm without the step minus those of the arm with it, and the "
            "documents the step itself dropped in the arm with it. WikiText difference: arm with the step minus "
            "arm without (negative: the step helps), 95% CI over seeds.",
            "",
            markdown_table(
                [
                    "step",
                    "how",
                    "arms",
                    "docs removed",
                    "tokens removed",
                    "docs dropped by the step",
                    "WikiText ppl difference [95% CI]",
                    "MDD",
                ],
                step_rows(results),
            ),
            "",
        ]
    lines += [
        "## Is the difference real?",
        "",
        "Each comparison: the mean difference over seeds with its 95% interval (Welch's t), its minimum "
        "detectable difference (the smallest true difference this many seeds find with probability 0.8 at "
        "alpha 0.05, from the seed spread), and the paired statistic on the items both arms were scored on "
        "(WikiText windows, held-out blocks: a per-item paired bootstrap; SST-2 dev examples: McNemar's test), "
        "which removes the spread between items but not between seeds.",
        "",
    ]
    for c in results["comparisons"]:
        lines += [
            f"### `{c['a']}` vs `{c['b']}`" + (f" ({c['kind']})" if c["kind"] != "preset" else ""),
            "",
            *comparison_lines(c, columns),
            "",
        ]
    lines += [
        "Where a gap could come from: the arms differ in what text they hold (language, boilerplate, duplicates) and, "
        "when the budget exceeds an arm's size, in how often it repeats its data (epochs column). With epochs <= 1 for "
        "every arm, no arm repeats data, so a gap reflects what the text is, not how much there is.",
        "",
        "## Curves",
        "",
        "![validation perplexity](val_ppl.png)",
        "",
        "Validation perplexity on one shared set (the raw held-out split, the same text for every arm) against tokens "
        "seen: the mean over seeds and its 95% band, so a reader sees whether a ranking is stable or a crossing is "
        "coming.",
        "",
        "![cleaning steps](cleaning_steps.png)",
        "",
        "## What the cleaning removed",
        "",
    ]
    for a in arms:
        steps = variants[a]["stats"]["steps"]
        if steps:
            lines.append(f"### `{a}` (full report: `{variants[a]['clean_dir']}/report.md`)")
            lines.append("")
            lines.append(
                markdown_table(
                    ["step", "docs in", "docs removed", "MB removed"],
                    [
                        [s["step"], f"{s['docs_in']:,}", f"{s['docs_removed']:,}", f"{s['bytes_removed'] / 1e6:.2f}"]
                        for s in steps
                    ],
                )
            )
            lines.append("")
    lines += units_section(results["units"], results.get("code"))
    page = write_report_files(out, results, title, "\n".join(lines) + "\n")
    print(f"\nablation report: {page} (also report.md)")
    print(markdown_table(headers, rows))


def _exp(x: float) -> float:
    import math

    return math.exp(x)


def leakage_lines(variants: dict) -> list[str]:
    """How much held-out text has a near-duplicate in training, for an id-hash split and for the cluster split used."""
    rows = []
    for p, v in variants.items():
        leak = v.get("split", {}).get("leakage")
        if leak:
            cells = [
                f"{leak[m]['leaked_docs']:,} / {leak[m]['val_docs']:,} ({100 * leak[m]['leaked_fraction']:.1f}%)"
                for m in ("id-hash", "cluster")
            ]
            rows.append([f"`{p}`", f"{v['split']['near_duplicate_pairs']:,}", *cells])
    if not rows:
        return []
    return [
        "### Held-out leakage",
        "",
        "Validation documents with a near-duplicate (word 5-gram Jaccard >= 0.8) in the training split: had "
        "documents been held out by a hash of their id, and with the split used (whole near-duplicate clusters "
        "held out).",
        "",
        markdown_table(["data", "near-duplicate pairs", "held out by id hash", "held out by cluster (used)"], rows),
        "",
    ]


Settings = AblationConfig


def run(cfg: AblationConfig, args) -> dict:
    return run_ablation(cfg, cfg.scale_of(SCALES), args.command_line, explicit_budget=bool(cfg.budget_tokens))
