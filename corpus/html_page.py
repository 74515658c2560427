"""One self-contained HTML page: the shell, CSS and small helpers that every report.html shares.

Everything is inline (no CDN, no fonts, no external script), so a report opens from `file://` on a
machine with no network, and prints: the browser parts collapse to what is on screen.
Data a page's script needs goes in a `<script type="application/json">` block (never executed).
"""
from __future__ import annotations

import html
import json

CSS = """
:root { --fg:#1d2430; --muted:#5b6472; --line:#d9dee5; --bg:#fff; --soft:#f4f6f9; --acc:#2f6fb3; --bad:#b3372f;
        --badbg:#fde8e6; --okbg:#e7f4ea; --hl:#fff1a8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg);
       margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 1200px; }
h1 { font-size: 1.5rem; margin: .5rem 0 .25rem; } h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.muted, .note { color: var(--muted); } .note { font-size: .9em; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .88em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; } td.num, th.num { text-align: right; white-space: nowrap; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .6rem; margin: .8rem 0; }
.card { background: var(--soft); border-radius: 6px; padding: .5rem .8rem; } .card b { display: block; font-size: 1.25rem; }
nav.toc a { margin-right: 1rem; } a { color: var(--acc); }
img.plot { max-width: 100%; height: auto; border: 1px solid var(--line); }
.controls { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .4rem 0; }
.controls input[type=search] { min-width: 18rem; padding: .3rem .5rem; }
.doc { border: 1px solid var(--line); border-radius: 6px; margin: .5rem 0; padding: .4rem .7rem; break-inside: avoid; }
.doc header { display: flex; flex-wrap: wrap; gap: .8rem; font-size: .9em; color: var(--muted); }
.doc header .reason { color: var(--bad); font-weight: 600; }
.text { white-space: pre-wrap; word-break: break-word; max-height: 16rem; overflow: auto; font-size: .9em; margin: .3rem 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: .6rem; } .pair > div { min-width: 0; }
.pair h4 { margin: .2rem 0; font-size: .85em; } .removed-side { background: var(--badbg); } .kept-side { background: var(--okbg); }
.line { white-space: pre-wrap; word-break: break-word; padding: 0 .3rem; }
.line.cut { background: var(--badbg); text-decoration: line-through; text-decoration-color: #d99; }
.line .why { float: right; color: var(--bad); font-size: .8em; text-decoration: none; }
mark { background: var(--hl); }
dl { display: grid; grid-template-columns: auto auto; gap: 0 .8rem; margin: .3rem 0; font-size: .85em; } dd { margin: 0; }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
@media print { .controls, .pager { display: none; } .text { max-height: none; overflow: visible; } body { max-width: none; } }
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(n: float, digits: int = 0) -> str:
    return f"{n:,.{digits}f}"


def table(headers: list[str], rows: list[list], numeric: set[int] = frozenset(), keys: list[str] | None = None) -> str:
    """An HTML table; cells are escaped unless wrapped in `Raw`. `keys` name columns (data-key) for tests."""
    def cell(tag: str, i: int, value) -> str:
        cls = ' class="num"' if i in numeric else ""
        key = f' data-key="{esc(keys[i])}"' if keys and keys[i] else ""
        return f"<{tag}{cls}{key}>{value if isinstance(value, Raw) else esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


class Raw(str):
    """HTML that `table` must not escape."""


def json_block(element_id: str, data) -> str:
    """Data for the page's script. No byte of it can end or comment out a script: every <, > and & is written
    as a JSON escape (\\u003c ...), which JSON.parse reads back as the character ("</script>", "<!--" and
    "<script" cannot appear), and U+2028/U+2029 too (line ends to older JavaScript parsers)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escape in JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n{js}\n</body></html>\n")
