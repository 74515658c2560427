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
    """A 64-bit id per word: Python's string hash (equal words, equal ids; a collision is as unlikely as one
    of the n-gram hashes)."""
    return np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)


def gram_hashes(ids: np.ndarray, n: int, previous: np.ndarray | None = None) -> np.ndarray:
    """One 64-bit hash per n-gram (n consecutive word ids), extending the (n-1)-gram hashes if given."""
    if previous is None:
        h = ids[: len(ids) - n + 1].copy()
        for k in range(1, n):
            h = h * _MULT + ids[k : len(ids) - n + 1 + k]
        return h
    return previous[:-1] * _MULT + ids[n - 1 :]


def group_starts(ordered: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in a sorted array."""
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


def top_duplicate_chars(hashes: np.ndarray, n: int, prefix: np.ndarray) -> int:
    """Characters of the most frequent n-gram (joined with spaces) times its count, as datatrove counts them
    (on a tie, the n-gram seen first)."""
    ordered = np.sort(hashes)
    starts = group_starts(ordered)
    counts = np.diff(np.append(starts, len(ordered)))
    top = int(counts.max())
    tops = ordered[starts[counts == top]]
    if top == 1:
        start = 0
    elif len(tops) == 1:  # the usual case: one n-gram is the most frequent
        start = int(np.argmax(hashes == tops[0]))
    else:
        start = int(np.flatnonzero(np.isin(hashes, tops))[0])
    return int(prefix[start + n] - prefix[start] + n - 1) * top


def later_occurrences(hashes: np.ndarray) -> np.ndarray:
    """True where an n-gram occurred before."""
    order = np.argsort(hashes)
    later = np.ones(len(hashes), dtype=bool)
    later[np.minimum.reduceat(order, group_starts(hashes[order]))] = False
    return later


def covered_chars(later: np.ndarray, n: int, prefix: np.ndarray) -> int:
    """Characters of the words under some later occurrence of an n-gram. It bounds datatrove's count (every
    n-gram it counts is a later occurrence, and those it counts do not overlap), and it can only shrink as n
    grows (a later (n+1)-gram starts a later n-gram and is followed by one)."""
    starts = np.flatnonzero(later)
    depth = np.zeros(len(prefix), dtype=np.int64)
    depth[starts] += 1
    depth[starts + n] -= 1
    return int(np.diff(prefix)[np.cumsum(depth[:-1]) > 0].sum())


def all_duplicate_chars(hashes: np.ndarray, later: np.ndarray, n: int, prefix: np.ndarray) -> int:
    """Characters in repeated n-grams, scanning left to right and skipping past each repeat (datatrove's rule)."""
    idx = int(np.argmax(later))  # before the first repeat, every n-gram is new
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
        bounds: dict[int, int] = {}  # covered_chars of each n measured
        for n, n_frac in self.dup_n_grams:
            if n not in hashes or any(m <= n and bound / len(text) <= n_frac for m, bound in bounds.items()):
                continue  # a bound from a shorter n-gram already shows this one passes
            later = later_occurrences(hashes[n])
            bounds[n] = covered_chars(later, n, prefix) if later.any() else 0
            if bounds[n] / len(text) > n_frac and all_duplicate_chars(hashes[n], later, n, prefix) / len(text) > n_frac:
                return False, f"duplicated_{n}_n_grams"
        return True
