"""report.html of a clean-corpus directory: what was removed, where it came from, and why, in one file.

Built from the run's own files: `stats.json` (the funnel), the kept shards and `removed/<step>/`
(breakdowns by input source and language, the removed documents), and what steps recorded in a
document's metadata:

- `filter_reason` (every datatrove filter), `decontam_file` / `decontam_span` / `decontam_eval_text`;
- `minhash_cluster_id`: a removed near-duplicate and the kept document of its cluster share it;
- `<name>_removed_lines`: [line index, reason(, text)] of the lines a line-level step cut from a document.

It stays small and fast however big the run: each step shows an evenly spaced sample of at most
`SAMPLE` removed documents (the rest are in `removed/<step>/`, linked), texts cut at `TEXT_CHARS`.
Arrow columns are memory-mapped and only the sampled rows are copied out.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from corpus.html_page import Raw, esc, json_block, num, page, table

SAMPLE = 200  # removed documents shown per step
LINE_SAMPLE = 100  # documents with cut lines shown per line-level step
TEXT_CHARS = 2000
MAX_LINES = 300  # lines of one document shown in context
MAX_GROUPS = 40  # rows of a breakdown table (the rest summed as "other")
NO_LANGUAGE = "(not detected)"
_CLUSTER_RE = re.compile(r'"minhash_cluster_id": (\d+)')
REMOVED_LINES_SUFFIX = "_removed_lines"
DEFAULT_REASONS = {
    "language": "other language",
    "exact_dedup": "exact duplicate",
    "minhash": "near duplicate",
}  # steps with one reason


# ------------------------------------------------------------------------------------------ reading
def shard_paths(folder: Path) -> list[Path]:
    """A folder's Arrow shards in row order (none when the folder does not exist)."""
    return sorted(folder.glob("*.arrow")) if folder.is_dir() else []


def read_folder(folder: Path, columns: list[str]) -> pa.Table | None:
    """All shards of a folder as one table (memory-mapped: nothing is copied until rows are taken)."""
    tables = []
    for path in shard_paths(folder):
        tables.append(pa.ipc.open_stream(pa.memory_map(str(path), "r")).read_all().select(columns))
    return pa.concat_tables(tables) if tables else None


def take_rows(table: pa.Table, indices: list[int]) -> list[dict]:
    """Rows of a memory-mapped table as dicts, copying only those rows (`Table.take` on a table of many chunks
    copies whole columns first: the text of every removed document)."""
    return [table.slice(i, 1).to_pylist()[0] for i in indices]


