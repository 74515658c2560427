"""A stage of the cleaning pipeline (datatrove steps run as parallel tasks), and the measurements between steps."""
from __future__ import annotations

from dataclasses import dataclass

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


@dataclass
class Stage:
    name: str
    steps: list
    tasks: int


class Measure(PipelineStep):
    """Count documents and UTF-8 bytes passing this point (after the step `label`) for stats.json."""

    type = "📏 - MEASURE"

    def __init__(self, label: str):
        self.name = label  # before __init__: datatrove labels the stats with it
        super().__init__()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("documents")
            self.stat_update("text_bytes", value=len(doc.text.encode("utf-8")))
            yield doc


def measured(steps: list) -> list:
    """Each step followed by a `Measure` of what it let through."""
    return [s for step in steps for s in (step, Measure(step.name))]
