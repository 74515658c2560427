"""Gopher's repetition filter, as datatrove implements it, with its n-gram counting done faster.

datatrove's `GopherRepetitionFilter` builds every word n-gram as a joined string in a Python loop, for
n = 2, 3, 4 and again for n = 5..10: after spaCy, that is most of the `full` preset's CPU time. Here the
n-grams are tuples made by `zip` (in C) and their character lengths come from prefix sums of word
lengths; the rules, thresholds and reasons are datatrove's, and the decisions are the same (compared on
real pages in the tests and in `make bench`).
"""
from __future__ import annotations

from collections import Counter
from itertools import accumulate

from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
from datatrove.utils.text import split_into_words


def n_grams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n))))


def top_duplicate_chars(words: list[str], n: int) -> int:
    """Characters of the most frequent n-gram (joined with spaces) times its count, as datatrove counts them."""
    gram, count = Counter(n_grams(words, n)).most_common(1)[0]  # ties: the first seen, as in datatrove
    return (sum(map(len, gram)) + n - 1) * count


def all_duplicate_chars(words: list[str], n: int, prefix: list[int]) -> int:
    """Characters in repeated n-grams, scanning left to right and skipping past each repeat (datatrove's rule)."""
    grams = n_grams(words, n)
    if len(set(grams)) == len(grams):  # no n-gram repeats: nothing to scan (most documents)
        return 0
    seen: set[tuple[str, ...]] = set()
    repeated, idx, last = 0, 0, len(grams)
    while idx < last:
        gram = grams[idx]
        if gram in seen:
            repeated += prefix[idx + n] - prefix[idx]
            idx += n
        else:
            seen.add(gram)
            idx += 1
    return repeated


class FastGopherRepetitionFilter(GopherRepetitionFilter):
    name = "👯 Gopher Repetition"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        if not text:
            return False, "empty"
        paragraphs = self.paragraph_exp.split(text.strip())
        paragraphs_duplicates, char_duplicates = find_duplicates(paragraphs)
        if self.dup_para_frac and paragraphs_duplicates / len(paragraphs) > self.dup_para_frac:
            return False, "dup_para_frac"
        if self.dup_para_char_frac and char_duplicates / len(text) > self.dup_para_char_frac:
            return False, "dup_para_char_frac"
        lines = self._line_splitter.split(text)
        line_duplicates, char_duplicates = find_duplicates(lines)
        if self.dup_line_frac and line_duplicates / len(lines) > self.dup_line_frac:
            return False, "dup_line_frac"
        if self.dup_line_char_frac and char_duplicates / len(text) > self.dup_line_char_frac:
            return False, "dup_line_char_frac"
        words = split_into_words(text, self.language)
        for n, n_frac in self.top_n_grams:
            if len(words) >= n and top_duplicate_chars(words, n) / len(text) > n_frac:
                return False, f"top_{n}_gram"
        prefix = [0, *accumulate(map(len, words))]
        for n, n_frac in self.dup_n_grams:
            if all_duplicate_chars(words, n, prefix) / len(text) > n_frac:
                return False, f"duplicated_{n}_n_grams"
        return True
