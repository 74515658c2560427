"""report.html of a cleaning run, opened in real headless Chromium with the network off: it renders
without errors, its numbers are stats.json's, its search filters the removed documents, and the
dedup / decontamination / cut-line views show what was recorded. Screenshots land in the tmp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browser import Browser
from corpus.cli import main as corpus_clean
from corpus_helpers import edit_words, shard_rows, wikitext_articles, write_jsonl

PLANTED = "it 's a charming and often affecting journey ."  # the first SST-2 dev sentence


@pytest.fixture(scope="module")
def run(shared_data, tmp_path_factory) -> Path:
    """Real Debian pages (other languages, boilerplate, page copies) plus real prose with a near-duplicate,
    an exact copy and a planted SST-2 sentence; every step of `full` removes something."""
    root = tmp_path_factory.mktemp("report")
    articles = wikitext_articles(shared_data, 6)
    records = [{"id": f"prose-{i}", "text": a} for i, a in enumerate(articles[:4])]
    records += [
        {"id": "near-0", "text": edit_words(articles[0], 0.01, seed=0)},
        {"id": "copy-1", "text": articles[1]},
        {"id": "contaminated", "text": articles[4] + "\nA critic wrote that " + PLANTED.replace(" .", "") + "."},
    ]
    extra = write_jsonl(root / "prose.jsonl", records)
    out = root / "clean"
    # Gopher's filters would judge WikiText's tokenised prose; the other steps all act on this input
    assert (
        corpus_clean(
            [
                "--input",
                str(shared_data / "html-sample"),
                str(extra),
                "--output",
                str(out),
                "--preset",
                "full",
                "--workers",
                "1",
                "--tasks",
                "2",
                "--decontaminate",
                str(shared_data / "glue" / "SST-2" / "dev.tsv"),
                "--set",
                "filters.gopher_repetition=null",
                "--set",
                "filters.gopher_quality=null",
            ]
        )
        == 0
    )
    return out


def search(b: Browser, browser: str, query: str) -> None:
    """Type `query` into a step's search box, as a person would (the page listens to `input`)."""
    b.eval(
        f"(() => {{ const i = document.querySelector('{browser} input[type=search]'); i.value = {json.dumps(query)}; "
        "i.dispatchEvent(new Event('input')); })()"
    )


def _number(text: str) -> float:
    return float(text.replace(",", "").strip())


