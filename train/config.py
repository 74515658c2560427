"""The configuration of a pre-training run: plain dataclasses, one per group of options.

`python -m train pretrain --help` is generated from these (field name -> --field-name, default shown),
and the whole RunConfig is saved as `<run>/config.json`.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field


def opt(default, help: str):
    """A field with its --help text."""
    return field(default=default, metadata={"help": help})


@dataclass
class DataConfig:
    tokens: str = opt("", "token shards directory (python -m train tokenize)")


@dataclass
class ModelConfig:
    init: str = opt("truncate", "truncate (from --teacher) | scratch (random, shape below) | teacher (continue the teacher)")
    teacher: str = opt("", "HF GPT-2 directory or hub name (e.g. gpt2)")
    keep_layers: str = opt("alt", "alt | distil | bottom | top | 0,2,4,...")
    n_layer: int = opt(6, "scratch only")
    n_head: int = opt(4, "scratch only")
    n_embd: int = opt(256, "scratch only")
    n_positions: int = opt(0, "scratch only: context length (0: the token block size)")
    dropout: float = opt(0.0, "scratch only; a teacher brings its own")


@dataclass
class OptimConfig:
    batch_size: int = opt(16, "per process and micro-step")
    grad_accum: int = 1
    max_tokens: int = opt(0, "token budget; 0: use max_steps")
    max_steps: int = 500
    lr: float = 1e-3
    min_lr_ratio: float = opt(0.1, "cosine decays to lr * min_lr_ratio")
    warmup: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0


@dataclass
class DistillOptions:
    distill: bool = opt(False, "DistilGPT-2 loss against the teacher")
    alpha_kl: float = opt(5.0, "weight of KL(teacher || student) * T^2")
    alpha_clm: float = opt(2.0, "weight of the causal-LM loss")
    alpha_cos: float = opt(1.0, "weight of the cosine loss between the last hidden states")
    temperature: float = opt(2.0, "softmax temperature T of the KL term")
    freeze_pos_embeddings: bool = opt(False, "keep the position embeddings at their starting values, as DistilGPT-2's "
                                             "distillation kept GPT-2's (with or without --distill)")


@dataclass
class LogConfig:
    log_every: int = 10
    eval_every: int = 100
    eval_blocks: int = opt(64, "validation blocks per evaluation")
    ckpt_every: int = 100
    keep_checkpoints: int = 2
    wandb_project: str = opt("", "also log to this Weights & Biases project (needs `pip install wandb`); "
                                 "empty: TensorBoard files in <out>/tensorboard only")
    wandb_mode: str = opt("online", "online | offline (W&B files in <out>/wandb, `wandb sync` later) | disabled")
    peak_flops: float = opt(0.0, "the device's peak FLOP/s for the MFU figure; 0: measure a 1024^2 matmul at the start")


@dataclass
class SystemConfig:
    seed: int = 0
    device: str = opt("cpu", "cpu | cuda")
    dtype: str = opt("fp32", "fp32 | bf16 (autocast; slow on CPUs without AMX)")
    compile: bool = opt(False, "torch.compile (no gain on CPU)")
    threads: int = opt(0, "torch threads per process; 0: torch's default")


@dataclass
class RunConfig:
    out: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillOptions = field(default_factory=DistillOptions)
    log: LogConfig = field(default_factory=LogConfig)
    system: SystemConfig = field(default_factory=SystemConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


REQUIRED = {"data.tokens"}
GROUPS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "distill": DistillOptions, "log": LogConfig, "system": SystemConfig}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run directory (config, checkpoints, metrics, export)")
    for group_name, cls in GROUPS.items():
        group = parser.add_argument_group(group_name)
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            dest, help_text = f"{group_name}.{f.name}", f.metadata.get("help", " ")
            if f.type in ("bool", bool):
                group.add_argument(flag, dest=dest, action="store_true", default=f.default, help=help_text)
            else:
                kind = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
                group.add_argument(flag, dest=dest, type=kind, default=f.default, metavar=f.name.upper(), help=help_text,
                                   required=dest in REQUIRED)


def from_args(args: argparse.Namespace) -> RunConfig:
    cfg = RunConfig(out=args.out)
    for key, value in vars(args).items():
        if "." in key:
            group, name = key.split(".", 1)
            setattr(getattr(cfg, group), name, value)
    return cfg
