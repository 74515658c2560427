"""Property tests (hypothesis): rules checked on generated inputs against a reference.

- the held-out split keeps every near-duplicate chain (A ~ B, B ~ C, A not ~ C) on one side, for any order of the
  documents, any ids and any held-out fraction;
- the fast Gopher filters decide exactly as datatrove's GopherQualityFilter / GopherRepetitionFilter, on documents
  and thresholds generated to land near each other;
- the paper cleaner equals a direct restatement of its rules on generated lines.

Example counts are bounded so that each test takes seconds; the seed is fixed (derandomize), so a run is repeatable.
"""

from __future__ import annotations

import hashlib
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatrove.data import Document

FAST = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------------------------- held-out split
def chain_documents() -> list[tuple[str, list[str]]]:
    """Chains of three 100-word documents: B differs from A in 2 words, C from B in 2 others (A from C in 4):
    A ~ B and B ~ C (5-gram Jaccard 86/106 >= 0.8), A not ~ C (76/116). Plus documents alike to none."""
    chains = []
    for c in range(4):
        a = [f"c{c}w{i}" for i in range(100)]
        b = [w if i not in (20, 60) else f"b{c}x{i}" for i, w in enumerate(a)]
        cc = [w if i not in (40, 80) else f"c{c}x{i}" for i, w in enumerate(b)]
        chains.append((f"chain{c}", [" ".join(a), " ".join(b), " ".join(cc)]))
    chains += [(f"single{s}", [" ".join(f"s{s}w{i}" for i in range(60))]) for s in range(3)]
    return chains


CHAINS = chain_documents()
N_DOCS = sum(len(texts) for _, texts in CHAINS)


@FAST
@given(
    order=st.permutations(range(N_DOCS)),
    ids=st.lists(st.text("abcdef0123456789-", min_size=1, max_size=6), min_size=N_DOCS, max_size=N_DOCS, unique=True),
    fraction=st.floats(0.02, 0.98),
)
def test_split_keeps_every_near_duplicate_chain_together(order, ids, fraction):
    from train.split import cluster_split, find_near_duplicates, is_validation, leakage

    docs = [(name, i, text) for name, texts in CHAINS for i, text in enumerate(texts)]
    placed = [docs[k] for k in order]
    doc_ids = {(name, i): ids[pos] for pos, (name, i, _) in enumerate(placed)}
    found = find_near_duplicates([(doc_ids[name, i], text) for name, i, text in placed])
    linked = {frozenset((found.ids[a], found.ids[b])) for a, b in found.pairs}
    for name, texts in CHAINS:
        if len(texts) == 3:  # the chain is as described: its ends are linked only through the middle
            a, b, c = (doc_ids[name, i] for i in range(3))
            assert {frozenset((a, b)), frozenset((b, c))} <= linked and frozenset((a, c)) not in linked
    split = cluster_split(found, fraction)
    assert leakage(found, split)["leaked_docs"] == 0
    for name, texts in CHAINS:
        members = [doc_ids[name, i] for i in range(len(texts))]
        assert {split[m] for m in members} == {is_validation(min(members), fraction)}, name


# ------------------------------------------------------------------------------------- Gopher quality
WORDS = [
    "the",
    "and",
    "of",
    "to",
    "with",
    "have",
    "that",
    "be",
    "a",
    "an",
    "is",
    "cat",
    "river",
    "mill",
    "quietly",
    "extraordinarily",
    "internationalisation",
    "x",
    "ab",
    "12",
    "3.5",
    "#",
    "##tag",
    "...",
    "…",
    ",,",
    ";",
    "-",
    "a1",
    "über",
    "naïve",
    "e-mail",
    "co-op",
    "dont",
    "(",
    ")",
    '"',
    "!!",
    "ok",
]

lines = st.tuples(
    st.sampled_from(["", "- ", "• ", "  - ", "  ", "#"]),
    st.lists(st.sampled_from(WORDS), min_size=0, max_size=14),
    st.sampled_from(["", "", ".", "...", "…", " ...", "!"]),
)


def join_lines(parts) -> str:
    return "\n".join(prefix + " ".join(words) + end for prefix, words, end in parts)


