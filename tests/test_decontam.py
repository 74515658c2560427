"""Decontamination: evaluation text planted in training documents is found, unrelated text is kept."""

from __future__ import annotations

import json
from pathlib import Path

from corpus.cli import main as corpus_clean
from corpus.decontam import Decontaminate, glue_sentences
from corpus_helpers import edit_words, kept_ids, shard_rows, write_jsonl


def unrelated(shared_data: Path) -> list[str]:
    """Real prose that is not evaluation text: Debian handbook paragraphs."""
    from corpus.readers import html_to_text

    pages = sorted((shared_data / "html-sample" / "debian-handbook" / "en-US").glob("*.html"))[:12]
    return [html_to_text(p.read_bytes()) for p in pages]


def replace_words(text: str, replacements: dict[int, str]) -> str:
    ws = text.split()
    for i, w in replacements.items():
        ws[i] = w
    return " ".join(ws)


def test_planted_eval_text_is_removed_and_unrelated_text_kept(shared_data, tmp_path):
    wiki = shared_data / "wikitext-2-raw" / "wiki.test.raw"
    sst2 = shared_data / "glue" / "SST-2" / "dev.tsv"
    paragraphs = [line.strip() for line in wiki.read_text().splitlines() if len(line.split()) > 60][:3]
    sentences = [s for s in glue_sentences(sst2) if 18 <= len(s.split()) <= 25][:3]
    hosts = unrelated(shared_data)
    docs = [
        {"id": "wiki-verbatim", "text": hosts[0] + "\n" + paragraphs[0] + "\n" + hosts[1][:500]},
        {"id": "wiki-edited", "text": hosts[2][:800] + "\n" + edit_words(paragraphs[1], 0.05, seed=1)},
        {"id": "sst2-verbatim", "text": hosts[3][:600] + " " + sentences[0] + " " + hosts[4][:300]},
        # two words changed (6th and 12th): every 13-gram is broken, only the near-duplicate test can find it
        {
            "id": "sst2-edited",
            "text": hosts[5][:600]
            + "\n"
            + replace_words(sentences[1], {6: "quietly", 12: "remarkable"})
            + "\n"
            + hosts[6][:200],
        },
        # shares only short common phrases with the evaluation sets ("one of the best", "the film")
        {
            "id": "common-phrases",
            "text": hosts[7][:800] + "\nThis is one of the best tools of the year, and the film of the "
            "installation is in the manual.",
        },
    ] + [{"id": f"clean-{i}", "text": h} for i, h in enumerate(hosts[8:])]
    src = write_jsonl(tmp_path / "docs.jsonl", docs)
    out = tmp_path / "out"
    assert (
        corpus_clean(
            [
                "--input",
                str(src),
                "--output",
                str(out),
                "--preset",
                "none",
                "--workers",
                "1",
                "--decontaminate",
                str(wiki),
                str(sst2),
            ]
        )
        == 0
    )
    assert set(kept_ids(out)) == {"common-phrases"} | {f"clean-{i}" for i in range(len(hosts) - 8)}
    removed = {r["id"]: json.loads(r["metadata"]) for r in shard_rows(out, "removed/decontaminate")}
    assert set(removed) == {"wiki-verbatim", "wiki-edited", "sst2-verbatim", "sst2-edited"}
    assert (
        removed["wiki-verbatim"]["decontam_file"] == str(wiki) and removed["wiki-verbatim"]["filter_reason"] == "exact"
    )
    assert (
        removed["sst2-edited"]["decontam_file"] == str(sst2)
        and removed["sst2-edited"]["filter_reason"] == "near_duplicate"
    )
    assert "matches" in (out / "report.md").read_text()


def test_short_eval_sentences_are_ignored(tmp_path):
    cola = tmp_path / "dev.tsv"
    cola.write_text(
        "gj04\t1\t\tJohn ate the cake.\n"
        "gj04\t1\t\tThe committee decided that the report should be rewritten entirely.\n"
    )
    step = Decontaminate([str(cola)])
    from datatrove.data import Document

    assert step.filter(Document(text="Yesterday John ate the cake. It was good.", id="a")) is True
    assert step.filter(
        Document(text="News: the committee decided that the report should be rewritten entirely.", id="b")
    ) == (False, "exact")