def evenly(n: int, k: int) -> list[int]:
    return [i * n // k for i in range(k)] if n > k else list(range(n))


def cut(text: str | None, chars: int = TEXT_CHARS) -> str:
    text = text or ""
    return text if len(text) <= chars else text[:chars] + f" [... {len(text) - chars:,} more characters]"


def source_group(sources: list[str]) -> callable:
    """Group by input file; with many small files (a folder of pages), by their top folder instead."""
    if len(set(sources)) <= MAX_GROUPS:
        return lambda s: s or "(none)"
    return lambda s: (s or "(none)").split("/")[0]


# ------------------------------------------------------------------------------------------ breakdowns
def breakdowns(out: Path, steps: list[str]) -> dict:
    """Documents in / kept / removed by each step, per input source and per detected language."""
    counts = {"source": defaultdict(Counter), "language": defaultdict(Counter)}
    parts = [("kept", out / "shards")] + [(s, out / "removed" / s) for s in steps]
    tables = [(label, read_folder(folder, ["source", "language"])) for label, folder in parts]
    all_sources = [s for _, t in tables if t is not None for s in t.column("source").unique().to_pylist()]
    group = source_group(all_sources)
    for label, t in tables:
        if t is None:
            continue
        for col, key in (("source", group), ("language", lambda language: language or NO_LANGUAGE)):
            for value, n in Counter(t.column(col).to_pylist()).items():
                counts[col][key(value)][label] += n
    result = {}
    for col, per in counts.items():
        rows = sorted(
            (
                {"key": k, "kept": c["kept"], "docs_in": sum(c.values()), "removed": {s: c[s] for s in steps if c[s]}}
                for k, c in per.items()
            ),
            key=lambda r: (-r["docs_in"], r["key"]),
        )
        if len(rows) > MAX_GROUPS:
            rest = rows[MAX_GROUPS - 1 :]
            other = {
                "key": f"other ({len(rest)})",
                "kept": sum(r["kept"] for r in rest),
                "docs_in": sum(r["docs_in"] for r in rest),
                "removed": dict(sum((Counter(r["removed"]) for r in rest), Counter())),
            }
            rows = rows[: MAX_GROUPS - 1] + [other]
        result[col] = rows
    return result


# ------------------------------------------------------------------------------------------ removed documents
def _meta(row: dict) -> dict:
    return json.loads(row.get("metadata") or "{}")


def removed_sample(out: Path, step: str) -> tuple[int, list[dict]]:
    table = read_folder(out / "removed" / step, ["id", "text", "source", "language", "metadata"])
    if table is None:
        return 0, []
    rows = take_rows(table, evenly(table.num_rows, SAMPLE))
    items = []
    for row in rows:
        meta = _meta(row)
        item = {
            "id": row["id"],
            "source": row["source"],
            "lang": row["language"] or "",
            "reason": meta.get("filter_reason") or DEFAULT_REASONS.get(step, step),
            "text": cut(row["text"]),
        }
        if "decontam_file" in meta:
            item["eval"] = {
                "file": meta["decontam_file"],
                "span": meta.get("decontam_span", ""),
                "text": cut(meta.get("decontam_eval_text", ""), 1000),
            }
        items.append((row, meta, item))
    return table.num_rows, items


def shingle_hashes(text: str, n: int):
    """The word n-grams MinHash hashes (datatrove's text normalisation, our word splitter), each as a 64-bit hash,
    sorted and unique; a text of fewer than n words is one shingle of all its words."""
    import numpy as np
    from datatrove.utils.text import TextNormConfig

    from corpus.dedup import simplify  # datatrove's simplify_text, the same string, several times faster
    from corpus.repetition import gram_hashes, word_ids
    from corpus.text import RegexWordTokenizer

    words = RegexWordTokenizer().word_tokenize(simplify(text, TextNormConfig()))
    return np.unique(gram_hashes(word_ids(words), min(n, len(words)))) if words else np.zeros(0, np.uint64)


def jaccard(a: str, b: str, n: int) -> float:
    """Jaccard similarity of the two texts' shingle sets (hashed: tuples of words would cost ten times more)."""
    import numpy as np

    sa, sb = _cached_shingle_hashes(a, n), _cached_shingle_hashes(b, n)
    common = len(np.intersect1d(sa, sb, assume_unique=True))
    union = len(sa) + len(sb) - common
    return common / union if union else 1.0


_cached_shingle_hashes = lru_cache(maxsize=64)(shingle_hashes)  # a kept document is the twin of many removed ones


def add_exact_pairs(out: Path, items: list, later_steps: list[str], n_grams: int) -> None:
    """The kept copy of each exact duplicate: the first document with the same stripped text, which
    passed exact dedup (so it is in the shards, or was removed by a later step)."""
    wanted = {row["text"].strip() for row, _, _ in items}
    found: dict[str, dict] = {}
    for folder in [out / "shards"] + [out / "removed" / s for s in later_steps]:
        t = read_folder(folder, ["id", "text", "source"])
        if t is None or not wanted - found.keys():
            continue
        hits = pc.is_in(
            pc.utf8_trim_whitespace(t.column("text")), value_set=pa.array(list(wanted - found.keys()), pa.string())
        )
        for row in t.filter(hits).to_pylist():
            found.setdefault(
                row["text"].strip(),
                {**row, "where": "kept" if folder.name == "shards" else f"removed later by {folder.name}"},
            )
    for row, _, item in items:
        twin = found.get(row["text"].strip())
        item["pair"] = _pair(row, twin, n_grams) if twin else {"missing": "the kept copy was not found in this corpus"}


def add_minhash_pairs(out: Path, items: list, n_grams: int) -> None:
    """The kept document of each removed near-duplicate's cluster (same `minhash_cluster_id`)."""
    wanted = {m.get("minhash_cluster_id") for _, m, _ in items} - {None, -1}
    kept: dict[int, dict] = {}
    t = read_folder(out / "shards", ["id", "text", "source", "metadata"]) if wanted else None
    if t is not None:
        hits = pc.match_substring(t.column("metadata"), '"minhash_cluster_id": ')
        for i, meta in zip(pc.indices_nonzero(hits).to_pylist(), t.column("metadata").filter(hits).to_pylist()):
            m = _CLUSTER_RE.search(meta)
            if m and int(m.group(1)) in wanted and int(m.group(1)) not in kept:
                kept[int(m.group(1))] = take_rows(t, [i])[0] | {"where": "kept"}
    for row, meta, item in items:
        cluster = meta.get("minhash_cluster_id")
        if cluster is None:
            continue  # a run made before cluster ids were recorded
        twin = kept.get(cluster)
        item["pair"] = (
            _pair(row, twin, n_grams)
            if twin
            else {
                "missing": "its cluster's kept document is in a corpus this one was deduplicated against "
                "(--dedup-against)"
            }
        )


def _pair(removed: dict, twin: dict, n_grams: int) -> dict:
    return {
        "id": twin["id"],
        "source": twin["source"],
        "where": twin["where"],
        "text": cut(twin["text"]),
        # identical texts (exact duplicates) need no shingling
        "jaccard": 1.0
        if removed["text"].strip() == twin["text"].strip()
        else round(jaccard(removed["text"], twin["text"], n_grams), 4),
    }


# ------------------------------------------------------------------------------------------ cut lines
def line_level(out: Path, steps: list[str]) -> list[dict]:
    """Documents that lost lines, per `<name>_removed_lines` metadata key, with the lines in context.

    The metadata is read one record batch at a time (it holds every cut line: on a large corpus, more than the
    kept text), and only the sampled documents are read whole."""
    folders = [(out / "shards", None)] + [(out / "removed" / s, s) for s in steps]
    found: dict[str, list] = defaultdict(list)  # key -> [(folder, row, removed by the step that cut the lines)]
    reasons: dict[str, Counter] = defaultdict(Counter)
    for folder, step in folders:
        row = 0
        for batch in metadata_batches(folder):
            meta = batch.column(0)
            for i in pc.indices_nonzero(pc.match_substring(meta, REMOVED_LINES_SUFFIX + '": [[')).to_pylist():
                for key, cuts in json.loads(meta[i].as_py()).items():
                    if key.endswith(REMOVED_LINES_SUFFIX) and cuts and isinstance(cuts[0], list):
                        whole = step is not None and step.startswith(key.removesuffix(REMOVED_LINES_SUFFIX))
                        found[key].append((folder, row + i, whole))
                        reasons[key].update(str(c[1]) for c in cuts)
            row += batch.num_rows
    result = []
    for key, places in sorted(found.items()):
        picked = [places[i] for i in evenly(len(places), LINE_SAMPLE)]
        items = []
        for folder in dict.fromkeys(f for f, _, _ in picked):
            table = read_folder(folder, ["id", "text", "source", "metadata"])
            rows = [(r, whole) for f, r, whole in picked if f == folder]
            for (_, whole), row in zip(rows, take_rows(table, [r for r, _ in rows]), strict=True):
                cuts = _meta(row)[key]
                items.append(
                    {
                        "id": row["id"],
                        "source": row["source"],
                        "lines": in_context(row["text"], cuts, whole),
                        "reason": ", ".join(sorted({str(c[1]) for c in cuts})),
                        "reasons": sorted({str(c[1]) for c in cuts}),
                        "text": "",
                    }
                )
        result.append(
            {
                "key": key,
                "name": key.removesuffix(REMOVED_LINES_SUFFIX),
                "docs": len(places),
                "lines": sum(reasons[key].values()),
                "reasons": dict(reasons[key].most_common()),
                "items": items,
            }
        )
    return result


def metadata_batches(folder: Path):
    """The metadata column of a folder's shards, one record batch at a time, in row order (as `read_folder`)."""
    for path in shard_paths(folder):
        with pa.OSFile(str(path), "rb") as f:
            for batch in pa.ipc.open_stream(f):
                yield batch.select(["metadata"])


def in_context(text: str, cuts: list, whole: bool) -> list[list]:
    """[line, reason or None] for the document as read.

    A document removed by the step that cut its lines keeps its text as read (every index points into
    it); any other holds only its kept lines, which fill the indices not cut, and a cut line's text is
    shown when the step recorded it (third element)."""
    by_index = {c[0]: c for c in cuts}
    lines = text.split("\n")
    if whole:
        shown = [[cut(line, 500), by_index[i][1] if i in by_index else None] for i, line in enumerate(lines)]
    else:
        kept, shown = iter(lines), []
        for i in range(len(lines) + len(cuts)):
            c = by_index.get(i)
            if c:
                shown.append([cut(str(c[2]), 500) if len(c) > 2 else "(line text not recorded)", c[1]])
            else:
                shown.append([cut(next(kept, ""), 500), None])
    if len(shown) <= MAX_LINES:
        return shown
    near = {j for i, (_, why) in enumerate(shown) if why for j in range(i - 2, i + 3)}  # cut lines and neighbours
    compact = []
    for i, s in enumerate(shown):
        if i in near:
            compact.append(s)
        elif not compact or compact[-1] != ["...", None]:
            compact.append(["...", None])
    return compact[:MAX_LINES]


# ------------------------------------------------------------------------------------------ page
def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def funnel_svg(stats: dict) -> str:
    """Documents and bytes left after each step, as bars scaled to the input (drawn server-side: prints)."""
    rows = [("input", stats["input"]["documents"], stats["input"]["text_bytes"])]
    rows += [(s["step"], s["docs_out"], s["bytes_out"]) for s in stats["steps"]]
    docs0, bytes0 = max(1, rows[0][1]), max(1, rows[0][2])
    label_w, bar_w, row_h = 150, 420, 34
    parts = []
    for i, (name, docs, nbytes) in enumerate(rows):
        y = i * row_h + 18
        dw, bw = bar_w * docs / docs0, bar_w * nbytes / bytes0
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 12}" text-anchor="end">{esc(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{dw:.1f}" height="12" fill="#2f6fb3">'
            f"<title>{docs:,} documents</title></rect>"
            f'<rect x="{label_w}" y="{y + 13}" width="{bw:.1f}" height="12" fill="#8fb3d9">'
            f"<title>{nbytes:,} bytes</title></rect>"
            f'<text x="{label_w + max(dw, bw) + 6}" y="{y + 11}">{docs:,} docs ({_pct(docs, docs0)})</text>'
            f'<text x="{label_w + max(dw, bw) + 6}" y="{y + 24}" class="muted">'
            f"{nbytes / 1e6:,.2f} MB ({_pct(nbytes, bytes0)})</text>"
        )
    height = len(rows) * row_h + 24
    legend = (
        f'<rect x="{label_w}" y="2" width="10" height="10" fill="#2f6fb3"/>'
        f'<text x="{label_w + 14}" y="11">documents</text>'
        f'<rect x="{label_w + 100}" y="2" width="10" height="10" fill="#8fb3d9"/>'
        f'<text x="{label_w + 114}" y="11">text bytes</text>'
    )
    return (
        f'<svg role="img" aria-label="documents and bytes left after each step" width="{label_w + bar_w + 200}" '
        f'height="{height}" viewBox="0 0 {label_w + bar_w + 200} {height}">{legend}{"".join(parts)}</svg>'
    )