C4_PIECES = WORDS + ["javascript", "Lorem ipsum", "{x}", "[1]", "[edit]", "privacy policy", "x" * 30, "word."]
c4_lines = st.tuples(
    st.sampled_from(["", "  ", "- "]),
    st.lists(st.sampled_from(C4_PIECES), min_size=0, max_size=12),
    st.sampled_from(["", ".", "...", "!", "?", '"', " [2]", ". [citation needed]", "  "]),
)


@FAST
@given(
    parts=st.lists(c4_lines, min_size=1, max_size=14),
    min_sentences=st.sampled_from([-1, 1, 3, 5]),
    min_words=st.sampled_from([-1, 2, 3, 6]),
    max_word=st.sampled_from([-1, 4, 25, 1000]),
    flags=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_fast_c4_quality_decides_as_datatrove(parts, min_sentences, min_words, max_word, flags):
    """Decision, kept text and line statistics equal datatrove's C4 filter on lines hitting each of its rules."""
    from datatrove.pipeline.filters import C4QualityFilter

    from corpus.filters import FastC4QualityFilter
    from corpus.text import RegexWordTokenizer

    citations, punctuation, lorem, javascript, curly, policy = flags
    kwargs = dict(
        remove_citations=citations,
        filter_no_terminal_punct=punctuation,
        min_num_sentences=min_sentences,
        min_words_per_line=min_words,
        max_word_length=max_word,
        filter_lorem_ipsum=lorem,
        filter_javascript=javascript,
        filter_curly_bracket=curly,
        filter_policy=policy,
        language=RegexWordTokenizer(),
    )
    text = join_lines(parts)
    ours, theirs = FastC4QualityFilter(**kwargs), C4QualityFilter(**kwargs)
    ours_doc, theirs_doc = Document(text=text, id="d"), Document(text=text, id="d")
    assert ours.filter(ours_doc) == theirs.filter(theirs_doc)
    assert ours_doc.text == theirs_doc.text
    assert ours.stats.to_dict() == theirs.stats.to_dict()


@FAST
@given(
    parts=st.lists(lines, min_size=1, max_size=12),
    min_words=st.integers(5, 40),
    max_words=st.integers(20, 120),
    min_avg=st.integers(2, 4),
    max_avg=st.integers(4, 9),
    symbol=st.sampled_from([0.02, 0.05, 0.1, 0.2]),
    bullets=st.sampled_from([0.3, 0.6, 0.9]),
    ellipsis=st.sampled_from([0.1, 0.3, 0.5]),
    alpha=st.sampled_from([0.5, 0.8, 0.9]),
    stop=st.integers(0, 4),
)
def test_fast_gopher_quality_decides_as_datatrove(
    parts, min_words, max_words, min_avg, max_avg, symbol, bullets, ellipsis, alpha, stop
):
    from datatrove.pipeline.filters import GopherQualityFilter

    from corpus.quality import FastGopherQualityFilter
    from corpus.text import RegexWordTokenizer

    kwargs = dict(
        min_doc_words=min_words,
        max_doc_words=max_words,
        min_avg_word_length=min_avg,
        max_avg_word_length=max_avg,
        max_symbol_word_ratio=symbol,
        max_bullet_lines_ratio=bullets,
        max_ellipsis_lines_ratio=ellipsis,
        max_non_alpha_words_ratio=alpha,
        min_stop_words=stop,
        language=RegexWordTokenizer(),
    )
    text = join_lines(parts)
    if not RegexWordTokenizer().word_tokenize(text):
        return  # datatrove divides by the word count: a document without words is not one it can judge
    doc = Document(text=text, id="d")
    assert FastGopherQualityFilter(**kwargs).filter(doc) == GopherQualityFilter(**kwargs).filter(doc)


TEN = "the cat and the river mill with that have quietly"  # 10 words, 5 stop words, average length 4.1
QUALITY_EDGES = [  # (text, thresholds changed from those of the test below, the answer), each at one threshold
    ("the cat and the mill with rivers that have a1", {}, True),  # 10 words: the fewest kept
    ("the cat and the mill with rivers that have", {}, (False, "gopher_short_doc")),
    (" ".join([TEN] * 4), {}, True),  # 40 words: the most kept
    (" ".join([TEN] * 4) + " ok", {}, (False, "gopher_long_doc")),
    ("the cat and the cat and the cat and the cat", {}, True),  # average length 3
    ("the cat and the cat and the cat an the cat", {}, (False, "gopher_below_avg_threshold")),
    ("with that have with that have with that have with", {"max_avg_word_length": 4}, True),  # average 4
    (
        "with that have with that have with that have river",
        {"max_avg_word_length": 4},
        (False, "gopher_above_avg_threshold"),
    ),
    (f"{TEN} {TEN[:-13]} c# f#", {}, True),  # 2 hashes in 20 words
    (f"{TEN} {TEN[:-13]} c# f# g#", {}, (False, "gopher_too_many_hashes")),
    ("the cat and the river mill with… that quietly the cat and the mill ... that have", {}, True),  # 2 in 20
    (
        "the cat and the river mill with… that quietly the cat… and the mill ... that have",
        {},
        (False, "gopher_too_many_ellipsis"),
    ),
    ("- the cat and the\n• river mill with\n  that have quietly\nthe old cat", {}, True),  # 2 bullets in 4 lines
    (
        "- the cat and the\n• river mill with\n  - that have quietly\nthe old cat",
        {},
        (False, "gopher_too_many_bullets"),
    ),
    (f"{TEN} ...  \nriver mill with that the\nhave quietly the cat\nold cat on mats", {}, True),  # 1 of 4 lines
    (
        f"{TEN} ...  \nriver mill with that the\nhave quietly the cat…\nold cat on mats",
        {},
        (False, "gopher_too_many_end_ellipsis"),
    ),
    (f"{TEN} 12 a1 x2 34 river 3 mill 56 have cat", {}, True),  # 16 of 20 words with a letter
    (f"{TEN} 12 a1 78 34 river 3 mill 56 have cat", {}, (False, "gopher_below_alpha_threshold")),
    ("the cat of river mill quietly cat river mill cat", {}, True),  # 2 stop words
    ("the cat on river mill quietly cat river mill cat", {}, (False, "gopher_enough_stop_words")),
    (". , ; : ! ? ( ) [ ]", {"min_doc_words": 0}, (False, "gopher_below_alpha_threshold")),  # no word
]


@pytest.mark.parametrize("text, changed, expected", QUALITY_EDGES)
def test_fast_gopher_quality_at_each_threshold(text, changed, expected):
    """Documents that pass every earlier check and sit exactly at one threshold (kept) or just past it (dropped,
    with its reason), as datatrove decides them."""
    from datatrove.pipeline.filters import GopherQualityFilter

    from corpus.quality import FastGopherQualityFilter
    from corpus.text import RegexWordTokenizer

    kwargs = dict(
        min_doc_words=10,
        max_doc_words=40,
        min_avg_word_length=3,
        max_avg_word_length=8,
        max_symbol_word_ratio=0.1,
        max_bullet_lines_ratio=0.5,
        max_ellipsis_lines_ratio=0.25,
        max_non_alpha_words_ratio=0.8,
        min_stop_words=2,
        language=RegexWordTokenizer(),
    )
    kwargs.update(changed)
    doc = Document(text=text, id="d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's warning on the mean of no words
        assert GopherQualityFilter(**kwargs).filter(doc) == expected
    assert FastGopherQualityFilter(**kwargs).filter(doc) == expected


# ------------------------------------------------------------------------------------- Gopher repetition
@st.composite
def repetitive_documents(draw) -> str:
    """Words from a small vocabulary, with spans of earlier words copied, lines repeated and paragraphs."""
    vocab = [f"w{i}" * draw(st.integers(1, 3)) for i in range(draw(st.integers(2, 40)))]
    words: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        if words and draw(st.booleans()):
            start = draw(st.integers(0, len(words) - 1))
            words += words[start : start + draw(st.integers(1, 12))]
        else:
            words += draw(st.lists(st.sampled_from(vocab), min_size=1, max_size=15))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(words) - 1)), max_size=6)))
    pieces = [" ".join(words[a:b]) for a, b in zip([0, *cuts], [*cuts, len(words)])]
    pieces = [p for p in pieces if p]
    if draw(st.booleans()) and pieces:
        pieces += draw(st.lists(st.sampled_from(pieces), max_size=3))  # repeated lines
    separators = draw(st.lists(st.sampled_from(["\n", "\n", "\n\n", " "]), min_size=len(pieces), max_size=len(pieces)))
    return "".join(p + s for p, s in zip(pieces, separators, strict=True)).strip()


