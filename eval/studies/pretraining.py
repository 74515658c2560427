"""What the pre-training studies (ablation, compare) share: the scales, and the units a student goes through:
token shards of a clean corpus, a pre-training run, its evaluation (WikiText and held-out perplexity, SST-2).

Every unit lives under the fingerprint of its settings and inputs (`units.unit_path`), so a study resumes and a
rerun with other settings makes new units beside the old ones. The budget is at most one pass over the smallest
training set unless repeats are allowed (`resolve_budget`): data quantity would otherwise confound the comparison.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from cli_config import at_least, opt
from eval import EvalError
from eval.data import blimp_dir, glue_dir, wikitext_test
from eval.studies.options import Execution, StudyOptions
from eval.studies.runs import python_module, run_command
from eval.studies.units import cached, locate, record_unit


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
    glue_lr: float = 1e-4  # SST-2 fine-tuning peak learning rate (GlueConfig's default)
    blimp_pairs: int = 0  # BLiMP pairs scored per paradigm (0: all 1,000 of each of the 67)
    batch_size: int = 16
    lr: float = 1e-3
    block_size: int = 128
    val_fraction: float = 0.02  # documents held out for validation (whole near-duplicate clusters)


SCALES = {
    # a few minutes: used by the tests, and to try the machinery
    "smoke": Scale(
        budget_tokens=6_144,
        seeds=[0, 1],
        eval_every=1,
        wikitext_tokens=2_000,
        heldout_blocks=16,
        glue_train=64,
        glue_epochs=1,
        glue_dev=64,
        batch_size=8,
        block_size=32,
        val_fraction=0.3,
        blimp_pairs=4,
    ),
    # about half an hour on 2 CPU cores (after `make teacher`): three seeds, so each comparison has a confidence
    # interval. SST-2: 4,000 examples at lr 5e-4 lift these small students 10+ points above the majority class (800
    # at 1e-4 did not); BLiMP: 100 pairs of each paradigm (6,700) keep a pair-level test at a third of the cost
    "default": Scale(
        budget_tokens=150_000,
        seeds=[0, 1, 2],
        eval_every=20,
        wikitext_tokens=30_000,
        heldout_blocks=300,
        glue_train=4_000,
        glue_epochs=1,
        glue_lr=5e-4,
        blimp_pairs=100,
    ),
    # a GPU-sized run: more tokens, three seeds, full evaluation sets
    "large": Scale(
        budget_tokens=50_000_000,
        seeds=[0, 1, 2],
        eval_every=500,
        wikitext_tokens=0,
        heldout_blocks=0,
        glue_train=0,
        glue_epochs=3,
        batch_size=32,
        lr=6e-4,
    ),
}


@dataclass
class PretrainStudyOptions(StudyOptions):
    """The settings of a study that pre-trains students of one teacher (ablation, compare)."""

    teacher: str = opt(
        "runs/teacher/export",
        "teacher directory (`make teacher`): the source of every student; its tokenizer tokenizes the data",
        metavar="DIR",
    )
    budget_tokens: int = opt(
        0,
        "pre-training tokens per run (0: the scale's, lowered to one pass over the smallest training set)",
        check=at_least(0),
    )
    allow_repeats: bool = opt(
        False, "let the budget exceed one pass over the smallest training set (that data then repeats)"
    )
    lr: float = opt(0.0, "pre-training peak learning rate of every run (0: the scale's)", check=at_least(0))

    def scale_of(self, scales: dict) -> Scale:
        """The chosen scale with --seeds, --budget-tokens and --lr applied."""
        scale = self.with_seeds(scales[self.scale])
        if self.lr:
            scale = replace(scale, lr=self.lr)
        return replace(scale, budget_tokens=self.budget_tokens) if self.budget_tokens else scale


def tokenize(
    scale: Scale,
    clean_dir: Path,
    name: str,
    out: Path,
    *,
    teacher: str,
    teacher_fp: str | None = None,
    reuse_stale: bool = False,
    exclude: list[str] = (),
) -> tuple[Path, dict]:
    """Token shards of a clean corpus with the teacher's tokenizer, keyed by the corpus's content, the settings
    and the tokenizing code. `exclude`: ids of documents left out of both splits (those the teacher's training
    data holds a near-duplicate of)."""
    from train.fingerprint import clean_fingerprint, fingerprint, model_fingerprint, tokens_fingerprint

    key = {
        "clean": clean_fingerprint(clean_dir),
        "tokenizer": teacher_fp or model_fingerprint(teacher),
        "block_size": scale.block_size,
        "val_fraction": scale.val_fraction,
        "split": "cluster",
    }
    if exclude:  # only then: shards without exclusions keep their key
        key["exclude"] = fingerprint(sorted(exclude))
    tokens, key_fp, code = locate(out / "tokens", name, key, "token shards", "manifest.json", reuse_stale=reuse_stale)
    if not (tokens / "manifest.json").exists():
        options = []
        if exclude:  # the ids as `train tokenize --exclude` reads them, beside the shards they shape
            ids_file = tokens.with_name(f"{tokens.name}.exclude.txt")
            ids_file.parent.mkdir(parents=True, exist_ok=True)
            ids_file.write_text("".join(f"{i}\n" for i in sorted(exclude)))
            options = ["--exclude", str(ids_file)]
        run_command(
            python_module(
                "train",
                "tokenize",
                "--data",
                str(clean_dir),
                "--tokenizer",
                teacher,
                "--output",
                str(tokens),
                "--block-size",
                str(scale.block_size),
                "--val-fraction",
                str(scale.val_fraction),
                *options,
            ),
            out / "logs" / f"tokenize-{tokens.name}.log",
        )
    record_unit(tokens, key_fp, code)
    return tokens, {
        "kind": "token shards",
        "fingerprint": key_fp,
        "content": tokens_fingerprint(tokens),
        "path": str(tokens),
        "code": code,
    }


def pretrain(
    scale: Scale,
    tokens: Path,
    run_dir: Path,
    seed: int,
    *,
    teacher: str,
    keep_layers: str,
    execution: Execution = Execution(),
    extra: list[str] = (),
    log: Path | None = None,
    val_tokens: Path | None = None,
    reuse_stale: bool = False,
) -> dict:
    """One pre-training run, in `<run_dir>-<fingerprint>`: the fingerprint covers the token shards' content, the
    teacher, every training option and the training code, so a run made with another budget, on other data or by
    other code is never reused silently. `val_tokens`: shards whose val split scores the validation curve (one
    validation set for runs on different data). Returns summary.json plus `run_dir` and `unit` (its provenance)."""
    from train.fingerprint import model_fingerprint, tokens_fingerprint

    options = [
        "--keep-layers",
        keep_layers,
        "--max-tokens",
        str(scale.budget_tokens),
        "--seed",
        str(seed),
        "--batch-size",
        str(scale.batch_size),
        "--lr",
        str(scale.lr),
        "--warmup",
        str(max(1, steps(scale) // 20)),
        "--eval-every",
        str(scale.eval_every),
        "--log-every",
        str(scale.eval_every),
        "--ckpt-every",
        str(max(50, scale.eval_every)),
        *extra,
    ]
    key = {"tokens": tokens_fingerprint(tokens), "teacher": model_fingerprint(teacher), "options": options}
    validation = []
    if val_tokens is not None:
        key["val_tokens"] = tokens_fingerprint(val_tokens)
        validation = ["--val-tokens", str(val_tokens)]
    run_dir, key_fp, code = locate(
        run_dir.parent, run_dir.name, key, "training run", "summary.json", reuse_stale=reuse_stale
    )
    if not (run_dir / "summary.json").exists():
        run_command(
            python_module(
                "train",
                "pretrain",
                "--tokens",
                str(tokens),
                "--output",
                str(run_dir),
                "--teacher",
                teacher,
                *options,
                *validation,
                *execution.pretrain_args(),
            ),
            log or run_dir.with_suffix(".log"),
        )
    record_unit(run_dir, key_fp, code)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        **summary,
        "run_dir": str(run_dir),
        "unit": {"kind": "training run", "fingerprint": key_fp, "path": str(run_dir), "code": code},
    }


def steps(scale: Scale) -> int:
    """Optimizer steps of a run at this scale's budget."""
    return math.ceil(scale.budget_tokens / (scale.batch_size * scale.block_size))


