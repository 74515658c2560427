"""Gopher's quality filter, as datatrove implements it, with its per-word tests done once per distinct word.

datatrove's `GopherQualityFilter` tests every word of a document character by character in Python
(does it have a non-punctuation character? an alphabetic one?). Here each distinct word is tested once and
weighted by its count: same rules, same thresholds, same order of the checks, so the same decisions and
reasons (compared on real pages in the tests).
"""

from __future__ import annotations

from collections import Counter
from operator import mul

from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.utils.text import PUNCTUATION_SET, split_into_words


def has_alpha(word: str) -> bool:
    return any(c.isalpha() for c in word)


class FastGopherQualityFilter(GopherQualityFilter):
    name = "🥇 Gopher Quality"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        words = split_into_words(text, self.language)
        n_words = len(words)
        counts = Counter(words)
        # most distinct words are letters only: not punctuation and alphabetic (no letter is in PUNCTUATION_SET),
        # summed in C; the loop tests the rest
        letters = [word for word in counts if word.isalpha()]
        letter_counts = list(map(counts.__getitem__, letters))
        n_non_symbol_words = alpha_words = sum(letter_counts)
        non_symbol_chars = sum(map(mul, map(len, letters), letter_counts))
        for word in [word for word in counts if not word.isalpha()]:
            count = counts[word]
            if not PUNCTUATION_SET.issuperset(word):  # a character that is not punctuation
                n_non_symbol_words += count
                non_symbol_chars += len(word) * count
            if has_alpha(word):
                alpha_words += count

        if self.min_doc_words and n_non_symbol_words < self.min_doc_words:
            return False, "gopher_short_doc"
        if self.max_doc_words and n_non_symbol_words > self.max_doc_words:
            return False, "gopher_long_doc"

        avg_word_length = non_symbol_chars / n_non_symbol_words if n_non_symbol_words else float("nan")
        if self.min_avg_word_length and avg_word_length < self.min_avg_word_length:
            return False, "gopher_below_avg_threshold"
        if self.max_avg_word_length and avg_word_length > self.max_avg_word_length:
            return False, "gopher_above_avg_threshold"

        if self.max_symbol_word_ratio and text.count("#") / n_words > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes"
        if self.max_symbol_word_ratio and (text.count("...") + text.count("…")) / n_words > self.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis"

        lines = text.splitlines()
        if (
            self.max_bullet_lines_ratio
            and sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines) > self.max_bullet_lines_ratio
        ):
            return False, "gopher_too_many_bullets"
        if (
            self.max_ellipsis_lines_ratio
            and sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines) > self.max_ellipsis_lines_ratio
        ):
            return False, "gopher_too_many_end_ellipsis"

        if self.max_non_alpha_words_ratio and alpha_words / n_words < self.max_non_alpha_words_ratio:
            return False, "gopher_below_alpha_threshold"
        if self.min_stop_words and len(self.stop_words.intersection(counts)) < self.min_stop_words:
            return False, "gopher_enough_stop_words"
        return True