@FAST
@given(
    text=repetitive_documents(),
    scale=st.sampled_from([0.5, 1.0, 1.5, 2.5]),
    line=st.sampled_from([0.2, 0.3, 0.6]),
    para=st.sampled_from([0.2, 0.3, 0.6]),
)
def test_fast_gopher_repetition_decides_as_datatrove(text, scale, line, para):
    from datatrove.pipeline.filters import GopherRepetitionFilter

    from corpus.repetition import FastGopherRepetitionFilter
    from corpus.text import RegexWordTokenizer

    kwargs = dict(
        dup_line_frac=line,
        dup_para_frac=para,
        dup_line_char_frac=line * 0.7,
        dup_para_char_frac=para * 0.7,
        top_n_grams=tuple((n, min(0.95, f * scale)) for n, f in ((2, 0.2), (3, 0.18), (4, 0.16))),
        dup_n_grams=tuple(
            (n, min(0.95, f * scale)) for n, f in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.1))
        ),
        language=RegexWordTokenizer(),
    )
    doc = Document(text=text, id="d")
    assert FastGopherRepetitionFilter(**kwargs).filter(doc) == GopherRepetitionFilter(**kwargs).filter(doc)


@FAST
@given(
    text=repetitive_documents(),
    rule=st.sampled_from(["top", "dup"]),
    deltas=st.lists(st.sampled_from([-1e-9, 0.0, 1e-9]), min_size=9, max_size=9),
)
def test_fast_gopher_repetition_decides_as_datatrove_at_the_documents_own_fractions(text, rule, deltas):
    """Each n-gram threshold set at (or a hair beside) the document's own fraction for that n, as datatrove
    counts it: the fast filter's shortcuts must not move a single decision at the boundary."""
    from datatrove.pipeline.filters import GopherRepetitionFilter
    from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate, get_n_grams

    from corpus.repetition import FastGopherRepetitionFilter
    from corpus.text import RegexWordTokenizer

    words = RegexWordTokenizer().word_tokenize(text)

    def own(n: int) -> float:
        if n <= 4:
            grams = get_n_grams(words, n)
            return find_top_duplicate(grams) / len(text) if grams else 0.0
        return find_all_duplicate(words, n) / len(text)

    at = {n: max(0.0, own(n) + delta) for n, delta in zip(range(2, 11), deltas, strict=True)}
    top = tuple((n, at[n] if rule == "top" else 1.0) for n in (2, 3, 4))
    dup = tuple((n, at[n] if rule == "dup" else 1.0) for n in range(5, 11))
    kwargs = dict(
        dup_line_frac=None,
        dup_para_frac=None,
        dup_line_char_frac=None,
        dup_para_char_frac=None,
        top_n_grams=top,
        dup_n_grams=dup,
        language=RegexWordTokenizer(),
    )
    doc = Document(text=text, id="d")
    assert FastGopherRepetitionFilter(**kwargs).filter(doc) == GopherRepetitionFilter(**kwargs).filter(doc)


