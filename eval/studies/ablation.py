"""`make ablation`: does cleaning the pre-training data help the truncated student?

Only the data differs between variants. For each cleaning preset (none, paper, full) of the same raw
corpus: tokenize with the teacher's tokenizer, pre-train the same truncated student (teacher blocks
`alt`) from the same teacher, with the same token budget and the same seeds, then evaluate each run on
the same data: WikiText test perplexity, perplexity on the held-out split of the *raw* corpus (whole
near-duplicate clusters, so no held-out document has a near-duplicate in the raw training split; the
report gives the leakage an id-hash split would have had), and SST-2 accuracy after fine-tuning.
Everything lands in `<out>/`: report.md, results.json, plots. Every unit of work (clean variant, token
shards, run, evaluation) is cached there in a folder named by the fingerprint of its settings and inputs:
an interrupted ablation resumes, a rerun with other settings makes new units beside the old ones and
reports only its own, and the report lists every unit's fingerprint.

Data quantity would confound the comparison: the budget is at most one pass over the smallest variant
(the scale's budget is lowered to it; more needs --allow-repeats), and the report gives each variant's
epochs. Comparisons state the mean difference with a 95% confidence interval over seeds (Welch's t).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cli_config import opt, positive
from eval import EvalError
from eval.data import glue_dir, wikitext_test
from eval.studies.plots import plot_bars, plot_curves
from eval.studies.options import each_of
from eval.studies.pretraining import (SCALES, PretrainStudyOptions, Scale, evaluate_run, pretrain, resolve_budget,
                                      tokenize)
from eval.studies.provenance import code_version, package_version
from eval.studies.report import fmt, markdown_table, noise_sentence, units_section
from eval.studies.report_html import write_report_files
from eval.studies.runs import python_module, read_curve, run_command
from eval.studies.stats import summarize
from eval.studies.units import unit_path
from safe_output import atomic_json
from train.config import keep_layers_check


def decontamination_files() -> list[Path]:
    """The evaluation texts every variant is decontaminated against."""
    return [wikitext_test(), *(glue_dir() / t / "dev.tsv" for t in ("SST-2", "CoLA", "RTE"))]


PRESETS = ("none", "paper", "full")  # corpus-clean's recipes (not imported: that would load datatrove here)


@dataclass
class AblationConfig(PretrainStudyOptions):
    output: str = opt("runs/ablation", "study folder: report, results and every unit, by fingerprint", metavar="DIR")
    input: list[str] = opt(["data/demo/jsonl"], "raw corpus (default: the demo corpus)", metavar="PATH")
    clean_root: str = opt("data/clean", "where `make clean-corpus` put its variants (used with --no-decontaminate)",
                          metavar="DIR")
    keep_layers: str = opt("alt", "teacher blocks the student keeps (alt, distil, bottom, top or a list like 0,2,4)",
                           check=keep_layers_check())
    presets: list[str] = opt(["none", "paper", "full"], "cleaning presets to compare (none is always made: its "
                             "held-out split is shared)", check=each_of(PRESETS), metavar="PRESET")
    decontaminate: bool = opt(True, "clean each preset here, decontaminated against the evaluation sets (off: train "
                              "on `make clean-corpus`'s outputs as they are)")
    workers: int = opt(2, "corpus-clean worker processes", check=positive())


def clean_variant(cfg: AblationConfig, preset: str, out: Path, raw_fp: str, eval_files: list[Path]) -> tuple[Path, dict]:
    """The clean corpus of one preset, decontaminated, keyed by the raw input's content, the preset and the
    evaluation files; or, with --no-decontaminate, `make clean-corpus`'s output as it is."""
    from train.fingerprint import clean_fingerprint, files_fingerprint

    if not cfg.decontaminate:
        directory, key_fp = Path(cfg.clean_root) / preset, None
    else:
        key = {"preset": preset, "input": raw_fp, "decontaminate": files_fingerprint(eval_files), "code": package_version()}
        directory, key_fp = unit_path(out / "clean", preset, key)
    if not (directory / "manifest.json").exists():
        args = ["--input", *cfg.input, "--output", str(directory), "--preset", preset, "--workers", str(cfg.workers)]
        if cfg.decontaminate:
            args += ["--decontaminate", *map(str, eval_files)]
        run_command(python_module("corpus.cli", *args), out / "logs" / f"clean-{directory.name}.log")
    content = clean_fingerprint(directory)
    return directory, {"kind": "clean corpus", "fingerprint": key_fp or content, "content": content, "path": str(directory)}


