"""Word and sentence splitting for the filters and MinHash: a regex, not spaCy.

datatrove's default English word tokenizer is spaCy, run per document: measured here it is ~90% of
the MinHash signature time and most of the Gopher/C4 time. `RegexWordTokenizer` splits the way
spaCy does for what those heuristics look at (words, with punctuation and symbols as separate
tokens, contractions and hyphenated words kept together) at a small fraction of the cost.
`make bench` measures the speed-up and how often the keep/drop decisions agree with spaCy's.

It is a datatrove `WordTokenizer`: pass an instance as `language=` to datatrove's filters and
MinHash steps (`load_word_tokenizer` accepts a tokenizer instance).
"""
from __future__ import annotations

import re

from datatrove.utils.word_tokenizers import WordTokenizer

# a word: letters/digits joined by inner apostrophes, hyphens, dots or commas (e.g. "don't", "e-mail",
# "3.14", "1,000"); otherwise any single non-space character (punctuation, symbols) is its own token
WORD_RE = re.compile(r"\w+(?:['’\-.,]\w+)*|[^\w\s]", re.UNICODE)
# a sentence ends at terminal punctuation (plus closing quotes/brackets) followed by space, or at a blank line
SENTENCE_END_RE = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+|\n\s*\n")


class RegexWordTokenizer(WordTokenizer):
    def __init__(self, language: str = "en"):
        super().__init__(language)

    def word_tokenize(self, text: str) -> list[str]:
        return WORD_RE.findall(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        for match in SENTENCE_END_RE.finditer(text):
            if text[start:match.start()].strip():
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
