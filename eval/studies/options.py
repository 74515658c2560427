"""The settings every study shares: its output folder, the scale, the seeds, and where and how its runs compute."""
from __future__ import annotations

from dataclasses import dataclass, replace

from cli_config import Check, opt

SCALE_NAMES = ("default", "large", "smoke")


def each_of(choices) -> Check:
    """Every item of a list is one of `choices`."""
    return Check(lambda values: all(v in choices for v in values), f"each one of {', '.join(choices)}", ("no-such",))


def each_at_least_0() -> Check:
    return Check(lambda values: all(v >= 0 for v in values), "seeds >= 0", ("-1",))


@dataclass
class StudyOptions:
    output: str = opt("", "study folder: report, results and every unit, by fingerprint", metavar="DIR")
    scale: str = opt("default", "budget, seeds and evaluation sizes: smoke (minutes), default (CPU), large (GPU)",
                     choices=SCALE_NAMES)
    seeds: list[int] = opt([], "seeds, e.g. 0 1 2 (default: the scale's)", check=each_at_least_0(), metavar="SEED")
    device: str = opt("cpu", "device of every pre-training run, evaluation and fine-tuning: cpu | cuda | cuda:N | "
                      "mps | any torch device")
    dtype: str = opt("auto", "autocast dtype of every run and evaluation: fp32 | bf16 | fp16 | auto (bf16 on a GPU "
                     "that supports it, else fp16 on a GPU, fp32 on CPU)")
    compile: bool = opt(False, "torch.compile every pre-training and fine-tuning run (no gain on CPU)")

    def validate(self):
        """The device must exist here and the dtype be known, before any work (one line otherwise)."""
        from train.device import parse_device, parse_dtype

        parse_dtype(self.dtype, parse_device(self.device))

    def execution(self) -> "Execution":
        return Execution(self.device, self.dtype, self.compile)

    def with_seeds(self, scale):
        """The scale with --seeds, when given."""
        return replace(scale, seeds=list(self.seeds)) if self.seeds else scale


@dataclass(frozen=True)
class Execution:
    """Where and how a study's runs compute, passed to each of them: it changes no unit's identity (a run or an
    evaluation made on the CPU is reused on a GPU), except the dtype an evaluation scores in."""
    device: str = "cpu"
    dtype: str = "auto"
    compile: bool = False

    def pretrain_args(self) -> list[str]:
        """The options that put a `train pretrain` sub-run on this device."""
        return ["--device", self.device, "--dtype", self.dtype, *(["--compile"] if self.compile else [])]

    def eval_dtype(self) -> str:
        """The autocast dtype an evaluation runs in here (auto resolved: fp32 on CPU)."""
        from train.device import parse_device, parse_dtype

        return parse_dtype(self.dtype, parse_device(self.device))