def resolve_budget(scale: Scale, train_tokens: dict[str, int], explicit: bool, allow_repeats: bool) -> Scale:
    """At most one pass over the smallest variant unless --allow-repeats: the scale's budget is lowered to it
    (whole batches), an explicit --budget-tokens above it is refused."""
    smallest = min(train_tokens, key=train_tokens.get)
    per_step = scale.batch_size * scale.block_size
    one_pass = train_tokens[smallest] // per_step * per_step
    if scale.budget_tokens <= one_pass or allow_repeats:
        return scale
    if explicit:
        raise EvalError(
            f"--budget-tokens {scale.budget_tokens:,} is more than one pass over the smallest variant "
            f"`{smallest}` ({train_tokens[smallest]:,} training tokens): pass --allow-repeats to let it repeat data, "
            f"or --budget-tokens {one_pass:,} or less"
        )
    if one_pass == 0:
        raise EvalError(
            f"the variant `{smallest}` holds {train_tokens[smallest]:,} training tokens, less than one batch "
            f"({per_step:,}): pass --allow-repeats, or use a larger corpus"
        )
    print(
        f"note: the budget is lowered from {scale.budget_tokens:,} to {one_pass:,} tokens, one pass over the smallest "
        f"variant `{smallest}` (--allow-repeats keeps the scale's budget)",
        flush=True,
    )
    return replace(scale, budget_tokens=one_pass)