@FAST
@given(text=repetitive_documents())
def test_repetition_helpers_equal_their_definitions(text):
    """The fast filter's n-gram helpers against direct restatements on word tuples: hashes extended from the
    (n-1)-gram ones equal fresh ones and are equal exactly for equal n-grams; later occurrences; the characters
    of repeated n-grams scanning left to right (skipping past each repeat); the characters under some later
    occurrence; the characters of the most frequent n-gram times its count."""
    import numpy as np
    from datatrove.pipeline.filters.gopher_repetition_filter import find_top_duplicate, get_n_grams

    from corpus.repetition import (
        all_duplicate_chars,
        covered_chars,
        gram_hashes,
        later_occurrences,
        top_duplicate_chars,
        word_ids,
    )
    from corpus.text import RegexWordTokenizer

    words = RegexWordTokenizer().word_tokenize(text)
    ids = word_ids(words)
    prefix = np.concatenate([[0], np.cumsum([len(w) for w in words], dtype=np.int64)])
    previous = None
    for n in range(2, min(10, len(words)) + 1):
        fresh = gram_hashes(ids, n)
        if previous is not None:
            assert gram_hashes(ids, n, previous).tolist() == fresh.tolist()
        previous = fresh
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        assert len(set(zip(grams, fresh.tolist()))) == len(set(grams)) == len(set(fresh.tolist()))
        later = later_occurrences(fresh)
        assert later.tolist() == [g in grams[:i] for i, g in enumerate(grams)]
        seen, repeated, i = set(), 0, 0
        while i < len(grams):
            if grams[i] in seen:
                repeated, i = repeated + sum(map(len, grams[i])), i + n
            else:
                seen.add(grams[i])
                i += 1
        assert all_duplicate_chars(fresh, later, n, prefix) == repeated
        covered = {j for i, gram in enumerate(grams) if gram in grams[:i] for j in range(i, i + n)}
        assert covered_chars(later, n, prefix) == sum(len(words[j]) for j in covered)
        assert top_duplicate_chars(fresh, n, prefix) == find_top_duplicate(get_n_grams(words, n))