def funnel_table(stats: dict) -> str:
    headers = [
        "step",
        "docs in",
        "docs out",
        "docs removed",
        "% docs",
        "MB in",
        "MB out",
        "MB removed",
        "% bytes",
        "reasons",
        "time (s)",
    ]
    keys = [
        "step",
        "docs_in",
        "docs_out",
        "docs_removed",
        None,
        "bytes_in",
        "bytes_out",
        "bytes_removed",
        None,
        "reasons",
        "time_s",
    ]
    rows = []
    for s in stats["steps"]:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1]))
        rows.append(
            [
                s["step"],
                num(s["docs_in"]),
                num(s["docs_out"]),
                num(s["docs_removed"]),
                _pct(s["docs_removed"], s["docs_in"]),
                Raw(_mb(s["bytes_in"])),
                Raw(_mb(s["bytes_out"])),
                Raw(_mb(s["bytes_removed"])),
                _pct(s["bytes_removed"], s["bytes_in"]),
                reasons,
                f"{s['time_s']:.1f}",
            ]
        )
    return table(headers, rows, numeric={1, 2, 3, 4, 5, 6, 7, 8, 10}, keys=keys)


def _mb(n: int) -> str:
    """MB with the exact byte count in a tooltip and a data attribute (the test reads it back)."""
    return f'<span title="{n:,} bytes" data-bytes="{n}">{n / 1e6:,.2f}</span>'


