"""The `paper` preset: the cleaning of Li et al. 2021 (their cleaner worked line by line on OpenWebText).

Two steps, one job each:

- `PaperLineCleaner` drops a line whose key was seen before anywhere in the corpus, where the key is
  (length of the line without punctuation and spaces, MD5 of its first 4 and last 4 words), and drops
  every line that contains an HTML tag. Blank lines are kept (they separate paragraphs).
- `PaperSampleFilter` then drops samples shorter than 5 characters or with more than 10% non-alphabetic
  characters, where whitespace does not count and everything else that is not a letter does
  (digits, punctuation, symbols).

The set of seen keys lives in the task, so the preset runs the line cleaner in a single task: the set
is global, as in the paper. It holds one 8-byte key per distinct line.
"""
from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from typing import Callable

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--|-->")
_PUNCT_AND_SPACE = str.maketrans("", "", string.punctuation + " \t\r\n\f\v")


@dataclass
class PaperConfig:
    min_chars: int = 5
    max_non_alpha_fraction: float = 0.10
    drop_html_lines: bool = True
    dedup_lines: bool = True


def line_key(line: str) -> int:
    """(length without punctuation, MD5 of first 4 + last 4 words) packed into one 64-bit int."""
    words = line.split()
    digest = hashlib.md5(" ".join(words[:4] + words[-4:]).encode("utf-8")).digest()
    stripped_len = len(line.translate(_PUNCT_AND_SPACE))
    return (stripped_len << 40) ^ int.from_bytes(digest[:8], "little")


def non_alpha_fraction(text: str) -> float:
    counted = [c for c in text if not c.isspace()]
    if not counted:
        return 1.0
    return sum(not c.isalpha() for c in counted) / len(counted)


class PaperLineCleaner(BaseFilter):
    """Remove repeated lines (by the paper's key) and lines with HTML tags; never drops a document."""

    name = "paper_lines"

    def __init__(self, cfg: PaperConfig | None = None):
        super().__init__(exclusion_writer=None)
        self.cfg = cfg or PaperConfig()
        self.seen: set[int] = set()

    def filter(self, doc: Document) -> bool:
        kept = []
        for line in doc.text.split("\n"):
            if not line.strip():
                kept.append(line)
                continue
            if self.cfg.drop_html_lines and HTML_TAG_RE.search(line):
                self.stat_update("lines_dropped_html")
                self.stat_update("bytes_dropped_html", value=len(line.encode("utf-8")))
                continue
            if self.cfg.dedup_lines:
                key = line_key(line)
                if key in self.seen:
                    self.stat_update("lines_dropped_duplicate")
                    self.stat_update("bytes_dropped_duplicate", value=len(line.encode("utf-8")))
                    continue
                self.seen.add(key)
            kept.append(line)
        doc.text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
        return True


class PaperSampleFilter(BaseFilter):
    """Drop samples shorter than `min_chars` or with too many non-alphabetic characters."""

    name = "paper_samples"

    def __init__(self, cfg: PaperConfig | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer=exclusion_writer)
        self.cfg = cfg or PaperConfig()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if len(doc.text) < self.cfg.min_chars:
            return False, "too_short"
        if non_alpha_fraction(doc.text) > self.cfg.max_non_alpha_fraction:
            return False, "non_alpha"
        return True


def paper_steps(cfg: PaperConfig, removed_writer: Callable[[str], object]) -> list:
    return [PaperLineCleaner(cfg), PaperSampleFilter(cfg, exclusion_writer=removed_writer("paper_samples"))]
