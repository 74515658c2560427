"""The settings every study shares: its output folder, the scale, the seeds and the device."""
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
    device: str = opt("cpu", "cpu, cuda or cuda:N")

    def with_seeds(self, scale):
        """The scale with --seeds, when given."""
        return replace(scale, seeds=list(self.seeds)) if self.seeds else scale