def breakdown_table(rows: list[dict], label: str, steps: list[str]) -> str:
    used = [s for s in steps if any(r["removed"].get(s) for r in rows)]
    body = [
        [
            r["key"],
            num(r["docs_in"]),
            num(r["kept"]),
            _pct(r["kept"], r["docs_in"]),
            *[num(r["removed"].get(s, 0)) for s in used],
        ]
        for r in rows
    ]
    step_headers = [Raw(f'<span class="muted">removed by</span><br>{esc(s).replace("_", "_<wbr>")}') for s in used]
    return table([label, "docs in", "kept", "% kept", *step_headers], body, numeric=set(range(1, 4 + len(used))))


def render_html(stats: dict, manifest: dict, out: Path) -> str:
    steps = [s["step"] for s in stats["steps"]]
    n_grams = (manifest.get("config", {}).get("minhash") or {}).get("n_grams", 5)
    sections, browsers = [], []
    for i, s in enumerate(stats["steps"]):
        total, items = removed_sample(out, s["step"])
        if not total:
            continue
        if s["step"] == "exact_dedup":
            add_exact_pairs(out, items, steps[i + 1 :], n_grams)
        elif s["step"] == "minhash":
            add_minhash_pairs(out, items, n_grams)
        link = f"removed/{s['step']}/"
        note = (
            f"All {total:,} removed documents are shown."
            if total == len(items)
            else f"An evenly spaced sample of {len(items):,} of the {total:,} removed documents; all of them are in "
            f'<a href="{esc(link)}">{esc(link)}</a> (Arrow shards, same schema as the corpus).'
        )
        browsers.append(
            {"id": f"removed-{s['step']}", "title": s["step"], "total": total, "items": [it for _, _, it in items]}
        )
        sections.append(
            f'<h3 id="removed-{esc(s["step"])}">{esc(s["step"])}: {total:,} documents removed</h3>'
            f'<p class="note">{note}</p><div class="browser" data-browser="removed-{esc(s["step"])}"></div>'
        )
    line_sections = []
    for block in line_level(out, steps):
        browsers.append(
            {"id": f"lines-{block['name']}", "title": block["name"], "total": block["docs"], "items": block["items"]}
        )
        reasons = ", ".join(f"{r} {n:,}" for r, n in block["reasons"].items())
        line_sections.append(
            f'<h3 id="lines-{esc(block["name"])}">{esc(block["name"])}: '
            f"{block['lines']:,} lines cut from {block['docs']:,} documents</h3>"
            f'<p class="note">Reasons: {esc(reasons)}. '
            "Cut lines are struck through in red, in their place in the document as read"
            f"{'' if block['docs'] <= LINE_SAMPLE else f'; a sample of {LINE_SAMPLE} of the documents'}.</p>"
            f'<div class="browser" data-browser="lines-{esc(block["name"])}"></div>'
        )

    inp, outp = stats["input"], stats["output"]
    bd = breakdowns(out, steps)
    cards = "".join(
        f'<div class="card"><span class="muted">{esc(k)}</span><b data-key="{esc(key)}">{esc(v)}</b>{esc(sub)}</div>'
        for k, key, v, sub in [
            ("documents read", "input_documents", num(inp["documents"]), ""),
            ("documents kept", "output_documents", num(outp["documents"]), _pct(outp["documents"], inp["documents"])),
            ("text read (MB)", "input_mb", f"{inp['text_bytes'] / 1e6:,.2f}", ""),
            (
                "text kept (MB)",
                "output_mb",
                f"{outp['text_bytes'] / 1e6:,.2f}",
                _pct(outp["text_bytes"], inp["text_bytes"]),
            ),
            ("shards", "shards", num(len(manifest.get("shards", []))), f"{manifest.get('rows', 0):,} rows"),
        ]
    )
    toc = ['<a href="#funnel">funnel</a>', '<a href="#sources">by source</a>', '<a href="#languages">by language</a>']
    toc += ['<a href="#lines">cut lines</a>'] * bool(line_sections) + [
        '<a href="#removed">removed documents</a>'
    ] * bool(sections)
    body = [
        f"<h1>Clean corpus report: preset <code>{esc(stats['preset'])}</code></h1>",
        f'<p class="muted">Inputs: {", ".join(f"<code>{esc(p)}</code>" for p in manifest.get("inputs", []))}. '
        f"Every number here is read from this run's <code>stats.json</code> and shards "
        '(<a href="stats.json">stats.json</a>, <a href="manifest.json">manifest.json</a>, '
        '<a href="report.md">report.md</a>).</p>',
        f'<nav class="toc">{"".join(toc)}</nav>',
        f'<div class="cards">{cards}</div>',
        '<h2 id="funnel">What each step removed</h2>',
        funnel_svg(stats),
        f'<div id="funnel-table">{funnel_table(stats)}</div>',
        '<p class="note">Bytes removed by a step that keeps a document can come from lines it cut '
        "(C4 quality, the paper cleaner).</p>",
    ]
    if inp.get("skipped"):
        body += [
            "<h3>Skipped input (not documents)</h3>",
            table(["reason", "count"], [[r, num(n)] for r, n in sorted(inp["skipped"].items())], numeric={1}),
            '<p class="note">Each skip is listed with its file and line in <code>.work/skipped/</code>.</p>',
        ]
    body += [
        '<h2 id="sources">By input source</h2>',
        breakdown_table(bd["source"], "source", steps),
        '<h2 id="languages">By detected language</h2>',
        breakdown_table(bd["language"], "language", steps),
    ]
    if line_sections:
        body += ['<h2 id="lines">Lines cut inside documents</h2>', *line_sections]
    if sections:
        body += [
            '<h2 id="removed">Removed documents, step by step</h2>',
            '<p class="note">Search matches the id, source, reason and text; '
            "the reason list filters by why a document went. "
            "Deduplication shows the copy that was kept beside the removed one, "
            "with the Jaccard similarity of their word "
            f"{n_grams}-grams; decontamination shows the evaluation text matched.</p>",
            *sections,
        ]
    body.append(json_block("report-data", {"browsers": browsers}))
    return page(f"Clean corpus report: {stats['preset']}", "\n".join(body), BROWSER_JS)