def test_corpus_report_in_chromium(run, tmp_path):
    stats = json.loads((run / "stats.json").read_text())
    steps = {s["step"]: s for s in stats["steps"]}
    assert all(steps[s]["docs_removed"] for s in ("language", "c4_quality", "decontaminate", "exact_dedup", "minhash"))
    with Browser(tmp_path / "profile") as b:
        b.open(run / "report.html")
        b.screenshot(tmp_path / "corpus-top.png", full_page=False)
        assert b.errors == []
        # the headline cards and the funnel table hold stats.json's numbers
        assert (
            _number(b.eval("document.querySelector('[data-key=input_documents]').textContent"))
            == stats["input"]["documents"]
        )
        assert (
            _number(b.eval("document.querySelector('[data-key=output_documents]').textContent"))
            == stats["output"]["documents"]
        )
        rows = b.eval("""[...document.querySelectorAll('#funnel-table tbody tr')].map(tr => Object.fromEntries(
            [...tr.querySelectorAll('[data-key]')].map(td => [td.dataset.key, td.querySelector('[data-bytes]') ?
                td.querySelector('[data-bytes]').dataset.bytes : td.textContent])))""")
        assert [r["step"] for r in rows] == list(steps)
        for r in rows:
            s = steps[r["step"]]
            for key in ("docs_in", "docs_out", "docs_removed", "bytes_in", "bytes_out", "bytes_removed"):
                assert _number(r[key]) == s[key], (r["step"], key)
        # per source: the prose file's documents are all accounted for
        prose = b.eval(
            "[...document.querySelectorAll('#sources + .scroll tbody tr')]"
            ".find(tr => tr.cells[0].textContent === 'prose.jsonl')"
            ".cells[1].textContent"
        )
        assert _number(prose) == 7

        # search narrows the removed documents of a step to the matching ones, and clearing it restores them
        browser = "[data-browser=removed-language]"
        total = int(b.eval(f"document.querySelector('{browser}').dataset.matches"))
        assert total == steps["language"]["docs_removed"]
        search(b, browser, "fr-FR")
        shown = b.eval(f"[...document.querySelectorAll('{browser} article')].map(a => a.textContent)")
        matches = int(b.eval(f"document.querySelector('{browser}').dataset.matches"))
        assert 0 < matches < total and shown and all("fr-FR" in t for t in shown)
        b.eval(f"document.querySelector('{browser}').scrollIntoView()")
        b.screenshot(tmp_path / "corpus-search.png", full_page=False)
        search(b, browser, "")
        assert int(b.eval(f"document.querySelector('{browser}').dataset.matches")) == total

        # near-duplicate: shown beside the kept original, with their Jaccard similarity
        search(b, "[data-browser=removed-minhash]", "near-0")
        b.eval("document.querySelector('[data-browser=removed-minhash]').scrollIntoView()")
        b.screenshot(tmp_path / "corpus-minhash.png", full_page=False)
        pair = b.eval(
            "(() => { const a = document.querySelector('[data-browser=removed-minhash] article'); return "
            "[a.querySelector('.removed-side h4').textContent, a.querySelector('.kept-side h4').textContent, "
            "a.querySelector('.jaccard').textContent]; })()"
        )
        assert {"near-0", "prose-0"} == {pair[0].split(": ")[1], pair[1].split(": ")[1].split(" ")[0]}
        assert 0.8 < float(pair[2].rsplit(" ", 1)[1]) < 1.0
        exact = b.eval(
            "[...document.querySelectorAll('[data-browser=removed-exact_dedup] article .jaccard')]"
            ".map(e => e.textContent)"
        )
        assert exact and all(t.endswith("1.000") for t in exact)
        # decontamination names the evaluation text it matched
        contaminated = b.eval(
            "[...document.querySelectorAll('[data-browser=removed-decontaminate] article')].map(a => a.textContent)"
        )
        assert any(
            "contaminated" in t and "SST-2/dev.tsv" in t and f"Evaluation text: {PLANTED}" in t for t in contaminated
        )
        # C4 cut lines: shown in place, marked with the reason, and those are the lines missing from the kept text
        b.eval("document.querySelector('[data-browser=lines-c4_quality]').scrollIntoView()")
        b.screenshot(tmp_path / "corpus-lines.png", full_page=False)
        first = b.eval(
            "(() => { const a = document.querySelector('[data-browser=lines-c4_quality] article'); return {id: "
            "a.querySelector('header .mono').textContent, "
            "cut: [...a.querySelectorAll('.line.cut')].map(l => l.lastChild.textContent), "
            "kept: [...a.querySelectorAll('.line:not(.cut)')].map(l => l.textContent)}; })()"
        )
        assert first["cut"] and first["kept"]
    kept = next(r for r in shard_rows(run) + shard_rows(run, "removed") if r["id"] == first["id"])
    recorded = json.loads(kept["metadata"])["c4_quality_removed_lines"]
    assert len(recorded) >= len(first["cut"]) and all(
        shown.startswith(c[2][:100]) for c, shown in zip(recorded, first["cut"])
    )
    # a long document is shown as its cut lines with two lines around each ("..." between), long lines cut at 500
    # characters
    kept_starts = {line[:100] for line in kept["text"].split("\n")}
    assert all(line[:100] in kept_starts for line in first["kept"] if line != "...")


def test_sample_is_bounded_and_links_the_rest(run, monkeypatch, tmp_path):
    """Past the bound a step shows an evenly spaced sample and links removed/<step>/ for the rest."""
    from corpus import report_html

    monkeypatch.setattr(report_html, "SAMPLE", 3)
    stats, manifest = (json.loads((run / f).read_text()) for f in ("stats.json", "manifest.json"))
    page = report_html.render_html(stats, manifest, run)
    data = json.loads(page.split('id="report-data">', 1)[1].split("</script>", 1)[0].replace("<\\/", "</"))
    removed = {b["id"]: b for b in data["browsers"] if b["id"].startswith("removed-")}
    language = removed["removed-language"]
    assert len(language["items"]) == 3 < language["total"]
    assert f"An evenly spaced sample of 3 of the {language['total']:,} removed documents" in page
    assert '<a href="removed/language/">removed/language/</a>' in page


