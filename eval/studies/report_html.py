"""report.html of a study (ablation, compare, kd-study): report.md as a page, plots inline, and every
run behind the numbers with its metrics, command and fingerprints, linked to its files.

Generic over results.json: the page shows the study's own Markdown (its tables, with whatever spread or
confidence interval the study computed), then every summary statistic found in results.json (any
object with a `mean`), every run (`runs`: its scalar metrics and anything named like a fingerprint),
and the provenance (command, fingerprints, config). A field a study adds later shows up without a
change here.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from corpus.html_page import Raw, esc, page, table
from safe_output import atomic_write

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<b>\1</b>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
PROVENANCE_KEYS = re.compile(r"fingerprint|sha256|command|version|commit", re.I)
FINGERPRINT_KEYS = re.compile(r"fingerprint|sha256", re.I)
GROUP_KEYS = ("arm", "preset", "method", "task", "technique", "seed")


def inline(text: str) -> str:
    out = esc(text)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def image(folder: Path, alt: str, src: str) -> str:
    """A plot as a data: URI, so the page needs no file beside it."""
    path = folder / src
    if not path.is_file() or path.suffix.lower() != ".png":
        return f'<p class="note">(plot {esc(src)} not found)</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{data}"><figcaption class="note">{esc(src)}</figcaption></figure>'


def markdown_to_html(markdown: str, folder: Path) -> str:
    """The Markdown the studies write: headings, paragraphs, bullet lists, pipe tables, images, inline code."""
    blocks, lines = [], markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif m := re.match(r"^(#{1,4}) (.*)$", line):
            level = len(m.group(1))
            blocks.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
        elif m := _IMAGE.match(line.strip()):
            blocks.append(image(folder, m.group(1), m.group(2)))
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            numeric = {j for j in range(len(rows[0])) if body and all(re.match(r"^[-\d.,±% ]+$", r[j]) for r in body if j < len(r))}
            blocks.append(table([Raw(inline(c)) for c in rows[0]], [[Raw(inline(c)) for c in r] for r in body], numeric=numeric))
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{inline(lines[i][2:])}</li>")
                i += 1
            blocks.append(f"<ul>{''.join(items)}</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("|", "- ", "#", "![")):
                para.append(lines[i])
                i += 1
            blocks.append(f"<p>{inline(' '.join(para))}</p>")
    return "\n".join(blocks)


# ------------------------------------------------------------------------------------------ from results.json
def statistics(node, path: str = "") -> list[tuple[str, dict]]:
    """Every summary statistic in results.json: an object with a `mean` (and maybe std, n, a CI), or a
    comparison with a `diff` and its interval."""
    if isinstance(node, dict):
        for key in ("mean", "diff"):
            if isinstance(node.get(key), (int, float)):
                return [(path, {**node, "mean": node[key]})]
        return [hit for k, v in node.items() if k != "runs" for hit in statistics(v, f"{path}.{k}" if path else k)]
    return []


def _ci(stat: dict) -> str:
    for low, high in (("ci_low", "ci_high"), ("low", "high"), ("ci95_low", "ci95_high"), ("lower", "upper")):
        if stat.get(low) is not None and stat.get(high) is not None:
            return f"[{_fmt(stat[low])}, {_fmt(stat[high])}]"
    for key in ("ci", "ci95", "ci_95", "confidence_interval"):
        value = stat.get(key)
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return f"[{_fmt(value[0])}, {_fmt(value[1])}]"
        if isinstance(value, dict):
            return _ci(value)
        if isinstance(value, (int, float)):
            return f"± {_fmt(value)}"
    return "-"


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _value_cell(value) -> Raw:
    """A number as shown, with its exact value in data-value (the browser test compares it to results.json)."""
    return Raw(f'<span data-value="{esc(json.dumps(value))}" title="{esc(value)}">{esc(_fmt(value))}</span>')


def statistics_table(results: dict) -> str:
    stats = statistics(results)
    if not stats:
        return ""
    rows = [[path, _value_cell(s["mean"]), _value_cell(s["std"]) if s.get("std") is not None else "-", _ci(s),
             _fmt(s.get("n", len(s.get("values", [])) or "-"))] for path, s in stats]
    return "<h2 id=\"statistics\">Summary statistics in results.json</h2>" + table(
        ["statistic", "mean (or difference)", "std", "95% confidence interval", "n"], rows, numeric={1, 2, 4})


def scalars(run: dict, prefix: str = "") -> dict:
    """A run's scalar fields, nested ones (summary.*) flattened; curves and lists left out."""
    flat = {}
    for key, value in run.items():
        if isinstance(value, dict):
            flat.update(scalars(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)) and value is not None:
            flat[prefix + key] = value
    return flat


def run_links(out: Path, name: str, flat: dict) -> str:
    """Links to a run's metrics.jsonl and summary.json (in runs/<name>/ or the run_dir it recorded), its
    cached result and its log, where they exist."""
    dirs = [out / "runs" / name] + [Path(v) for k, v in flat.items() if k.endswith("run_dir") and isinstance(v, str)]
    candidates = [("metrics", d / "metrics.jsonl") for d in dirs] + [("summary", d / "summary.json") for d in dirs]
    candidates += [("result", out / "results" / f"{name}.json"), ("log", out / "logs" / f"train-{name}.log")]
    found = dict((label, path) for label, path in reversed(candidates) if path.is_file())  # the first existing one per label
    links = [f'<a href="{esc(_href(path, out))}" title="{esc(path)}">{label}</a>' for label, path in sorted(found.items())]
    return " ".join(links) or "-"


