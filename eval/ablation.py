"""`make ablation`: does cleaning the pre-training data help the truncated student?

Only the data differs between variants. For each cleaning preset (none, paper, full) of the same raw
corpus: tokenize with the teacher's tokenizer, pre-train the same truncated student (teacher blocks
`alt`) from the same teacher, with the same token budget and the same seeds, then evaluate each run on
the same data: WikiText test perplexity, perplexity on the held-out split of the *raw* corpus (documents
picked by a hash of their id, so they are held out of every variant), and SST-2 accuracy after
fine-tuning. Everything lands in `<out>/`: report.md, results.json, plots; every unit of work is cached
there, so an interrupted ablation resumes.

Data quantity is a confounder (DESIGN.md): the budget defaults to at most one pass over the smallest
variant, so no variant repeats data, and the report gives each variant's epochs.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from eval.perplexity import ROOT, WIKITEXT_TEST, EvalError
from eval.report import (cached, fmt, markdown_table, noise_sentence, plot_bars, plot_curves, python_module, read_curve,
                         run_command, summarize)
from eval.report_html import write_study_html
from safe_output import atomic_json, atomic_write

GLUE_DEV_SETS = [ROOT.parent / "shared" / "data" / "glue" / t / "dev.tsv" for t in ("SST-2", "CoLA", "RTE")]


@dataclass
class Scale:
    budget_tokens: int  # pre-training tokens per run
    seeds: list[int]
    eval_every: int  # steps between validation points of the loss curves
    wikitext_tokens: int  # WikiText test tokens scored (0: all)
    heldout_blocks: int  # raw held-out blocks scored (0: all)
    glue_train: int  # SST-2 training examples (0: all 67k)
    glue_epochs: int
    glue_dev: int = 0  # SST-2 dev examples (0: all 872)
    batch_size: int = 16
    lr: float = 1e-3
    block_size: int = 128
    val_fraction: float = 0.02  # documents held out (by a hash of their id) for validation


SCALES = {
    # a few minutes: used by the tests, and to try the machinery
    "smoke": Scale(budget_tokens=6_144, seeds=[0, 1], eval_every=1, wikitext_tokens=2_000, heldout_blocks=16,
                   glue_train=64, glue_epochs=1, glue_dev=64, batch_size=8, block_size=32, val_fraction=0.3),
    # about an hour on 2 CPU cores (after `make teacher`)
    "default": Scale(budget_tokens=600_000, seeds=[0, 1], eval_every=50, wikitext_tokens=60_000, heldout_blocks=400,
                     glue_train=2_000, glue_epochs=2),
    # a GPU-sized run: more tokens, three seeds, full evaluation sets
    "large": Scale(budget_tokens=50_000_000, seeds=[0, 1, 2], eval_every=500, wikitext_tokens=0, heldout_blocks=0,
                   glue_train=0, glue_epochs=3, batch_size=32, lr=6e-4),
}


@dataclass
class AblationConfig:
    out: str = "runs/ablation"
    input: list[str] = field(default_factory=lambda: ["data/demo/jsonl"])
    clean_root: str = "data/clean"
    teacher: str = "runs/teacher/export"
    keep_layers: str = "alt"
    presets: list[str] = field(default_factory=lambda: ["none", "paper", "full"])
    scale: str = "default"
    decontaminate: bool = True
    workers: int = 2
    device: str = "cpu"


def clean_variant(cfg: AblationConfig, preset: str, out: Path) -> Path:
    """The clean corpus of one preset: reuse `make clean-corpus`'s, or make it (decontaminated)."""
    shared = Path(cfg.clean_root) / preset
    if not cfg.decontaminate:
        directory = shared
    else:
        directory = out / "clean" / preset
    if not (directory / "manifest.json").exists():
        args = ["--input", *cfg.input, "--output", str(directory), "--preset", preset, "--workers", str(cfg.workers)]
        if cfg.decontaminate:
            args += ["--decontaminate", str(WIKITEXT_TEST), *map(str, GLUE_DEV_SETS)]
        run_command(python_module("corpus.cli", *args), out / "logs" / f"clean-{preset}.log")
    return directory


