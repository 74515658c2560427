"""Decontamination: drop training documents that contain evaluation text.

Two tests, on lower-cased words without punctuation:

- exact: the document shares a 13-gram with an evaluation text (as GPT-3 did; `n` configurable), or
  contains a whole evaluation sentence of `min_words`..n-1 words;
- near-duplicate: a sentence or line of the document is a near-duplicate of an evaluation unit: a
  datasketch `MinHashLSH` index over the evaluation units (word-bigram shingles) proposes candidates,
  and the exact Jaccard of the shingles (>= `jaccard`) confirms them. This catches lightly edited
  copies, which break every 13-gram of a short sentence.

Evaluation units shorter than `min_words` words are ignored: a 5-word sentence ("John ate the cake .")
is common English, not contamination. Evaluation files are plain text (one unit per non-empty line;
WikiText's raw files have a paragraph per line) or GLUE TSVs (their sentence columns). Each removed
document records the evaluation file it matched, the overlapping span and the evaluation text in its
metadata (`decontam_file`, `decontam_span`, `decontam_eval_text`), which the reports show.

    from corpus.decontam import Decontaminate
    pipeline = [reader, Decontaminate(["wiki.test.raw", "glue/SST-2/dev.tsv"]), writer]
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import xxhash
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def xxh32(data: bytes) -> int:
    return xxhash.xxh32_intdigest(data)


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def glue_sentences(path: Path) -> list[str]:
    """The sentence columns of a GLUE TSV (SST-2: sentence; CoLA: 4th column, no header; RTE: sentence1/2)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        return []
    header = rows[0]
    named = [
        i
        for i, h in enumerate(header)
        if h in ("sentence", "sentence1", "sentence2", "question", "question1", "question2")
    ]
    if named:
        return [row[i] for row in rows[1:] for i in named if i < len(row)]
    return [row[3] for row in rows if len(row) > 3]  # CoLA: no header


def evaluation_units(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"decontamination file not found: {path}")
    if path.suffix == ".tsv":
        return glue_sentences(path)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bigrams(ws: list[str]) -> set[str]:
    return {f"{a} {b}" for a, b in zip(ws, ws[1:])}


class Decontaminate(BaseFilter):
    name = "decontaminate"

    def __init__(
        self,
        eval_paths: list[str],
        n: int = 13,
        min_words: int = 8,
        jaccard: float = 0.6,
        num_perm: int = 64,
        exclusion_writer=None,
    ):
        super().__init__(exclusion_writer)
        self.eval_paths = [str(p) for p in eval_paths]
        self.n, self.min_words, self.jaccard, self.num_perm = n, min_words, jaccard, num_perm
        for p in self.eval_paths:
            if not Path(p).is_file():
                raise FileNotFoundError(f"decontamination file not found: {p}")
        self._index = None  # built lazily in the worker (not pickled)
        self._permutations = None

    # -- the index over evaluation text ----------------------------------------------------------
    def _build(self) -> None:
        from datasketch import MinHashLSH

        self.ngrams: dict[tuple, tuple[int, str]] = {}  # n-gram -> (file, unit text)
        self.short: dict[tuple, list[tuple[tuple, int, str]]] = {}  # first min_words words -> whole short units
        self.units: list[tuple[int, str, set[str]]] = []
        self.eval_bigrams: set[str] = set()
        self.lsh = MinHashLSH(threshold=self.jaccard * 0.8, num_perm=self.num_perm)  # looser: exact Jaccard decides
        for file_index, path in enumerate(self.eval_paths):
            for unit in evaluation_units(Path(path)):
                ws = words(unit)
                if len(ws) < self.min_words:
                    continue
                if len(ws) >= self.n:
                    for i in range(len(ws) - self.n + 1):
                        self.ngrams.setdefault(tuple(ws[i : i + self.n]), (file_index, unit))
                else:
                    self.short.setdefault(tuple(ws[: self.min_words]), []).append((tuple(ws), file_index, unit))
                shingles = bigrams(ws)
                self.eval_bigrams |= shingles
                key = len(self.units)
                self.units.append((file_index, unit, shingles))
                self.lsh.insert(key, self._minhash(shingles))
        self._index = True

    def _minhash(self, shingles: set[str]):
        from datasketch import MinHash

        if self._permutations is None:  # computed once, not per MinHash (datasketch's default)
            template = MinHash(num_perm=self.num_perm, seed=1)
            self._permutations, self._scheme = template.permutations, template.scheme
        m = MinHash(
            num_perm=self.num_perm, seed=1, hashfunc=xxh32, permutations=self._permutations, scheme=self._scheme
        )
        m.update_batch([s.encode("utf-8") for s in shingles])
        return m

    # -- the tests -----------------------------------------------------------------------------------
    def _exact(self, ws: list[str]) -> tuple[int, str, str] | None:
        """(file, overlapping words, evaluation unit) of the first exact match."""
        for i in range(len(ws) - self.min_words + 1):
            if i + self.n <= len(ws):
                hit = self.ngrams.get(tuple(ws[i : i + self.n]))
                if hit:
                    return hit[0], " ".join(ws[i : i + self.n]), hit[1]
            for unit_words, file_index, unit in self.short.get(tuple(ws[i : i + self.min_words]), ()):
                if tuple(ws[i : i + len(unit_words)]) == unit_words:
                    return file_index, " ".join(unit_words), unit
        return None

    def _near(self, text: str) -> tuple[int, str, str] | None:
        for piece in _SPLIT_RE.split(text):
            ws = words(piece)
            if len(ws) < self.min_words:
                continue
            shingles = bigrams(ws)
            # Jaccard >= j with some unit needs at least a fraction j of these bigrams in the evaluation text:
            # a cheap test that spares most sentences the MinHash
            if len(shingles & self.eval_bigrams) < self.jaccard * len(shingles):
                continue
            for key in self.lsh.query(self._minhash(shingles)):
                file_index, unit, unit_shingles = self.units[key]
                if len(shingles & unit_shingles) / len(shingles | unit_shingles) >= self.jaccard:
                    return file_index, piece.strip(), unit
        return None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._index is None:
            self._build()
        hit = self._exact(words(doc.text))
        kind = "exact"
        if hit is None:
            hit, kind = self._near(doc.text), "near_duplicate"
        if hit is None:
            return True
        file_index, span, unit = hit
        doc.metadata["decontam_file"] = self.eval_paths[file_index]
        doc.metadata["decontam_span"] = span[:500]
        doc.metadata["decontam_eval_text"] = unit[:1000]
        self.stat_update(
            f"matched_{Path(self.eval_paths[file_index]).parent.name}_{Path(self.eval_paths[file_index]).name}"
        )
        return False, kind