def result_key(model_unit: dict, heldout_unit: dict | None, scale: Scale, seed: int, dtype: str = "fp32") -> dict:
    """What an evaluation result depends on: the model, the held-out shards, the evaluation settings and data, and
    the dtype it scores in (fp32 keys as before)."""
    from train.fingerprint import files_fingerprint

    key = {
        "model": model_unit["fingerprint"],
        "heldout": heldout_unit["content"] if heldout_unit else None,
        "seed": seed,
        "settings": {
            k: getattr(scale, k)
            for k in (
                "wikitext_tokens",
                "heldout_blocks",
                "glue_train",
                "glue_epochs",
                "glue_dev",
                "glue_lr",
                "blimp_pairs",
            )
        },
        "data": files_fingerprint([wikitext_test(), glue_dir() / "SST-2", blimp_dir()]),
    }
    return key if dtype == "fp32" else {**key, "dtype": dtype}


def evaluate_model(
    model_dir: Path, heldout_tokens: Path | None, scale: Scale, seed: int, execution: Execution = Execution()
) -> dict:
    """WikiText perplexity and bits per byte, raw held-out perplexity, BLiMP and SST-2 accuracy of one pre-trained
    model."""
    from eval.blimp import read_paradigms, score
    from eval.glue import GlueConfig, finetune
    from eval.perplexity import load_causal_lm, shard_perplexity, text_perplexity

    device, dtype = execution.device, execution.eval_dtype()
    model, tokenizer = load_causal_lm(model_dir, device)
    result, items = {}, {}  # items: per window, block or example, for paired comparisons between arms
    # both protocols: the sliding window (exact), and run_clm's blocks, the protocol of the paper's WikiText-103 numbers
    for protocol, key in (("sliding", "wikitext"), ("blocks", "wikitext_blocks")):
        wiki = text_perplexity(
            model,
            tokenizer,
            wikitext_test().read_text(encoding="utf-8"),
            max_tokens=scale.wikitext_tokens,
            label=f"wikitext ({protocol})",
            protocol=protocol,
            per_item=True,
            dtype=dtype,
        )
        result.update({f"{key}_ppl": wiki["ppl"], f"{key}_bpb": wiki["bpb"], f"{key}_tokens": wiki["tokens"]})
        items[f"{key}_ppl"] = wiki["items"]
    if heldout_tokens is not None:
        held = shard_perplexity(
            model, heldout_tokens, "val", max_blocks=scale.heldout_blocks, per_item=True, dtype=dtype
        )
        result.update(heldout_ppl=held["ppl"], heldout_tokens=held["tokens"])
        items["heldout_ppl"] = held["items"]
    blimp = score(model, tokenizer, read_paradigms(blimp_dir(), max_pairs=scale.blimp_pairs))
    result.update(blimp_acc=blimp["accuracy"], blimp_pairs=blimp["pairs"], blimp_fields=blimp["fields"])
    items["blimp_acc"] = [int(c) for outcomes in blimp["outcomes"].values() for c in outcomes]
    sst2 = finetune(
        model_dir,
        "sst2",
        cfg=GlueConfig(
            epochs=scale.glue_epochs,
            lr=scale.glue_lr,
            max_train=scale.glue_train,
            max_dev=scale.glue_dev,
            seed=seed,
            device=device,
            dtype=execution.dtype,
            compile=execution.compile,
        ),
    )
    result.update(sst2_acc=sst2["value"], sst2_train_examples=sst2["train_examples"], sst2_time_s=sst2["train_time_s"])
    items["sst2_acc"] = sst2["dev_correct"]
    return {**result, "items": items}


def evaluate_run(
    summary: dict,
    heldout: tuple[Path, dict] | None,
    scale: Scale,
    seed: int,
    out: Path,
    name: str,
    execution: Execution = Execution(),
    reuse_stale: bool = False,
) -> tuple[dict, dict]:
    """(metrics, provenance record) of a trained run's export, cached under the fingerprint of what they depend on
    and of the evaluation code. The per-item scores stay in the cached file (`result_items`)."""
    key = result_key(summary["unit"], heldout[1] if heldout else None, scale, seed, execution.eval_dtype())
    path, fp, code = locate(out / "results", name, key, "evaluation", suffix=".json", reuse_stale=reuse_stale)
    metrics = cached(
        path,
        lambda: evaluate_model(
            Path(summary["run_dir"]) / "export", heldout[0] if heldout else None, scale, seed, execution
        ),
    )
    record_unit(path, fp, code)
    record = {"kind": "evaluation", "fingerprint": fp, "path": str(path), "code": code}
    return {k: v for k, v in metrics.items() if k != "items"}, record


def result_items(unit: dict) -> dict:
    """Per-item scores of an evaluation unit: metric -> [[summed loss, tokens], ...] per window or block, or
    [1/0, ...] per example (empty for results made before items were kept)."""
    return json.loads(Path(unit["path"]).read_text()).get("items", {})
