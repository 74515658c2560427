"""`make compare`: truncation vs distillation vs training from scratch, at equal token budget.

From the same teacher and on the same token shards (the clean `full` corpus with the teacher's tokenizer):
  truncate-<keep>   the teacher's blocks `keep`, then plain pre-training (the paper's method)
  distill-<keep>    a student made of the teacher's blocks `keep`, trained with the DistilGPT-2 loss; by
                    default twice: from `alt` (the truncation arm's blocks: only the loss differs) and from
                    `distil` = 0,2,4,7,9,11 (DistilGPT-2's own initialisation)
  scratch           a random student of the first truncation arm's shape, plain pre-training
  teacher           the teacher itself, for reference (not trained here)
Every trained arm gets the teacher's dropout, the same sample order (a function of the seed), token budget,
optimizer settings and evaluation; the report lists what each arm starts from and what differs. Each is
evaluated like the ablation (WikiText perplexity, held-out perplexity, SST-2), with wall-clock training time
and tokens/s. `--keep-layers alt distil bottom top` compares layer selections too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from cli_config import Check, opt
from eval import EvalError
from eval.studies.comparisons import compare_arms, comparison_lines
from eval.studies.plots import plot_bars, plot_curves
from eval.studies.pretraining import SCALES as PRETRAINING_SCALES
from eval.studies.options import Execution
from eval.studies.pretraining import (
    PretrainStudyOptions,
    evaluate_model,
    evaluate_run,
    pretrain,
    resolve_budget,
    result_items,
    result_key,
    tokenize,
)
from eval.studies.provenance import code_version
from eval.studies.report import fmt, left_out_lines, markdown_table, signal_lines, units_section
from eval.studies.report_html import write_report_files
from eval.studies.runs import read_curve
from eval.studies.signal import COMPARED, METRICS, initial_model, shown, study_signals
from eval.studies.stats import summarize
from eval.studies.teacher_overlap import overlap_lines, teacher_overlap
from eval.studies.units import cached, unit_path
from train.config import KEEP_LAYER_NAMES, layer_list

SCALES = {
    "smoke": PRETRAINING_SCALES["smoke"],
    "default": replace(
        PRETRAINING_SCALES["default"], budget_tokens=100_000
    ),  # 3 seeds x 4 arms in about half an hour on 2 cores
    "large": PRETRAINING_SCALES["large"],
}


TRAINING = "training corpus"  # the one clean corpus every arm trains on, as the overlap section names it


def each_keep_spec() -> Check:
    """Each item names a selection of teacher blocks: alt | distil | bottom | top | 0,2,4."""
    return Check(
        lambda specs: bool(specs) and all(layer_list(k) for k in specs),
        f"each one of {' | '.join(KEEP_LAYER_NAMES)} or a list like 0,2,4",
        ("0;2;4",),
    )


def run_compare(
    out: Path,
    teacher: str,
    clean_dir: str,
    keeps: list[str],
    scale,
    execution: Execution = Execution(),
    command: str = "",
    distill_keeps: list[str] | None = None,
    freeze_pos_embeddings: bool = False,
    explicit_budget: bool = False,
    allow_repeats: bool = False,
    teacher_data: str = "",
) -> dict:
    from train.fingerprint import clean_fingerprint, model_fingerprint
    from train import TrainError
    from train.truncate import parse_keep_layers

    out.mkdir(parents=True, exist_ok=True)
    if not (Path(teacher) / "config.json").exists():
        raise EvalError(f"teacher {teacher} not found: run `make teacher` first (or pass --teacher DIR)")
    if not (Path(clean_dir) / "manifest.json").exists():
        raise EvalError(
            f"--clean {clean_dir}: not a finished clean corpus (no manifest.json); `make compare` makes it from the "
            "study part of the demo corpus (or pass --clean DIR)"
        )
    teacher_cfg = json.loads((Path(teacher) / "config.json").read_text())
    distill_keeps = distill_keeps or [keeps[0]]
    try:  # checked before any work: `distil` needs a 12-layer teacher
        layers = {k: parse_keep_layers(k, teacher_cfg["n_layer"]) for k in dict.fromkeys(keeps + distill_keeps)}
    except TrainError as e:
        raise EvalError(f"{e} (--keep-layers / --distill-keep-layers)") from None
    named = {"alt": " (every other block)", "distil": " (DistilGPT-2's initialisation)"}
    start = {k: f"teacher blocks {v}{named.get(k, '')}" for k, v in layers.items()}
    dropout = teacher_cfg.get("resid_pdrop", 0.0)  # every arm trains with the teacher's dropout
    units = {"teacher": {"kind": "teacher", "fingerprint": model_fingerprint(teacher), "path": teacher}}
    # documents of the training corpus that the teacher's documents hold a near-duplicate of: measured, reported,
    # and left out of the token shards
    overlap, overlap_unit = teacher_overlap(
        teacher_data, {TRAINING: (Path(clean_dir), clean_fingerprint(clean_dir))}, out
    )
    if overlap_unit:
        units["teacher overlap"] = overlap_unit
    tokens, units["tokens"] = tokenize(
        scale,
        Path(clean_dir),
        "full",
        out,
        teacher=teacher,
        teacher_fp=units["teacher"]["fingerprint"],
        exclude=overlap[TRAINING]["ids"] if overlap else [],
    )
    token_manifest = json.loads((tokens / "manifest.json").read_text())
    train_tokens = token_manifest["splits"]["train"]["tokens"]
    scale = resolve_budget(scale, {"full": train_tokens}, explicit_budget, allow_repeats)
    methods, arms = {}, {}  # method: (teacher blocks it starts from, extra `train pretrain` options)
    for keep in keeps:
        methods[f"truncate-{keep}"] = (keep, [])
        arms[f"truncate-{keep}"] = {
            "start": start[keep],
            "loss": "CLM",
            "dropout": dropout,
            "frozen_pos_embeddings": False,
        }
    for keep in distill_keeps:
        # the arm that reproduces DistilGPT-2 (its initialisation) also keeps its position embeddings fixed, as
        # DistilGPT-2's recipe did; the option extends that to the other distillation arms
        frozen = freeze_pos_embeddings or keep == "distil"
        methods[f"distill-{keep}"] = (keep, ["--distill", *(["--freeze-pos-embeddings"] if frozen else [])])
        arms[f"distill-{keep}"] = {
            "start": start[keep],
            "loss": "DistilGPT-2 (5 KL + 2 CLM + 1 cos)",
            "dropout": dropout,
            "frozen_pos_embeddings": frozen,
        }
    n_student = len(layers[keeps[0]])
    # scratch passes the default --keep-layers (unused with --init scratch), so its runs keep their fingerprint
    methods["scratch"] = (
        "alt",
        [
            "--init",
            "scratch",
            "--n-layer",
            str(n_student),
            "--n-embd",
            str(teacher_cfg["n_embd"]),
            "--n-head",
            str(teacher_cfg["n_head"]),
            "--n-positions",
            str(teacher_cfg["n_positions"]),
            "--dropout",
            str(dropout),
        ],
    )
    arms["scratch"] = {
        "start": f"random initialisation, {n_student} layers",
        "loss": "CLM",
        "dropout": dropout,
        "frozen_pos_embeddings": False,
    }
    runs, items = {}, {}
    for method, (keep, extra) in methods.items():
        for seed in scale.seeds:
            name = f"{method}-seed{seed}"
            summary = pretrain(
                scale,
                tokens,
                out / "runs" / name,
                seed,
                teacher=teacher,
                keep_layers=keep,
                execution=execution,
                extra=extra,
                log=out / "logs" / f"train-{name}.log",
            )
            run_dir = Path(summary["run_dir"])
            metrics, units[f"result/{name}"] = evaluate_run(
                summary, (tokens, units["tokens"]), scale, seed, out, name, execution
            )
            units[f"run/{name}"] = summary["unit"]
            items[name] = result_items(units[f"result/{name}"])
            runs[name] = {
                "method": method,
                "seed": seed,
                "summary": summary,
                **metrics,
                "curve": read_curve(run_dir),
                "curve_time": read_curve(run_dir, "elapsed_s"),
                "fingerprints": {
                    "run": summary["unit"]["fingerprint"],
                    "result": units[f"result/{name}"]["fingerprint"],
                },
            }
    path, fp = unit_path(
        out / "results",
        "teacher",
        result_key(units["teacher"], units["tokens"], scale, scale.seeds[0], execution.eval_dtype()),
        ".json",
    )
    teacher_metrics = cached(path, lambda: evaluate_model(Path(teacher), tokens, scale, scale.seeds[0], execution))
    teacher_metrics.pop("items", None)  # per-item scores stay in the cached file
    units["result/teacher"] = {"kind": "evaluation", "fingerprint": fp, "path": str(path)}
    start = {}  # each method: the metrics of the model it starts from (methods with one start share it)
    for method, (keep, extra) in methods.items():
        name = "scratch" if method == "scratch" else f"student-{keep}"
        initial = initial_model(tokens, out, name, scale.seeds[0], teacher=teacher, keep_layers=keep, extra=extra)
        start[method], units[f"initial result/{name}"] = evaluate_run(
            initial, (tokens, units["tokens"]), scale, scale.seeds[0], out, f"initial-{name}", execution
        )
        units[f"initial/{name}"] = initial["unit"]
    for method, arm in arms.items():  # as the runs recorded it
        summaries = [r["summary"] for r in runs.values() if r["method"] == method]
        arm.update(
            dropout=summaries[0].get("dropout", arm["dropout"]),
            frozen_pos_embeddings=summaries[0].get("freeze_pos_embeddings", arm["frozen_pos_embeddings"]),
        )
    first = next(iter(methods))
    results = {
        "command": command,
        "teacher": teacher,
        "scale": scale.__dict__,
        "keeps": keeps,
        "distill_keeps": distill_keeps,
        "methods": list(methods),
        "arms": arms,
        "runs": runs,
        "teacher_metrics": teacher_metrics,
        "start": start,
        "signal": study_signals(METRICS, runs, "method", start, scale.blimp_pairs, scale.glue_dev),
        "train_tokens": train_tokens,
        "teacher_data": teacher_data,
        "teacher_overlap": overlap,
        "left_out_for_teacher_overlap": token_manifest.get("excluded", {}).get("docs_left_out", 0),
        # every method against the first (the paper's), on every compared metric
        "comparisons": [compare_arms(first, m, "method", None, runs, items, group="method") for m in list(methods)[1:]],
        "units": units,
        "code": code_version(),
    }
    write_report(results, out)
    return results


def write_report(results: dict, out: Path) -> None:
    runs, methods, scale = results["runs"], results["methods"], results["scale"]
    signals = results.get("signal", {})
    columns = shown(METRICS, signals)  # fine-tuning columns only where they learn
    keys = [key for key, *_ in columns]
    digits = {key: d for key, _, _, d, _ in columns}
    stat = {m: {k: summarize([r.get(k) for r in runs.values() if r["method"] == m]) for k in keys} for m in methods}
    timing = {
        m: {
            k: summarize([r["summary"][k] for r in runs.values() if r["method"] == m])
            for k in ("train_time_s", "tokens_per_s")
        }
        for m in methods
    }
    params = {m: next(r["summary"]["n_params"] for r in runs.values() if r["method"] == m) for m in methods}
    rows = [
        [
            f"`{m}`",
            f"{params[m] / 1e6:.1f}M",
            fmt(timing[m]["train_time_s"], 0),
            fmt(timing[m]["tokens_per_s"], 0),
            *(fmt(stat[m][k], digits[k]) for k in keys),
        ]
        for m in methods
    ]
    t = results["teacher_metrics"]
    rows.append(["teacher (reference)", "-", "-", "-", *(fmt(summarize([t.get(k)]), digits[k]) for k in keys)])
    headers = ["method", "params", "train time (s)", "tokens/s", *(title for _, title, *_ in columns)]
    plot_curves(
        {m: [r["curve"] for r in runs.values() if r["method"] == m] for m in methods},
        out / "val_loss.png",
        "validation loss vs tokens: truncation vs distillation vs scratch",
    )
    # the paper's claim is about cost: the same curves against wall-clock training time
    plot_curves(
        {m: [r["curve_time"] for r in runs.values() if r["method"] == m] for m in methods},
        out / "val_loss_time.png",
        "validation loss vs training time",
        xlabel="training time (s, this machine)",
    )
    if "sst2_acc" in keys:
        plot_bars(
            {"SST-2 accuracy": {m: stat[m]["sst2_acc"] for m in methods}},
            out / "sst2.png",
            "SST-2 dev accuracy",
            "accuracy",
        )
    lines = [
        "# Truncation vs distillation vs scratch",
        "",
        f"Produced by `{results['command']}` (all settings in `results.json`): teacher `{results['teacher']}`, "
        f"{scale['budget_tokens']:,} tokens per run "
        f"({scale['budget_tokens'] / results['train_tokens']:.2f} epochs of the {results['train_tokens']:,} "
        "training tokens), "
        f"seeds {scale['seeds']}, the same token shards for every method.",
        "",
        markdown_table(headers, rows),
        "",
        "WikiText perplexity by two protocols: a sliding window "
        "(each token scored with up to context - 1 tokens before it) "
        "and Hugging Face run_clm.py's non-overlapping blocks of the model's context "
        "(the protocol of the paper's WikiText-103 numbers).",
        "",
        *left_out_lines(signals),
        *arms_section(results),
        *signal_lines(signals),
        "## Is the difference real?",
        "",
    ]
    compared = [c for c in columns if c[0] in COMPARED]
    for c in results.get("comparisons", []):
        lines += comparison_lines(c, compared)
    lines += [
        "",
        *overlap_lines(
            results.get("teacher_overlap"),
            results.get("teacher_data", ""),
            {TRAINING: {"left_out_for_teacher_overlap": results.get("left_out_for_teacher_overlap", 0)}},
        ),
        "",
        "Distillation runs the teacher forward on every batch: its time per token includes that cost. The second "
        "plot puts the methods on a common cost axis: where a curve stands at a given training time.",
        "",
        "![validation loss](val_loss.png)",
        "",
        "![validation loss vs time](val_loss_time.png)",
        "",
        *(["![SST-2](sst2.png)", ""] if "sst2_acc" in keys else []),
        *units_section(results["units"], results.get("code")),
    ]
    page = write_report_files(out, results, "Truncation vs distillation vs scratch", "\n".join(lines) + "\n")
    print(f"\ncompare report: {page} (also report.md)")
    print(markdown_table(headers, rows))


def arms_section(results: dict) -> list[str]:
    """What each arm starts from, and what is the same for all of them."""
    arms, scale = results.get("arms", {}), results["scale"]
    if not arms:
        return []
    rows = [
        [f"`{m}`", a["start"], a["loss"], f"{a['dropout']:g}", "yes" if a["frozen_pos_embeddings"] else "no"]
        for m, a in arms.items()
    ]
    return [
        "## The arms",
        "",
        markdown_table(["method", "starts from", "loss", "dropout", "position embeddings frozen"], rows),
        "",
        f"The same for every arm: {scale['budget_tokens']:,} tokens, batch size {scale['batch_size']}, learning rate "
        f"{scale['lr']:g} with the same warmup and cosine schedule, the same token shards read in the same order (the "
        "sample order is a function of the seed), dropout as listed, and the same evaluation. A `truncate-K` and "
        "`distill-K` pair differs only in the loss (and distillation's frozen position embeddings, when listed); "
        "`distill` arms with different K differ only in the teacher blocks they start from; the teacher's embeddings, "
        "final layer norm and head come with every non-scratch arm.",
        "",
    ]


@dataclass
class CompareConfig(PretrainStudyOptions):
    output: str = opt("runs/compare", "study folder: report, results and every cached unit", metavar="DIR")
    clean: str = opt(
        "data/clean/study-full",
        "clean-corpus directory to pre-train on (make compare: the study part of the demo corpus, cleaned with full)",
        metavar="CLEAN_DIR",
    )
    teacher_data: str = opt(
        "",
        "the clean corpus the teacher was trained on (make teacher: data/clean/teacher-full): the report measures "
        "its overlap with --clean and the evaluation sets, and the overlapping documents are left out; empty: not "
        "measured",
        metavar="CLEAN_DIR",
    )
    keep_layers: list[str] = opt(
        ["alt"],
        "teacher blocks of the truncation arms, one arm each (alt, distil, bottom, "
        "top, or a list like 0,2,4); the first also sets the scratch arm's depth",
        check=each_keep_spec(),
        metavar="LAYERS",
    )
    distill_keep_layers: list[str] = opt(
        ["alt", "distil"],
        "teacher blocks the distillation arms start from: alt (as "
        "truncation: isolates the loss) and distil = 0,2,4,7,9,11 (DistilGPT-2's; "
        "12-layer teachers only)",
        check=each_keep_spec(),
        metavar="LAYERS",
    )
    freeze_pos_embeddings: bool = opt(
        False,
        "every distillation arm keeps the position embeddings fixed, as "
        "DistilGPT-2 did (the distil arm, DistilGPT-2's own recipe, always does)",
    )


Settings = CompareConfig


def run(cfg: CompareConfig, args) -> dict:
    return run_compare(
        Path(cfg.output),
        cfg.teacher,
        cfg.clean,
        list(cfg.keep_layers),
        cfg.scale_of(SCALES),
        cfg.execution(),
        args.command_line,
        list(cfg.distill_keep_layers),
        cfg.freeze_pos_embeddings,
        explicit_budget=bool(cfg.budget_tokens),
        allow_repeats=cfg.allow_repeats,
        teacher_data=cfg.teacher_data,
    )
