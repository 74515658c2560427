"""A stage of the cleaning pipeline (datatrove steps run as parallel tasks), and the measurements between steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


# a stage that reads only signatures (or index files) of less than this runs its tasks one after another in the
# running process: starting worker processes would take longer than the work (tenths of a second a stage)
IN_PROCESS_BYTES = 16 * 2**20


@dataclass
class Stage:
    name: str
    steps: list
    tasks: int
    reads_signatures: Path | None = None  # the signature folder a light stage reads (see IN_PROCESS_BYTES)

    def runs_in_process(self) -> bool:
        """A light stage with little to read: its tasks run one after another in the running process."""
        if self.reads_signatures is None:
            return False
        return sum(f.stat().st_size for f in self.reads_signatures.rglob("*") if f.is_file()) < IN_PROCESS_BYTES


def utf8_bytes(text: str) -> int:
    """len(text.encode("utf-8")), without encoding a text that is all ASCII (a check CPython answers at once)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class Measure(PipelineStep):
    """Count documents and UTF-8 bytes passing this point (after the step `label`) for stats.json."""

    type = "📏 - MEASURE"

    def __init__(self, label: str):
        self.name = label  # before __init__: datatrove labels the stats with it
        super().__init__()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("documents")
            self.stat_update("text_bytes", value=utf8_bytes(doc.text))
            yield doc


def measured(steps: list) -> list:
    """Each step followed by a `Measure` of what it let through."""
    return [s for step in steps for s in (step, Measure(step.name))]
