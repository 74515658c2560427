"""report.html of a study (ablation, compare, kd-study): the study's report as a page, plots inline, and every
run behind the numbers with its metrics, command and fingerprints, linked to its files.

Built from what the study computed, never from files read back: the Markdown report the study made from its
results (rendered by markdown-it, raw HTML in it escaped), then every summary statistic found in results.json
(any object with a `mean`), every run (`runs`: its scalar metrics and anything named like a fingerprint), and
the provenance (command, fingerprints, config). A field a study adds later shows up without a change here.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from markdown_it import MarkdownIt

from corpus.html_page import Raw, esc, page, table
from safe_output import atomic_json, atomic_write

PROVENANCE_KEYS = re.compile(r"fingerprint|sha256|command|version|commit", re.I)
FINGERPRINT_KEYS = re.compile(r"fingerprint|sha256", re.I)
GROUP_KEYS = ("arm", "preset", "method", "task", "technique", "seed")


def image(folder: Path, alt: str, src: str) -> str:
    """A plot as a data: URI, so the page needs no file beside it."""
    path = folder / src
    if not path.is_file() or path.suffix.lower() != ".png":
        return f'<span class="note">(plot {esc(src)} not found)</span>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="plot" alt="{esc(alt)}" title="{esc(src)}" src="data:image/png;base64,{data}">'


def markdown_to_html(markdown: str, folder: Path) -> str:
    """CommonMark with pipe tables; images (the study's plots in `folder`) inline, tables scrollable."""
    def render_image(renderer, tokens, i, options, env) -> str:
        return image(folder, tokens[i].content, tokens[i].attrGet("src"))

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("image", render_image)
    md.add_render_rule("table_open", lambda renderer, tokens, i, options, env: '<div class="scroll"><table>\n')
    md.add_render_rule("table_close", lambda renderer, tokens, i, options, env: "</table></div>\n")
    return md.render(markdown)


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


def render_study_html(out: Path, results: dict, title: str, markdown: str) -> str:
    """The page: `markdown` (the study's report, made from `results`), then what results.json records."""
    out = Path(out)
    body = [markdown_to_html(markdown, out), links_section(results, out), statistics_table(results), runs_section(results, out),
            provenance_section(results)]
    return page(title, "\n".join(b for b in body if b))


def write_study_html(out: Path, results: dict, title: str, markdown: str) -> Path:
    path = Path(out) / "report.html"
    atomic_write(path, render_study_html(out, results, title, markdown))
    return path


def write_report_files(out: Path, results: dict, title: str, markdown: str) -> Path:
    """A study's results.json, report.md and report.html, all from `results` and the Markdown made from it.
    Returns the path of report.html."""
    atomic_json(Path(out) / "results.json", results)
    atomic_write(Path(out) / "report.md", markdown)
    return write_study_html(out, results, title, markdown)