def run_ablation(cfg: AblationConfig, scale: Scale, command: str = "", explicit_budget: bool = False) -> dict:
    from train.fingerprint import files_fingerprint, model_fingerprint

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    if not (Path(cfg.teacher) / "config.json").exists():
        raise EvalError(f"teacher {cfg.teacher} not found: run `make teacher` first (or pass --teacher DIR)")
    missing = [str(p) for p in cfg.input if not Path(p).exists()]
    if missing:
        raise EvalError(f"--input {missing[0]} not found (the demo corpus is made by `make demo-corpus`)")
    teacher_fp = model_fingerprint(cfg.teacher)
    units = {"teacher": {"kind": "teacher", "fingerprint": teacher_fp, "path": cfg.teacher}}
    raw_fp = files_fingerprint(cfg.input)
    units["raw input"] = {"kind": "raw input", "fingerprint": raw_fp, "path": " ".join(cfg.input)}
    presets = list(dict.fromkeys(["none", *cfg.presets]))  # the raw variant always: its held-out split is shared
    variants = {}
    for preset in presets:
        clean, units[f"clean/{preset}"] = clean_variant(cfg, preset, out, raw_fp, decontamination_files())
        tokens, units[f"tokens/{preset}"] = tokenize(scale, clean, preset, out, teacher=cfg.teacher,
                                                     teacher_fp=teacher_fp)
        corpus_stats = json.loads((clean / "stats.json").read_text())
        token_manifest = json.loads((tokens / "manifest.json").read_text())
        variants[preset] = {"clean_dir": str(clean), "tokens_dir": str(tokens), "stats": corpus_stats,
                            "train_tokens": token_manifest["splits"]["train"]["tokens"], "split": token_manifest.get("split", {}),
                            "docs_kept": corpus_stats["output"]["documents"], "docs_in": corpus_stats["input"]["documents"],
                            "fingerprints": {"clean": units[f"clean/{preset}"]["fingerprint"], "tokens": units[f"tokens/{preset}"]["fingerprint"]}}
    scale = resolve_budget(scale, {p: v["train_tokens"] for p, v in variants.items() if p in cfg.presets}, explicit_budget, cfg.allow_repeats)
    heldout = (Path(variants["none"]["tokens_dir"]), units["tokens/none"])
    runs = {}
    for preset in cfg.presets:
        for seed in scale.seeds:
            name = f"{preset}-seed{seed}"
            summary = pretrain(scale, Path(variants[preset]["tokens_dir"]), out / "runs" / name, seed,
                               teacher=cfg.teacher, keep_layers=cfg.keep_layers, device=cfg.device,
                               log=out / "logs" / f"train-{name}.log")
            metrics, units[f"result/{name}"] = evaluate_run(summary, heldout, scale, seed, out, name, cfg.device)
            units[f"run/{name}"] = summary["unit"]
            runs[name] = {"preset": preset, "seed": seed, "summary": summary, **metrics, "curve": read_curve(Path(summary["run_dir"])),
                          "fingerprints": {"run": summary["unit"]["fingerprint"], "result": units[f"result/{name}"]["fingerprint"]}}
    results = {"command": command, "config": asdict(cfg), "scale": asdict(scale), "variants": variants, "runs": runs, "units": units, "code": code_version()}
    atomic_json(out / "config.json", {"command": command, "ablation": asdict(cfg), "scale": asdict(scale)})
    write_report(results, out)
    return results