def tokenize(cfg: AblationConfig, scale: Scale, clean_dir: Path, name: str, out: Path) -> Path:
    tokens = out / "tokens" / name
    if not (tokens / "manifest.json").exists():
        run_command(python_module("train", "tokenize", "--data", str(clean_dir), "--tokenizer", cfg.teacher, "--out", str(tokens),
                                  "--block-size", str(scale.block_size), "--val-fraction", str(scale.val_fraction)),
                    out / "logs" / f"tokenize-{name}.log")
    return tokens


def pretrain(cfg: AblationConfig, scale: Scale, tokens: Path, run_dir: Path, seed: int, extra: list[str] = (), log: Path | None = None) -> dict:
    if not (run_dir / "summary.json").exists():
        run_command(python_module(
            "train", "pretrain", "--tokens", str(tokens), "--out", str(run_dir), "--teacher", cfg.teacher,
            "--keep-layers", cfg.keep_layers, "--max-tokens", str(scale.budget_tokens), "--seed", str(seed),
            "--batch-size", str(scale.batch_size), "--lr", str(scale.lr), "--warmup", str(max(1, _steps(scale, cfg) // 20)),
            "--eval-every", str(scale.eval_every), "--log-every", str(scale.eval_every), "--ckpt-every", str(max(50, scale.eval_every)),
            "--device", cfg.device, *extra), log or run_dir.with_suffix(".log"))
    return json.loads((run_dir / "summary.json").read_text())


def _steps(scale: Scale, cfg: AblationConfig) -> int:
    return math.ceil(scale.budget_tokens / (scale.batch_size * scale.block_size))


def evaluate_model(model_dir: Path, heldout_tokens: Path | None, scale: Scale, seed: int, device: str = "cpu") -> dict:
    """WikiText perplexity, raw held-out perplexity, SST-2 accuracy of one pre-trained model."""
    from eval.glue import GlueConfig, finetune
    from eval.perplexity import load_causal_lm, shard_perplexity, text_perplexity

    model, tokenizer = load_causal_lm(model_dir, device)
    result = {}
    # both protocols: the sliding window (exact), and run_clm's blocks, the protocol of the paper's WikiText-103 numbers
    for protocol, key in (("sliding", "wikitext"), ("blocks", "wikitext_blocks")):
        wiki = text_perplexity(model, tokenizer, WIKITEXT_TEST.read_text(encoding="utf-8"), max_tokens=scale.wikitext_tokens,
                               label=f"wikitext ({protocol})", protocol=protocol)
        result.update({f"{key}_ppl": wiki["ppl"], f"{key}_tokens": wiki["tokens"]})
    if heldout_tokens is not None:
        held = shard_perplexity(model, heldout_tokens, "val", max_blocks=scale.heldout_blocks)
        result.update(heldout_ppl=held["ppl"], heldout_tokens=held["tokens"])
    sst2 = finetune(model_dir, "sst2", cfg=GlueConfig(epochs=scale.glue_epochs, max_train=scale.glue_train, max_dev=scale.glue_dev,
                                                      seed=seed, device=device))
    result.update(sst2_acc=sst2["value"], sst2_train_examples=sst2["train_examples"], sst2_time_s=sst2["train_time_s"])
    return result


def run_ablation(cfg: AblationConfig, scale: Scale, command: str = "") -> dict:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (Path(cfg.teacher) / "config.json").exists():
        raise EvalError(f"teacher {cfg.teacher} not found: run `make teacher` first (or pass --teacher DIR)")
    atomic_json(out / "config.json", {"command": command, "ablation": asdict(cfg), "scale": asdict(scale)})
    presets = list(dict.fromkeys(["none", *cfg.presets]))  # the raw variant always: its held-out split is shared
    variants = {}
    for preset in presets:
        clean = clean_variant(cfg, preset, out)
        tokens = tokenize(cfg, scale, clean, preset, out)
        corpus_stats = json.loads((clean / "stats.json").read_text())
        token_manifest = json.loads((tokens / "manifest.json").read_text())
        variants[preset] = {"clean_dir": str(clean), "tokens_dir": str(tokens), "stats": corpus_stats,
                            "train_tokens": token_manifest["splits"]["train"]["tokens"],
                            "docs_kept": corpus_stats["output"]["documents"], "docs_in": corpus_stats["input"]["documents"]}
    smallest = min(v["train_tokens"] for p, v in variants.items() if p in cfg.presets)
    if scale.budget_tokens > smallest:
        print(f"note: the budget ({scale.budget_tokens:,} tokens) exceeds the smallest variant ({smallest:,}): "
              "that variant repeats data (see the epochs column)", flush=True)
    heldout = Path(variants["none"]["tokens_dir"])
    runs = {}
    for preset in cfg.presets:
        for seed in scale.seeds:
            name = f"{preset}-seed{seed}"
            run_dir = out / "runs" / name
            summary = pretrain(cfg, scale, Path(variants[preset]["tokens_dir"]), run_dir, seed, log=out / "logs" / f"train-{name}.log")
            metrics = cached(out / "results" / f"{name}.json", lambda: evaluate_model(run_dir / "export", heldout, scale, seed, cfg.device))
            runs[name] = {"preset": preset, "seed": seed, "summary": summary, **metrics, "curve": read_curve(run_dir)}
    results = {"command": command, "config": asdict(cfg), "scale": asdict(scale), "variants": variants, "runs": runs}
    write_report(results, out)
    return results


def write_report(results: dict, out: Path) -> None:
    cfg, scale, variants, runs = results["config"], results["scale"], results["variants"], results["runs"]
    presets = cfg["presets"]
    stat = {p: {k: summarize([r[k] for r in runs.values() if r["preset"] == p and k in r])
                for k in ("wikitext_ppl", "wikitext_blocks_ppl", "heldout_ppl", "sst2_acc")} for p in presets}
    train_time = {p: summarize([r["summary"]["train_time_s"] for r in runs.values() if r["preset"] == p]) for p in presets}
    rows = []
    for p in presets:
        v = variants[p]
        decontam = next((s["docs_removed"] for s in v["stats"]["steps"] if s["step"] == "decontaminate"), None)
        rows.append([f"`{p}`", f"{v['docs_kept']:,} / {v['docs_in']:,}", f"{v['train_tokens']:,}",
                     f"{scale['budget_tokens'] / v['train_tokens']:.2f}", "-" if decontam is None else f"{decontam:,}",
                     fmt(stat[p]["wikitext_ppl"], 1), fmt(stat[p]["wikitext_blocks_ppl"], 1), fmt(stat[p]["heldout_ppl"], 1),
                     fmt(stat[p]["sst2_acc"], 3),
                     fmt(train_time[p], 0)])
    curves = {p: [r["curve"] for r in runs.values() if r["preset"] == p] for p in presets}
    plot_curves(curves, out / "val_loss.png", f"validation loss vs tokens ({len(scale['seeds'])} seeds per variant)")
    removal = {}
    for p in presets:
        for s in variants[p]["stats"]["steps"]:
            removal.setdefault(s["step"], {})[p] = {"mean": 100 * s["bytes_removed"] / max(1, s["bytes_in"]), "std": 0.0}
    if removal:
        plot_bars(removal, out / "cleaning_steps.png", "what each cleaning step removed", "% of the bytes reaching the step")
    lines = [
        "# Data-cleaning ablation",
        "",
        f"Produced by `{results['command']}` (config in `config.json`, every number below read from this run's files).",
        f"Student: teacher `{cfg['teacher']}` truncated to layers `{cfg['keep_layers']}`, pre-trained on "
        f"{scale['budget_tokens']:,} tokens per run (batch {scale['batch_size']} x {scale['block_size']}, lr {scale['lr']}), "
        f"seeds {scale['seeds']}. Only the pre-training data differs between rows.",
        "",
        markdown_table(["data", "docs kept", "train tokens", "epochs", "decontaminated docs", "WikiText ppl (sliding)",
                        "WikiText ppl (blocks)", "raw held-out ppl", "SST-2 acc", "train time (s)"], rows),
        "",
        f"Mean ± standard deviation over seeds. WikiText: first {scale['wikitext_tokens'] or 'all'} tokens of the test split, "
        f"two protocols: a sliding window (each token scored with up to context - 1 tokens before it) and Hugging Face "
        f"run_clm.py's non-overlapping blocks of the model's context (the protocol of the paper's WikiText-103 numbers; "
        f"less context per token, so higher). Raw held-out: the `none` variant's validation documents (held out of every variant). SST-2: "
        f"{scale['glue_train'] or 'all'} training examples, {scale['glue_epochs']} epochs, dev set.",
        "",
        "## Is the difference real?",
        "",
    ]
    for p in presets:
        if p == "none":
            continue
        lines.append(noise_sentence(p, stat[p]["wikitext_ppl"], "none", stat["none"]["wikitext_ppl"], "WikiText perplexity", True)
                     if "none" in presets else "")
        if "none" in presets:
            lines.append(noise_sentence(p, stat[p]["sst2_acc"], "none", stat["none"]["sst2_acc"], "SST-2 accuracy", False))
    lines += [
        "",
        "Where a gap could come from: the variants differ in what text they hold (language, boilerplate, duplicates) and, "
        "when the budget exceeds a variant's size, in how often it repeats its data (epochs column). With epochs <= 1 for "
        "every variant, no variant repeats data, so a gap reflects what the text is, not how much there is.",
        "",
        "## Plots",
        "",
        "![validation loss](val_loss.png)",
        "",
        "Each variant's validation loss is on its own held-out split (so curves compare speed of learning, not one another's level).",
        "",
        "![cleaning steps](cleaning_steps.png)",
        "",
        "## What the cleaning removed",
        "",
    ]
    for p in presets:
        steps = variants[p]["stats"]["steps"]
        if steps:
            lines.append(f"### `{p}` (full report: `{variants[p]['clean_dir']}/report.md`)")
            lines.append("")
            lines.append(markdown_table(["step", "docs in", "docs removed", "MB removed"],
                                        [[s["step"], f"{s['docs_in']:,}", f"{s['docs_removed']:,}", f"{s['bytes_removed'] / 1e6:.2f}"] for s in steps]))
            lines.append("")
    atomic_json(out / "results.json", results)
    atomic_write(out / "report.md", "\n".join(lines) + "\n")
    print(f"\nablation report: {write_study_html(out, results, 'Data-cleaning ablation')} (also report.md)")
    print(markdown_table(["data", "docs kept", "train tokens", "epochs", "decontam", "WikiText ppl (sliding)", "WikiText ppl (blocks)",
                          "raw held-out ppl", "SST-2", "time (s)"], rows))


def add_scale_arguments(p, scales: dict) -> None:
    p.add_argument("--scale", choices=sorted(scales), default="default",
                   help="budget, seeds and evaluation sizes: smoke (minutes), default (CPU), large (GPU)")
    p.add_argument("--seeds", default="", help="comma-separated seeds; empty: the scale's")
    p.add_argument("--budget-tokens", type=int, default=0, help="pre-training tokens per run; 0: the scale's")


def scale_from_args(scales: dict, args) -> Scale:
    scale = scales[args.scale]
    if args.seeds:
        scale = replace(scale, seeds=[int(s) for s in args.seeds.split(",")])
    if args.budget_tokens:
        scale = replace(scale, budget_tokens=args.budget_tokens)
    return scale


def add_arguments(p) -> None:
    d = AblationConfig()
    add_scale_arguments(p, SCALES)
    p.add_argument("--out", default=d.out)
    p.add_argument("--input", nargs="+", default=d.input, help="raw corpus (default: the demo corpus)")
    p.add_argument("--clean-root", default=d.clean_root, help="where `make clean-corpus` put its variants (reused without decontamination)")
    p.add_argument("--teacher", default=d.teacher)
    p.add_argument("--keep-layers", default=d.keep_layers)
    p.add_argument("--presets", default=",".join(d.presets))
    p.add_argument("--no-decontaminate", action="store_true", help="train on `make clean-corpus`'s outputs as they are")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--device", default=d.device)


def run(args) -> dict:
    scale = scale_from_args(SCALES, args)
    cfg = AblationConfig(out=args.out, input=args.input, clean_root=args.clean_root, teacher=args.teacher,
                         keep_layers=args.keep_layers, presets=args.presets.split(","), scale=args.scale,
                         decontaminate=not args.no_decontaminate, workers=args.workers, device=args.device)
    return run_ablation(cfg, scale, args.command_line)