def test_study_page_shows_whatever_results_json_records(tmp_path):
    """A study's report.html is generic over results.json: statistics with a CI, per-run fingerprints and
    run folders named anywhere (a study may keep runs in fingerprinted folders) all reach the page."""
    from eval.studies.report_html import render_study_html

    run_dir = tmp_path / "runs" / "full-seed0-3f2a"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "val_loss": 6.0}\n')
    markdown = "# A study <script>\n\n| data | ppl |\n|---|---:|\n| `full` | 41.5 ± 0.3 |\n"
    results = {
        "command": "python -m eval ablation --scale smoke",
        "comparisons": {"wikitext_ppl": {"diff": -1.25, "low": -2.5, "high": -0.125, "df": 3.2}},
        "stats": {"full": {"mean": 41.5, "std": 0.3, "n": 3, "ci95": [40.75, 42.25]}},
        "variants": {"full": {"unit": {"kind": "clean corpus", "fingerprint": "abc123def4567890"}}},
        "runs": {
            "full-seed0": {
                "preset": "full",
                "seed": 0,
                "wikitext_ppl": 41.25,
                "curve": [[1, 6.0]],
                "summary": {"run_dir": str(run_dir), "fingerprint": "feedbeef00112233", "tokens": 6144},
            }
        },
    }
    page = render_study_html(tmp_path, results, "A study", markdown)
    assert "<td><code>full</code></td>" in page and "41.5 ± 0.3" in page  # the study's own Markdown table
    assert "<h1>A study &lt;script&gt;</h1>" in page  # HTML in the Markdown is shown, not run
    assert "[-2.5, -0.125]" in page and "[40.75, 42.25]" in page  # both CI shapes
    assert 'data-value="41.25"' in page and 'title="feedbeef00112233"' in page  # the run's metric and fingerprint
    assert 'href="runs/full-seed0-3f2a/metrics.jsonl"' in page  # its metrics, where the run recorded its folder
    assert "variants.full.unit.fingerprint" in page and "abc123def4567890" in page
    assert "python -m eval ablation --scale smoke" in page


def test_paper_cut_lines_in_context(tmp_path):
    """The paper cleaner's cut lines, in place: a kept document shows its recorded cut lines among the kept
    ones; a document left with no line shows its text as read, every line marked."""
    from corpus import report_html

    prose = "The committee met on Tuesday and agreed on a budget for the coming year"
    records = [
        {"id": "a", "text": f"{prose}\n<b>bold</b> markup here\nAnother honest line of plain words"},
        {"id": "b", "text": f"{prose}\n12345 678 90"},
    ]  # its first line repeats a's, its second is digits
    src = write_jsonl(tmp_path / "docs.jsonl", records)
    assert (
        corpus_clean(["--input", str(src), "--output", str(tmp_path / "clean"), "--preset", "paper", "--workers", "1"])
        == 0
    )
    (block,) = report_html.line_level(tmp_path / "clean", ["paper_lines"])
    docs = {item["id"]: item["lines"] for item in block["items"]}
    assert docs["a"] == [
        [prose, None],
        ["<b>bold</b> markup here", "html"],
        ["Another honest line of plain words", None],
    ]
    assert docs["b"] == [[prose, "duplicate"], ["12345 678 90", "non_alpha"]]


def test_pair_jaccard_is_that_of_the_word_5_gram_sets():
    from corpus.report_html import jaccard

    words = [f"w{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(105)]  # 101 distinct 5-grams (no digits:
    # MinHash's normalisation turns every number into 0)
    base = " ".join(words)
    one_edit = " ".join(words[:50] + ["new"] + words[51:])  # 5 of them replaced: 96 shared of 106
    assert jaccard(base, one_edit, 5) == pytest.approx(96 / 106)
    assert jaccard(base, base.upper() + " !", 5) == 1.0  # the texts MinHash compares: case and punctuation go
    assert jaccard(base, " ".join(words[50:]), 5) == pytest.approx(51 / 101)
    assert jaccard("a b c", "a b c", 5) == 1.0 and jaccard("a b c", "a b c d e f", 5) == 0.0  # short: one shingle
    assert jaccard("", "", 5) == 1.0