REPETITION_EDGES = [  # (text, n-gram thresholds, the answer): paragraphs and lines at theirs (0.25, 0.2, 0.4, 0.3)
    ("", (), (False, "empty")),
    ("abcd\n\nabcd\n\nxyz\n\nzwq", (), True),  # 1 of 4 paragraphs repeated, 4 of 20 characters
    ("abcd\n\nabcd\n\nxyz\n\nabcd", (), (False, "dup_para_frac")),
    ("abcde\n\nabcde\n\nxyz\n\nzwq", (), (False, "dup_para_char_frac")),
    ("ab\nab\nab\nlonger line one\nlonger line two", (), True),  # 2 of 5 lines repeated
    ("ab\nab\nab\nab\nlonger line two", (), (False, "dup_line_frac")),
    ("abcdef\nabcdef\nxyz\nzw", (), True),  # 6 of 20 characters in repeated lines
    ("abcdefg\nabcdefg\nxyz\nzw", (), (False, "dup_line_char_frac")),
    # a later n-gram rule after one a shorter bound let pass is still applied (whatever the order of the fractions)
    ("a b c d e f g x a b c d e f g", ((5, 0.9), (6, 0.9), (7, 0.0)), (False, "duplicated_7_n_grams")),
]


@pytest.mark.parametrize("text, dup_n_grams, expected", REPETITION_EDGES)
def test_fast_gopher_repetition_threshold_cases(text, dup_n_grams, expected):
    from datatrove.pipeline.filters import GopherRepetitionFilter

    from corpus.repetition import FastGopherRepetitionFilter
    from corpus.text import RegexWordTokenizer

    kwargs = dict(
        dup_para_frac=0.25,
        dup_para_char_frac=0.2,
        dup_line_frac=0.4,
        dup_line_char_frac=0.3,
        top_n_grams=(),
        dup_n_grams=dup_n_grams,
        language=RegexWordTokenizer(),
    )
    doc = Document(text=text, id="d")
    assert GopherRepetitionFilter(**kwargs).filter(doc) == expected
    assert FastGopherRepetitionFilter(**kwargs).filter(doc) == expected


# ------------------------------------------------------------------------------------- the paper cleaner
def paper_rules(texts: list[str]) -> list[tuple[bool, str, list]]:
    """The paper's line rules as stated (see corpus.paper_cleaner): per document (kept?, text, removed lines)."""
    from bs4 import BeautifulSoup

    seen = set()
    results = []
    for text in texts:
        kept, removed = [], []
        for i, line in enumerate(text.split("\n")):
            line = line.rstrip()  # trailing whitespace goes; leading whitespace stays
            bare = re.sub(r"[^\w\s]", "", line)
            words = bare.split()
            key = (len(bare), hashlib.md5(("".join(words[:4]) + "".join(words[-4:])).encode()).hexdigest())
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tag = BeautifulSoup(line, "html.parser").find() is not None
            except Exception:
                tag = True
            letters_in_words = [c for w in line.split() for c in w]
            if key in seen:
                why = "duplicate"
            elif tag:
                why = "html"
            elif len(line) < 5:
                why = "too_short"
            elif line and sum(not c.isalpha() for c in letters_in_words) / len(line) > 0.10:
                why = "non_alpha"
            else:
                why = None
            seen.add(key)
            if why:
                removed.append([i, why, line[:1000]])
            else:
                kept.append(line)
        if not kept:
            results.append((False, text, [[i, why] for i, why, _ in removed]))
        else:
            results.append((True, "\n".join(kept), removed))
    return results


