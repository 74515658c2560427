"""stats.json and report.md of a clean-corpus directory, built from datatrove's per-stage stats.

Between every two steps the pipeline has a `Measure` (documents and UTF-8 bytes that got through), so
each step's in/out numbers are measured, not derived; drop reasons and time come from the step's own
datatrove stats, skipped inputs from the reader's.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from corpus.arrow_writer import iter_shard_rows

MEASURE_TYPE = "📏 - MEASURE"
INPUT_STEP = "input"


def stage_entries(lay, stage: str) -> list[dict]:
    """The step stats of one stage summed over all its tasks (datatrove's own stats.json only sums the
    tasks of the last invocation, which after a resume is not all of them)."""
    from datatrove.utils.stats import PipelineStats

    files = sorted((lay.logs / stage / "stats").glob("*.json"))
    merged = sum((PipelineStats.from_json(json.loads(f.read_text())) for f in files), start=PipelineStats())
    return json.loads(merged.to_json()) if files else []


def _total(value) -> float:
    return value.get("total", 0) if isinstance(value, dict) else (value or 0)


def collect_stats(lay, preset: str, stages: list[str]) -> dict:
    measures: list[tuple[str, dict]] = []
    steps: dict[str, dict] = {}
    skipped: dict[str, int] = {}
    line_stats: dict[str, int] = {}
    for stage in stages:
        for entry in stage_entries(lay, stage):
            kind, _, name = entry["name"].partition(": ")
            stats = entry.get("stats", {})
            if kind == MEASURE_TYPE or name == INPUT_STEP:
                if name == INPUT_STEP and any(label == INPUT_STEP for label, _ in measures):
                    continue
                measures.append((name, {"documents": int(_total(stats.get("documents"))), "text_bytes": int(_total(stats.get("text_bytes")))}))
                continue
            for key, value in stats.items():
                if key.startswith("skipped_"):
                    skipped[key.removeprefix("skipped_")] = skipped.get(key.removeprefix("skipped_"), 0) + int(_total(value))
                elif key.startswith(("lines_kept", "lines_dropped_", "bytes_dropped_")):
                    line_stats[key] = line_stats.get(key, 0) + int(_total(value))
            steps[name] = {
                "reasons": {k.removeprefix("dropped_"): int(_total(v)) for k, v in stats.items() if k.startswith("dropped_")},
                "time_s": round(_total(entry.get("time_stats")), 3),
            }
    table = []
    for (prev_name, before), (name, after) in zip(measures, measures[1:]):
        removed_dir = lay.removed_dir(name)
        table.append(
            {
                "step": name,
                "docs_in": before["documents"],
                "docs_out": after["documents"],
                "docs_removed": before["documents"] - after["documents"],
                "bytes_in": before["text_bytes"],
                "bytes_out": after["text_bytes"],
                "bytes_removed": before["text_bytes"] - after["text_bytes"],
                "reasons": steps.get(name, {}).get("reasons", {}),
                "time_s": steps.get(name, {}).get("time_s", 0.0),
                "removed_dir": f"removed/{name}" if removed_dir.exists() else None,
            }
        )
    first = measures[0][1] if measures else {"documents": 0, "text_bytes": 0}
    last = measures[-1][1] if measures else first
    return {
        "preset": preset,
        "input": {**first, "skipped": skipped},
        "steps": table,
        "line_level": line_stats,
        "output": last,
    }


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.2f}"


def md_text(value) -> str:
    """Text from a document (or a user's file name) as Markdown that shows it literally: no HTML runs (<, >, &
    as entities), no link, image, emphasis or table cell starts (their characters backslash-escaped), one line."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return MD_SPECIAL.sub(r"\\\1", text)


MD_SPECIAL = re.compile(r"([\\`*_\[\]()#|!~{}])")


def md_code(value) -> str:
    """A Markdown code span holding `value` literally (a fence longer than any run of backticks inside)."""
    text = " ".join(str(value).split())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def removed_examples(lay, step: str, k: int = 3, chars: int = 300) -> list[dict]:
    folder = lay.removed_dir(step)
    examples = []
    for shard in sorted(folder.glob("*.arrow")) if folder.exists() else []:
        for row in iter_shard_rows(shard):
            meta = json.loads(row["metadata"] or "{}")
            reason = meta.get("filter_reason", "")
            if "decontam_file" in meta:
                reason += f": matches {meta['decontam_file']} on \"{meta['decontam_span'][:120]}\""
            examples.append({"id": row["id"], "source": row["source"], "reason": reason, "text": row["text"][:chars]})
            if len(examples) >= k:
                return examples
    return examples


def render_markdown(stats: dict, manifest: dict, lay) -> str:
    inp, out = stats["input"], stats["output"]
    lines = [
        f"# Clean corpus report: preset `{stats['preset']}`",
        "",
        f"- input: {', '.join(md_code(p) for p in manifest['inputs'])}",
        f"- documents: {inp['documents']:,} read -> {out['documents']:,} kept ({_pct(out['documents'], inp['documents'])})",
        f"- text: {_mb(inp['text_bytes'])} MB read -> {_mb(out['text_bytes'])} MB kept ({_pct(out['text_bytes'], inp['text_bytes'])})",
        f"- shards: {len(manifest['shards'])} in `shards/` ({manifest['rows']:,} rows)",
        "",
    ]
    if inp["skipped"]:
        lines += ["## Skipped input (not documents)", "", "| reason | count |", "|---|---:|"]
        lines += [f"| {reason} | {count:,} |" for reason, count in sorted(inp["skipped"].items())]
        lines += ["", f"Every skip is listed with its file and line in `.work/skipped/`.", ""]
    if stats["steps"]:
        lines += [
            "## What each step removed",
            "",
            "| step | docs in | docs removed | % docs | MB in | MB removed | % bytes | top reasons | time (s) |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for s in stats["steps"]:
            reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1])[:4])
            lines.append(
                f"| {s['step']} | {s['docs_in']:,} | {s['docs_removed']:,} | {_pct(s['docs_removed'], s['docs_in'])} | "
                f"{_mb(s['bytes_in'])} | {_mb(s['bytes_removed'])} | {_pct(s['bytes_removed'], s['bytes_in'])} | {reasons} | {s['time_s']:.1f} |"
            )
        lines.append("")
        lines.append("Bytes removed by a step that keeps a document can come from lines it cut (C4 quality, paper line cleaner).")
        lines.append("")
    if stats["line_level"]:
        lines += ["## Lines kept and removed by line-level steps", "", "| what | count |", "|---|---:|"]
        lines += [f"| {k} | {v:,} |" for k, v in sorted(stats["line_level"].items())]
        lines.append("")
    example_steps = [s for s in stats["steps"] if s["removed_dir"] and s["docs_removed"]]
    if example_steps:
        lines += ["## Examples of removed documents", ""]
        for s in example_steps:
            lines += [f"### {s['step']} (all of them in {md_code(s['removed_dir'] + '/')})", ""]
            for ex in removed_examples(lay, s["step"]):
                reason = f" ({md_text(ex['reason'])})" if ex["reason"] else ""
                lines.append(f"- {md_code(ex['source'])}{reason}: {md_text(ex['text'])}")
            lines.append("")
    return "\n".join(lines) + "\n"