def _href(target: Path, base: Path) -> str:
    """Relative to the report when inside its folder (the folder can move), else an absolute file URI."""
    target = (base / target).resolve()
    try:
        return target.relative_to(base.resolve()).as_posix()
    except ValueError:
        return target.as_uri()


def runs_section(results: dict, out: Path) -> str:
    """One row per run: its evaluation metrics, fingerprints (shortened; the full value on hover) and files;
    everything else it recorded (training summary, command) folded in the last cell."""
    runs = results.get("runs") or {}
    if not runs:
        return ""
    flat = {name: scalars(run) for name, run in runs.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    group_keys = [k for k in GROUP_KEYS if k in keys]
    fingerprint_keys = [k for k in keys if FINGERPRINT_KEYS.search(k)]
    metric_keys = [k for k in keys if "." not in k and k not in group_keys and k not in fingerprint_keys
                   and any(isinstance(f.get(k), (int, float)) and not isinstance(f.get(k), bool) for f in flat.values())]
    rows = []
    for name, f in flat.items():
        rest = [(k, v) for k, v in f.items() if k not in group_keys and k not in metric_keys and k not in fingerprint_keys]
        details = "".join(f"<dt>{esc(k)}</dt><dd>{_value_cell(v) if isinstance(v, (int, float)) else esc(v)}</dd>" for k, v in rest)
        rows.append([Raw(f'<code data-run="{esc(name)}">{esc(name)}</code>'), *[_fmt(f.get(k, "-")) for k in group_keys],
                     *[_value_cell(f[k]) if k in f else "-" for k in metric_keys],
                     *[Raw(f'<code title="{esc(f[k])}">{esc(str(f[k])[:12])}</code>') if k in f else "-" for k in fingerprint_keys],
                     Raw(run_links(out, name, f)),
                     Raw(f"<details><summary>{len(rest)} more</summary><dl>{details}</dl></details>") if rest else "-"])
    keys = ["run", *group_keys, *metric_keys, *fingerprint_keys]
    headers = [k.replace("summary.", "").replace("_", " ") for k in keys] + ["files", "also recorded"]
    numeric = set(range(1 + len(group_keys), 1 + len(group_keys) + len(metric_keys)))
    return ('<h2 id="runs">Every run behind the numbers</h2><p class="note">Each run\'s evaluation metrics and fingerprints as '
            "recorded in results.json, with links to its metrics and logs; the rest it recorded (training summary) unfolds "
            "in the last column.</p>" + table(headers, rows, numeric=numeric, keys=keys + [None, None]))


def provenance(node, path: str = "") -> list[tuple[str, object]]:
    """Commands, fingerprints, hashes and versions anywhere in results.json except inside the runs."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key == "runs":
                continue
            if PROVENANCE_KEYS.search(key) and not isinstance(value, (dict, list)):
                found.append((here, value))
            else:
                found += provenance(value, here)
    return found


def provenance_section(results: dict) -> str:
    items = provenance(results)
    rows = [[path, Raw(f"<code>{esc(value)}</code>")] for path, value in items]
    config = {k: v for k, v in results.items() if k in ("config", "scale", "teacher", "student", "keeps", "layers")}
    return ('<h2 id="provenance">Provenance</h2><p class="note">What made these numbers: the command, and every fingerprint '
            "and version recorded in results.json (per-run ones are in the runs table).</p>"
            + (table(["field", "value"], rows) if rows else "<p>(none recorded)</p>")
            + f"<details><summary>settings</summary><pre>{esc(json.dumps(config, indent=2))}</pre></details>")


def links_section(results: dict, out: Path) -> str:
    """The clean corpora a study made (their own report.html), and the raw files."""
    links = [f'<a href="{esc(n)}">{esc(n)}</a>' for n in ("results.json", "report.md", "config.json") if (out / n).is_file()]
    for name, variant in (results.get("variants") or {}).items():
        clean = Path(variant.get("clean_dir", ""))
        report = clean / "report.html"
        if report.is_file():
            links.append(f'<a href="{esc(_href(report, out))}">cleaning report of <code>{esc(name)}</code></a>')
    return f'<p class="note">Files: {" · ".join(links)}</p>' if links else ""


def render_study_html(out: Path, results: dict, title: str) -> str:
    out = Path(out)
    markdown = (out / "report.md").read_text(encoding="utf-8") if (out / "report.md").is_file() else f"# {title}"
    body = [markdown_to_html(markdown, out), links_section(results, out), statistics_table(results), runs_section(results, out),
            provenance_section(results)]
    return page(title, "\n".join(b for b in body if b))


def write_study_html(out: Path, results: dict, title: str) -> Path:
    path = Path(out) / "report.html"
    atomic_write(path, render_study_html(out, results, title))
    return path
