"""Gopher's repetition filter, as datatrove implements it, with its n-gram counting done faster.

datatrove's `GopherRepetitionFilter` builds every word n-gram as a joined string in a Python loop, for
n = 2, 3, 4 and again for n = 5..10: after spaCy, that is most of the `full` preset's CPU time. Here each
n-gram is a 64-bit rolling hash of word ids computed with numpy (n-gram hashes extend (n-1)-gram ones),
counted with `np.unique`, and character lengths come from prefix sums of word lengths. The rules,
thresholds and reasons are datatrove's and the decisions the same (compared on real pages in the tests
and in `make bench`). They could differ only on a 64-bit hash collision, or where datatrove, which joins
5- to 10-grams without spaces, counts "ab c" and "a bc" as the same n-gram.
"""
from __future__ import annotations

import numpy as np

from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
from datatrove.utils.text import split_into_words


_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the rolling n-gram hash


def word_ids(words: list[str]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.fromiter((index.setdefault(w, len(index)) for w in words), dtype=np.uint64, count=len(words))


def gram_hashes(ids: np.ndarray, n: int, previous: np.ndarray | None = None) -> np.ndarray:
    """One 64-bit hash per n-gram (n consecutive word ids), extending the (n-1)-gram hashes if given."""
    if previous is None:
        h = ids[: len(ids) - n + 1].copy()
        for k in range(1, n):
            h = h * _MULT + ids[k: len(ids) - n + 1 + k]
        return h
    return previous[:-1] * _MULT + ids[n - 1:]


def top_duplicate_chars(hashes: np.ndarray, n: int, prefix: np.ndarray) -> int:
    """Characters of the most frequent n-gram (joined with spaces) times its count, as datatrove counts them
    (on a tie, the n-gram seen first)."""
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    top = counts.max()
    start = int(first[counts == top].min())
    return int(prefix[start + n] - prefix[start] + n - 1) * int(top)


def all_duplicate_chars(hashes: np.ndarray, n: int, prefix: np.ndarray, text_len: int = 0, frac: float | None = None) -> int:
    """Characters in repeated n-grams, scanning left to right and skipping past each repeat (datatrove's rule).

    Given `frac`, a count that cannot exceed `frac * text_len` is not made exactly: every n-gram datatrove
    counts is a later occurrence of an earlier one, and the ones it counts do not overlap, so the characters
    of the words under any later occurrence bound the count; when that bound is under the limit, the bound
    is returned (the decision is the same)."""
    _, first = np.unique(hashes, return_index=True)
    if len(first) == len(hashes):  # no n-gram repeats (most documents)
        return 0
    repeats = np.ones(len(hashes), dtype=bool)
    repeats[first] = False
    if frac is not None:
        starts = np.flatnonzero(repeats)
        depth = np.zeros(len(prefix), dtype=np.int64)
        np.add.at(depth, starts, 1)
        np.add.at(depth, starts + n, -1)
        covered = np.cumsum(depth[:-1]) > 0  # words under some later occurrence
        bound = int(np.diff(prefix)[covered].sum())
        if bound / text_len <= frac:
            return bound
    idx = int(np.argmax(repeats))  # before the first repeat, every n-gram is new
    grams = hashes.tolist()
    seen = set(grams[:idx])
    repeated, last = 0, len(grams)
    while idx < last:
        gram = grams[idx]
        if gram in seen:
            repeated += int(prefix[idx + n] - prefix[idx])
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
        ids = word_ids(words)
        prefix = np.concatenate([[0], np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=len(words)))])
        hashes: dict[int, np.ndarray] = {}
        for n in sorted({n for n, _ in self.top_n_grams} | {n for n, _ in self.dup_n_grams}):
            if len(words) >= n:
                hashes[n] = gram_hashes(ids, n, hashes.get(n - 1))
        for n, n_frac in self.top_n_grams:
            if n in hashes and top_duplicate_chars(hashes[n], n, prefix) / len(text) > n_frac:
                return False, f"top_{n}_gram"
        for n, n_frac in self.dup_n_grams:
            if n in hashes and all_duplicate_chars(hashes[n], n, prefix, len(text), n_frac) / len(text) > n_frac:
                return False, f"duplicated_{n}_n_grams"
        return True