# A paged, searchable browser over the sampled documents of one step (plain DOM code, no library).
BROWSER_JS = r"""
(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const PER_PAGE = 10;
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.appendChild(k);
    return e;
  }
  function haystack(it) {
    const parts = [it.id, it.source, it.reason, it.lang, it.text];
    if (it.pair) parts.push(it.pair.text || '', it.pair.id || '');
    if (it.eval) parts.push(it.eval.file, it.eval.span, it.eval.text);
    if (it.lines) for (const [t] of it.lines) parts.push(t);
    return parts.join('\n').toLowerCase();
  }
  function renderItem(it) {
    const head = el('header', {}, el('span', {class: 'mono', text: it.id}),
                    it.source !== it.id ? el('span', {text: it.source}) : null,
                    it.lang ? el('span', {text: 'language: ' + it.lang}) : null,
                    el('span', {class: 'reason', text: it.reason || ''}));
    const box = el('article', {class: 'doc'}, head);
    if (it.lines) {
      const lines = el('div', {class: 'text'});
      for (const [t, why] of it.lines) {
        const line = el('div', {class: 'line' + (why ? ' cut' : '')},
                        why ? el('span', {class: 'why', text: why}) : null);
        line.appendChild(document.createTextNode(t === '' ? '\u00a0' : t));
        lines.appendChild(line);
      }
      box.appendChild(lines);
    } else if (it.pair && !it.pair.missing) {
      box.appendChild(el('div', {class: 'pair'},
        el('div', {class: 'removed-side'}, el('h4', {text: 'removed: ' + it.id}),
               el('div', {class: 'text', text: it.text})),
        el('div', {class: 'kept-side'},
               el('h4', {text: (it.pair.where === 'kept' ? 'kept: ' : it.pair.where + ': ') + it.pair.id +
                               (it.pair.source !== it.pair.id ? ' (' + it.pair.source + ')' : '')}),
               el('div', {class: 'text', text: it.pair.text}))));
      box.appendChild(el('p', {class: 'note jaccard',
                               text: 'Jaccard similarity of word n-grams: ' + it.pair.jaccard.toFixed(3)}));
    } else {
      box.appendChild(el('div', {class: 'text', text: it.text}));
      if (it.pair && it.pair.missing)
        box.appendChild(el('p', {class: 'note', text: 'Duplicate of: ' + it.pair.missing}));
    }
    if (it.eval) {
      box.appendChild(el('p', {class: 'note', text: 'Matched ' + it.eval.file + ' on: "' + it.eval.span + '"'}));
      if (it.eval.text) box.appendChild(el('div', {class: 'text kept-side', text: 'Evaluation text: ' + it.eval.text}));
    }
    return box;
  }
  for (const b of data.browsers) {
    const root = document.querySelector('[data-browser="' + b.id + '"]');
    if (!root) continue;
    b.items.forEach(it => { it._hay = haystack(it); });
    const search = el('input', {type: 'search', placeholder: 'search id, source, reason, text',
                                'aria-label': 'search ' + b.title});
    const select = el('select', {'aria-label': 'reason'}, el('option', {value: '', text: 'every reason'}));
    const reasons = it => it.reasons || [it.reason];  // a document that lost lines has one reason per line
    for (const r of [...new Set(b.items.flatMap(reasons))].sort())
      select.appendChild(el('option', {value: r, text: r || '(none)'}));
    const status = el('span', {class: 'muted status'});
    const prev = el('button', {type: 'button', text: '\u2190 previous'}),
          next = el('button', {type: 'button', text: 'next \u2192'});
    const list = el('div', {class: 'items'});
    root.append(el('div', {class: 'controls'}, search, select, el('span', {class: 'pager'}, prev, next), status), list);
    let page = 0;
    function draw() {
      const q = search.value.trim().toLowerCase(), r = select.value;
      const hits = b.items.filter(it => (!r || reasons(it).includes(r)) && (!q || it._hay.includes(q)));
      const pages = Math.max(1, Math.ceil(hits.length / PER_PAGE));
      page = Math.min(page, pages - 1);
      list.replaceChildren(...hits.slice(page * PER_PAGE, (page + 1) * PER_PAGE).map(renderItem));
      status.textContent = hits.length + ' of ' + b.items.length + ' shown documents match; page ' +
                           (page + 1) + ' of ' + pages;
      root.dataset.matches = hits.length;
      prev.disabled = page === 0; next.disabled = page >= pages - 1;
    }
    search.addEventListener('input', () => { page = 0; draw(); });
    select.addEventListener('change', () => { page = 0; draw(); });
    prev.addEventListener('click', () => { page--; draw(); });
    next.addEventListener('click', () => { page++; draw(); });
    draw();
  }
})();
"""
