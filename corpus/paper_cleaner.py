"""The `paper` preset: the line-level cleaner of Li et al. 2021 (their `clean_text.py` then `test_samples.py`).

Their unit is a line (OpenWebText was written one paragraph per line), read with its trailing whitespace
removed, and each line passes these tests over the whole corpus in input order:

1. duplicate: the line's key was seen earlier anywhere in the corpus. The key is (length of the line
   after removing every character matching `[^\\w\\s]` - Unicode-aware, so curly quotes and dashes go and
   `_` stays - with its spaces; MD5 of its first 4 words concatenated with its last 4, no separator).
   Every line's key is recorded, whatever the later tests say, so a repeated HTML line also counts as
   seen and blank lines all share one key.
2. html: BeautifulSoup's `html.parser` finds a tag in the line (a parse error counts too). `A --> B` is
   not a tag.
3. too_short: the line has fewer than 5 characters.
4. non_alpha: (characters inside words that are not letters) / (length of the line, spaces included)
   is above 0.10.

A document left with no line is dropped (`no_line_left`) with its text as read. The lines a document lost
are in its metadata as `paper_removed_lines`: [line index in the text as read, reason] for a dropped
document, [line index, reason, line (first 1,000 characters)] for a kept one (report.html shows them).

The seen-key set must span the corpus in input order, so the preset runs this step in a single task:
the result does not depend on --workers or --tasks. It holds one 8-byte key per distinct line.
"""
from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from cli_config import at_least, between, opt

NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]")  # str patterns are Unicode-aware in Python 3
REASONS = ("duplicate", "html", "too_short", "non_alpha")


@dataclass
class PaperConfig:
    min_chars: int = opt(5, "drop lines shorter than this", check=at_least(0))
    max_non_alpha_fraction: float = opt(0.10, "drop lines with a larger share of non-alphabetic characters",
                                        check=between(0.0, 1.0))
    drop_html_lines: bool = opt(True, "drop lines that hold HTML markup")
    dedup_lines: bool = opt(True, "drop repeated lines")


def line_key(line: str) -> int:
    """(length of the line without `[^\\w\\s]`, spaces kept; MD5 of first 4 + last 4 words) as one int."""
    stripped = NOT_WORD_OR_SPACE.sub("", line)
    words = stripped.split()
    digest = hashlib.md5(("".join(words[:4]) + "".join(words[-4:])).encode("utf-8")).digest()
    # 8 bytes of the digest, the length mixed into the top: a collision needs 64 bits to agree
    return (len(stripped) << 40) ^ int.from_bytes(digest[:8], "little")


def has_html_tag(line: str) -> bool:
    if "<" not in line:  # html.parser makes a tag only from "<": skip the parse (the answer is the same)
        return False
    from bs4 import BeautifulSoup

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bs4 warns when a line looks like a URL or a file name
            return bool(BeautifulSoup(line, "html.parser").find())
    except Exception:  # the paper drops a line its parser fails on
        return True


def non_alpha_fraction(line: str) -> float:
    """Non-letters inside whitespace-separated words over the length of the whole line, spaces included."""
    if not line:
        return 0.0
    return sum(not c.isalpha() for word in line.split() for c in word) / len(line)


class PaperCleaner(BaseFilter):
    """Drop lines by the paper's four tests; drop a document with no line left. Run it in one task."""

    name = "paper_lines"

    def __init__(self, cfg: PaperConfig | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer=exclusion_writer)
        self.cfg = cfg or PaperConfig()
        self.seen: set[int] = set()

    def reason(self, line: str) -> str | None:
        """Why `line` goes (None: it stays). Records its key: call it once per line, in corpus order."""
        if self.cfg.dedup_lines:
            key = line_key(line)
            if key in self.seen:
                return "duplicate"
            self.seen.add(key)
        if self.cfg.drop_html_lines and has_html_tag(line):
            return "html"
        if len(line) < self.cfg.min_chars:
            return "too_short"
        if non_alpha_fraction(line) > self.cfg.max_non_alpha_fraction:
            return "non_alpha"
        return None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        kept, removed = [], []
        for i, line in enumerate(doc.text.split("\n")):
            line = line.rstrip()
            why = self.reason(line)
            if why is None:
                kept.append(line)
                self.stat_update("lines_kept")
            else:
                removed.append([i, why, line[:1000]])
                self.stat_update(f"lines_dropped_{why}")
                self.stat_update(f"bytes_dropped_{why}", value=len(line.encode("utf-8")))
        if not kept:  # the removed document keeps its text as read: the indices point into it
            doc.metadata["paper_removed_lines"] = [[i, why] for i, why, _ in removed]
            return False, "no_line_left"
        if removed:  # a kept document holds only its kept lines: the cut ones are recorded with their text
            doc.metadata["paper_removed_lines"] = removed
        doc.text = "\n".join(kept)
        return True