def write_report(results: dict, out: Path) -> None:
    cfg, scale, variants, runs = results["config"], results["scale"], results["variants"], results["runs"]
    presets = cfg["presets"]
    stat = {p: {k: summarize([r[k] for r in runs.values() if r["preset"] == p and k in r])
                for k in ("wikitext_ppl", "wikitext_blocks_ppl", "wikitext_bpb", "heldout_ppl", "blimp_acc", "sst2_acc")}
            for p in presets}
    train_time = {p: summarize([r["summary"]["train_time_s"] for r in runs.values() if r["preset"] == p]) for p in presets}
    trained = {p: max(r["summary"]["tokens"] for r in runs.values() if r["preset"] == p) for p in presets}
    rows = []
    for p in presets:
        v = variants[p]
        decontam = next((s["docs_removed"] for s in v["stats"]["steps"] if s["step"] == "decontaminate"), None)
        rows.append([f"`{p}`", f"{v['docs_kept']:,} / {v['docs_in']:,}", f"{v['train_tokens']:,}",
                     f"{trained[p] / v['train_tokens']:.2f}", "-" if decontam is None else f"{decontam:,}",
                     fmt(stat[p]["wikitext_ppl"], 1), fmt(stat[p]["wikitext_blocks_ppl"], 1), fmt(stat[p]["wikitext_bpb"], 3),
                     fmt(stat[p]["heldout_ppl"], 1), fmt(stat[p]["blimp_acc"], 3), fmt(stat[p]["sst2_acc"], 3),
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
                        "WikiText ppl (blocks)", "WikiText bits/byte", "raw held-out ppl", "BLiMP acc", "SST-2 acc",
                        "train time (s)"], rows),
        "",
        f"Mean ± standard deviation over seeds. Epochs: tokens each run trained on / the variant's training tokens"
        f"{' (--allow-repeats: a variant may repeat data)' if cfg.get('allow_repeats') else ' (at most one pass: no variant repeats data)'}. "
        f"WikiText: first {scale['wikitext_tokens'] or 'all'} tokens of the test split, "
        f"two protocols: a sliding window (each token scored with up to context - 1 tokens before it) and Hugging Face "
        f"run_clm.py's non-overlapping blocks of the model's context (the protocol of the paper's WikiText-103 numbers; "
        f"less context per token, so higher). Raw held-out: the `none` variant's validation documents (held out of every variant). SST-2: "
        f"{scale['glue_train'] or 'all'} training examples, {scale['glue_epochs']} epochs, dev set. Bits per byte: the sliding "
        f"window's loss in bits over the UTF-8 bytes it scored (comparable across tokenizers). BLiMP: zero-shot accuracy on "
        f"{scale.get('blimp_pairs') or 'all 1,000'} pairs of each of the 67 paradigms (chance 50%).",
        "",
        *leakage_lines(variants),
        "## Is the difference real?",
        "",
    ]
    for p in presets:
        if p == "none":
            continue
        lines.append(noise_sentence(p, stat[p]["wikitext_ppl"], "none", stat["none"]["wikitext_ppl"], "WikiText perplexity", True)
                     if "none" in presets else "")
        if "none" in presets:
            lines.append(noise_sentence(p, stat[p]["blimp_acc"], "none", stat["none"]["blimp_acc"], "BLiMP accuracy", False))
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
    lines += units_section(results["units"], results.get("code"))
    page = write_report_files(out, results, "Data-cleaning ablation", "\n".join(lines) + "\n")
    print(f"\nablation report: {page} (also report.md)")
    print(markdown_table(["data", "docs kept", "train tokens", "epochs", "decontam", "WikiText ppl (sliding)", "WikiText ppl (blocks)",
                          "WikiText bits/byte", "raw held-out ppl", "BLiMP", "SST-2", "time (s)"], rows))


def leakage_lines(variants: dict) -> list[str]:
    """How much held-out text has a near-duplicate in training, for an id-hash split and for the cluster split used."""
    rows = []
    for p, v in variants.items():
        leak = v.get("split", {}).get("leakage")
        if leak:
            cells = [f"{leak[m]['leaked_docs']:,} / {leak[m]['val_docs']:,} ({100 * leak[m]['leaked_fraction']:.1f}%)" for m in ("id-hash", "cluster")]
            rows.append([f"`{p}`", f"{v['split']['near_duplicate_pairs']:,}", *cells])
    if not rows:
        return []
    return ["### Held-out leakage", "",
            "Validation documents with a near-duplicate (word 5-gram Jaccard >= 0.8) in the training split: had documents been "
            "held out by a hash of their id, and with the split used (whole near-duplicate clusters held out).", "",
            markdown_table(["data", "near-duplicate pairs", "held out by id hash", "held out by cluster (used)"], rows), ""]


Settings = AblationConfig


def run(cfg: AblationConfig, args) -> dict:
    return run_ablation(cfg, cfg.scale_of(SCALES), args.command_line, explicit_budget=bool(cfg.budget_tokens))
