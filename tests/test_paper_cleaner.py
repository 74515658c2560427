"""The `paper` preset keeps exactly the lines that the rules of Li et al. 2021 keep.

`reference_clean` below is an independent, straight re-statement of the rules (its own regex, hashlib,
BeautifulSoup on every line); `corpus-clean --preset paper` must agree with it line for line on real
text extracted from ../shared/data/html-sample plus planted cases for each rule.
"""

import hashlib
import json
import re

import pytest
from bs4 import BeautifulSoup

from corpus.cli import main as corpus_clean
from corpus.readers import RawDocumentReader
from tests.corpus_helpers import shard_rows, write_jsonl


def reference_clean(docs: list[tuple[str, str]]) -> dict[str, list[tuple[int, str, str | None]]]:
    """{doc id: [(line index, line, reason or None if kept)]}, the documents in corpus order."""
    seen, out = set(), {}
    for doc_id, text in docs:
        verdicts = []
        for i, line in enumerate(text.split("\n")):
            line = line.rstrip()  # the paper reads its file with line.rstrip()
            plain = re.sub(r"[^\w\s]", "", line)
            words = plain.split()
            key = (len(plain), hashlib.md5(("".join(words[:4]) + "".join(words[-4:])).encode()).hexdigest())
            if key in seen:
                verdicts.append((i, line, "duplicate"))
                continue
            seen.add(key)
            try:
                tagged = bool(BeautifulSoup(line, "html.parser").find())
            except Exception:
                tagged = True
            if tagged:
                reason = "html"
            elif len(line) < 5:
                reason = "too_short"
            elif line and sum(1 for w in line.split() for c in w if not c.isalpha()) / len(line) > 0.10:
                reason = "non_alpha"
            else:
                reason = None
            verdicts.append((i, line, reason))
        out[doc_id] = verdicts
    return out


def planted_docs(first_real_line: str) -> list[dict]:
    return [
        {
            "id": "quotes",
            "text": "He said \u201chello\u201d \u2014 then left the room quietly\n"
            "He said hello  then left the room quietly",
        },  # curly quotes and dash stripped: same key
        {"id": "underscore", "text": "snake_case names are kept as words here\nsnakecase names are kept as words here"},
        {
            "id": "spaces",
            "text": "alpha beta gamma delta middle epsilon zeta eta theta\n"
            "alpha beta gamma delta centre epsilon zeta eta theta\n"  # same length and ends: dropped
            "alpha beta gamma delta middle  epsilon zeta eta theta",
        },  # one more space: another key
        {"id": "no-separator", "text": "aa bb cc dd ee ff gg hh\na abb cc dd ee ff gg hh"},  # "aabbccdd" both times
        {"id": "across-docs", "text": f"A fresh line that nobody wrote before today\n{first_real_line}"},
        {
            "id": "html",
            "text": "<p>Plain words inside a paragraph</p>\nSome <b>bold</b> text in a sentence\n<b>x</b>\n"
            "The flow goes A --> B and then on to C\nWhen a < b holds the loop ends early",
        },
        {
            "id": "html-seen",
            "text": "<p>Plain words inside a paragraph</p>\n"  # a repeated HTML line is a duplicate
            "pPlain words inside a paragraphp",
        },  # the HTML line's key: seen already
        {"id": "blank", "text": "First paragraph of the blank line test\n\n\nSecond paragraph after blank lines\n \n"},
        {"id": "short", "text": "abcd\nabcde\nQx"},
        {
            "id": "ratio",
            "text": "abcdefghijklm1 abcdefghijkl23\n"  # 3/29 > 0.10: dropped
            "abcdefghijklmn1 abcdefghijkl23\n"  # 3/30 = 0.10: kept
            "a1 b2 c d e f g h i j k",
        },  # 2/23 (spaces count in the length): kept
        {"id": "all-gone", "text": "<div>only markup</div>\n1234 5678\nabc"},  # no line left: document dropped
    ]


@pytest.mark.filterwarnings("ignore:.*looks more like a:UserWarning")  # bs4, on lines that look like file names
def test_paper_preset_keeps_the_lines_the_rules_keep(shared_data, tmp_path):
    real = [(d.id, d.text) for d in RawDocumentReader([str(shared_data / "html-sample")]).run()]
    first_real_line = real[0][1].split("\n")[0].rstrip()
    planted = planted_docs(first_real_line)
    src = write_jsonl(tmp_path / "docs.jsonl", [{"id": i, "text": t} for i, t in real] + planted)
    out = tmp_path / "clean"
    # several tasks asked for: the result must still follow the corpus order
    assert (
        corpus_clean(["--input", str(src), "--output", str(out), "--preset", "paper", "--workers", "2", "--tasks", "3"])
        == 0
    )

    docs = real + [(d["id"], d["text"]) for d in planted]
    expected = reference_clean(docs)
    kept = {r["id"]: r for r in shard_rows(out)}
    removed = {r["id"]: r for r in shard_rows(out, "removed/paper_lines")}
    want_kept = {i for i, v in expected.items() if any(reason is None for _, _, reason in v)}
    assert set(kept) == want_kept
    assert set(removed) == set(expected) - want_kept
    for doc_id, verdicts in expected.items():
        row = kept.get(doc_id) or removed[doc_id]
        meta = json.loads(row["metadata"])
        if doc_id in kept:
            assert row["text"] == "\n".join(line for _, line, reason in verdicts if reason is None), doc_id
            assert meta.get("paper_removed_lines", []) == [
                [i, reason, line[:1000]] for i, line, reason in verdicts if reason
            ], doc_id
        else:
            assert meta["filter_reason"] == "no_line_left" and row["text"] == dict(docs)[doc_id]
            assert meta["paper_removed_lines"] == [[i, reason] for i, _, reason in verdicts], doc_id

    # each planted rule did what it is there for
    why = {d: [reason for _, _, reason in v] for d, v in expected.items()}
    assert why["quotes"] == [None, "duplicate"]
    assert why["underscore"] == [None, None]
    assert why["spaces"] == [None, "duplicate", None]
    assert why["no-separator"] == [None, "duplicate"]
    assert why["across-docs"] == [None, "duplicate"]
    assert why["html"] == ["html", "html", "html", None, None]
    assert why["html-seen"] == ["duplicate", "duplicate"]
    assert why["blank"] == [None, "duplicate", "duplicate", None, "duplicate", "duplicate"]
    blanks = [reason for v in expected.values() for _, line, reason in v if not line]
    assert set(blanks[1:]) == {"duplicate"}  # blank lines share one key (with lines of punctuation only)
    assert why["short"] == ["too_short", None, "too_short"]
    assert why["ratio"] == ["non_alpha", None, None]
    assert why["all-gone"] == ["html", "non_alpha", "too_short"]
    real_reasons = [reason for doc_id, _ in real for _, _, reason in expected[doc_id]]
    assert real_reasons.count(None) > 100 and {"duplicate", "too_short", "non_alpha"} <= set(real_reasons)

    stats = json.loads((out / "stats.json").read_text())
    all_reasons = [reason for v in expected.values() for _, _, reason in v]
    assert stats["line_level"]["lines_kept"] == all_reasons.count(None)
    for reason in ("duplicate", "html", "too_short", "non_alpha"):
        assert stats["line_level"][f"lines_dropped_{reason}"] == all_reasons.count(reason)
    step = next(s for s in stats["steps"] if s["step"] == "paper_lines")
    assert step["reasons"] == {"no_line_left": len(removed)}