fragments = st.sampled_from(
    [
        "The river ran",
        "quietly past the mill",
        "<b>bold</b>",
        "</p>",
        "<a href='x'>link</a>",
        "A --> B",
        "I <3 it",
        "x < y",
        "1, 2, 3!",
        "$$$ ###",
        "ok",
        "“quoted”",
        "snake_case",
        "naïve café",
        "e-mail",
        "   ",
        "\t",
        "...",
        "co-op member",
        "<br/>",
        "<<",
        "—",
        "2021",
        "hello",
        "ab cd",
        "abcdefghi1",
        "abcdefghi1j",
        "ab c",
        "a bc",
        "one two three four",
        "five six seven eight",
        "xx",
        "yy",
        "long " * 230,
    ]
)
paper_lines = st.builds(
    lambda lead, parts, trail: lead + " ".join(parts) + trail,
    st.sampled_from(["", "", " ", "  ", "\t"]),
    st.lists(fragments, max_size=5),
    st.sampled_from(["", "", " ", "\t", "  "]),
)


@FAST
@given(
    docs=st.lists(st.lists(paper_lines, min_size=1, max_size=6), min_size=1, max_size=4),
    repeats=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), max_size=3),
)
def test_paper_cleaner_equals_its_rules_restated(docs, repeats):
    from corpus.paper_cleaner import PaperCleaner

    for d, line in repeats:  # plant lines seen in an earlier document
        if d < len(docs) and docs[0]:
            docs[d].append(docs[0][line % len(docs[0])])
    texts = ["\n".join(lines) for lines in docs]
    cleaner = PaperCleaner()
    counts: dict[str, int] = {}
    for (kept, text, removed), source in zip(paper_rules(texts), texts, strict=True):
        doc = Document(text=source, id="d")
        result = cleaner.filter(doc)
        assert (result is True) == kept and (result is True or result == (False, "no_line_left"))
        assert doc.text == text
        assert doc.metadata.get("paper_removed_lines", []) == removed
        lines = [line.rstrip() for line in source.split("\n")]
        dropped = {i: why for i, why, *_ in removed}
        for i, line in enumerate(lines):  # what the step's statistics count
            why = dropped.get(i)
            for key, value in (
                ((f"lines_dropped_{why}", 1), (f"bytes_dropped_{why}", len(line.encode())))
                if why
                else (("lines_kept", 1),)
            ):
                counts[key] = counts.get(key, 0) + value
    assert {k: v.total for k, v in cleaner.stats.stats.items()} == counts


def test_paper_line_rules_at_their_edges():
    """Exactly 5 characters stay, 4 go; a non-letter share of exactly 0.10 stays; the duplicate key is the first and
    last 4 words joined without spaces, and the length without punctuation."""
    from corpus.paper_cleaner import PaperCleaner, line_key, non_alpha_fraction

    assert non_alpha_fraction("") == 0.0 and non_alpha_fraction("abcdefghi1") == 0.1
    assert [PaperCleaner().reason(line) for line in ("abcd", "abcde", "abcdefghi1", "abcdefgh12")] == [
        ("too_short"),
        None,
        None,
        "non_alpha",
    ]
    assert line_key("ab c d e f g") == line_key("a bc d e f g")  # the paper's key joins the words without spaces
    assert line_key("g f e d ab c") == line_key("g f e d a bc")  # the last 4 as the first 4
    nine = "one two three four five six seven eight nine"
    assert line_key(nine) == line_key(nine.replace("five", "FIVE"))  # the middle word is not in the key
    assert line_key(nine) != line_key(nine.replace("nine", "nina")) != line_key(nine.replace("one", "zzz"))
    assert line_key("one, two") == line_key("one two") != line_key("one  two")  # punctuation goes, spaces count
    writer = object()
    assert PaperCleaner(exclusion_writer=writer).exclusion_writer is writer
