"""Word and sentence splitting for the filters and MinHash: a regex, not spaCy.

datatrove's default English word tokenizer is spaCy, run per document: measured here it is ~90% of
the MinHash signature time and most of the Gopher/C4 time. `RegexWordTokenizer` splits the way
spaCy does for what those heuristics look at, with plain string operations and regexes.
`make bench` measures the speed-up and how often the keep/drop decisions agree with spaCy's.

It is a datatrove `WordTokenizer`: pass an instance as `language=` to datatrove's filters and
MinHash steps (`load_word_tokenizer` accepts a tokenizer instance).
"""

from __future__ import annotations

import re
from itertools import compress, count
from operator import not_

from datatrove.utils.word_tokenizers import WordTokenizer

# spaCy's English rules, simplified: split text on whitespace, peel punctuation off both ends of each
# piece, split contractions ("don't" -> "do", "n't"), and split inside a piece at hyphens, "/", ":", "=",
# "<", ">" between letters, at commas between letters and at ellipses. Paths like /etc/hosts and names
# like main.cf stay whole, as in spaCy. Measured on the demo corpus: the keep/drop decisions of the
# `full` filters agree with spaCy's on 98.7% of English pages (`make bench`).
_PREFIX = frozenset("\"'([{<*`“‘«¿¡$#_&=~+§")
_SUFFIX = frozenset("\"'.,;:!?)]}>%”’»…(*")
_INFIX_RE = re.compile(
    r"(?<=[^\W_])(-|–|—|~)(?=[^\W\d_])|(\.\.+|…)|(?<=[^\W_])([:<>=/])(?=[^\W\d_])|(?<=[^\W\d_])(,)(?=[^\W\d_])"
)
_CONTRACTION_RE = re.compile(r"(?i)^(.+?)(n['’]t|['’](?:s|re|ll|ve|d|m))$")
_ABBREVIATION_RE = re.compile(r"(?:[^\W\d_]\.)+")  # e.g. i.e. U.S.
_INFIX_CHARS = frozenset("-–—~…:<>=/,")  # a core holding none of these (and no "..") has nothing to split inside
# a sentence ends at terminal punctuation (plus closing quotes/brackets) followed by space, or at a blank line
SENTENCE_END_RE = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+|\n\s*\n")


def peel(piece: str) -> tuple[list[str], str, list[str]]:
    """(punctuation peeled off the front, what is left, punctuation peeled off the end, outermost last)."""
    prefix, suffix = [], []
    while len(piece) > 1 and piece[0] in _PREFIX:
        prefix.append(piece[0])
        piece = piece[1:]
    while len(piece) > 1 and piece[-1] in _SUFFIX and not (piece[-1] == "." and _ABBREVIATION_RE.fullmatch(piece)):
        suffix.append(piece[-1])
        piece = piece[:-1]
    return prefix, piece, suffix


def split_piece(piece: str) -> list[str]:
    """One whitespace-separated piece -> tokens, spaCy style. Each rule is tried only where it can apply (the
    contraction rule on a piece with an apostrophe, "cannot" on six letters, the infix rule on a core holding one
    of its characters): most pieces that get here occur once in a corpus (code, paths, names)."""
    if piece.isalnum():  # most words: nothing to split
        return [piece]
    prefix, piece, suffix = peel(piece)
    match = _CONTRACTION_RE.match(piece) if "'" in piece or "’" in piece else None
    if match:
        cores = [match.group(1), match.group(2)]
    elif len(piece) == 6 and piece.lower() == "cannot":
        cores = [piece[:3], piece[3:]]
    else:
        cores = [piece]
    tokens = prefix
    for core in cores:
        if _INFIX_CHARS.isdisjoint(core) and ".." not in core:
            tokens.append(core)
        else:
            tokens += [p for p in _INFIX_RE.split(core) if p]
    if suffix:
        tokens += suffix[::-1]
    return tokens


def split_non_alnum(piece: str) -> list[str] | tuple[str, str]:
    """`split_piece` of a piece that is not all letters and digits, with a fast path for "word," and "word."."""
    if (
        piece[:-1].isalnum()
        and piece[-1] in _SUFFIX
        and (len(piece) > 2 or piece[-1] != ".")
        and piece[:-1].lower() != "cannot"
    ):  # "word," "word." (not "a.", an abbreviation): what split_piece does
        return piece[:-1], piece[-1]
    return split_piece(piece)


_SPLIT_CACHE: dict[str, tuple[str, ...]] = {}
_SPLIT_CACHE_SIZE = 1 << 16  # distinct pieces remembered (then forgotten all at once: memory stays bounded)


class RegexWordTokenizer(WordTokenizer):
    def __init__(self, language: str = "en"):
        super().__init__(language)

    def word_tokenize(self, text: str) -> list[str]:
        # the alphanumeric pieces (most words) are found in C (map/compress) and copied over in slices; the others
        # are split once per distinct piece ("word," "word." recur on every page)
        pieces = text.split()
        tokens, start = [], 0
        for i in compress(count(), map(not_, map(str.isalnum, pieces))):
            tokens += pieces[start:i]
            piece = pieces[i]
            split = _SPLIT_CACHE.get(piece)
            if split is None:
                if len(_SPLIT_CACHE) >= _SPLIT_CACHE_SIZE:
                    _SPLIT_CACHE.clear()
                split = _SPLIT_CACHE[piece] = tuple(split_non_alnum(piece))
            tokens += split
            start = i + 1
        tokens += pieces[start:]
        return tokens

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        for match in SENTENCE_END_RE.finditer(text):
            if text[start : match.start()].strip():
                spans.append((start, match.start()))
            start = match.end()
        if text[start:].strip():
            spans.append((start, len(text)))
        return spans

    def sent_tokenize(self, text: str) -> list[str]:
        return [text[a:b] for a, b in self.span_tokenize(text)]

    # instances are interchangeable: equal and hashable alike, so datatrove's lru_caches keyed on the
    # tokenizer hit across pickled copies in worker processes
    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.language == self.language

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.language))

    def __repr__(self) -> str:
        return f"RegexWordTokenizer({self.language!r})"
