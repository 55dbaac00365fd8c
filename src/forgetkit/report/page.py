"""One self-contained HTML page: inline style and script, pictures as data URIs, nothing
fetched. ``page`` wraps a body; ``markdown_page`` turns a study's ``results.md`` (the
subset of Markdown forgetkit writes: headings, pipe tables, pictures, lists, paragraphs,
``code`` and **bold**) and the pictures beside it into one."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --good: #1a7f37; --bad: #cf222e; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); margin: 0 auto; max-width: 1180px; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 6px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
.meta, .legend, small { color: var(--muted); }
small { font-size: 12px; font-weight: normal; }
code { background: var(--soft); padding: 1px 4px; border-radius: 4px; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
.wide { overflow-x: auto; max-width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 10px; vertical-align: top; }
thead th { background: var(--soft); text-align: left; position: sticky; top: 0; }
table.results td { text-align: right; white-space: nowrap; }
table.results th { text-align: left; }
.ci { color: var(--muted); font-size: 12px; }
.good { color: var(--good); } .bad { color: var(--bad); } .same { color: var(--ink); }
td.good .arrow, td.bad .arrow { font-weight: bold; }
#summary li { margin: 6px 0; }
figure { margin: 12px 0 24px; }
figure.chart svg { max-width: 100%; height: auto; }
img { max-width: 100%; }
.controls { margin: 8px 0; display: flex; gap: 18px; align-items: center; flex-wrap: wrap; }
.scroll { max-height: 640px; overflow: auto; border: 1px solid var(--line); }
#questions { margin: 0; font-size: 13px; }
#questions td { min-width: 140px; max-width: 320px; }
#questions td.changed { background: #fff8c5; }
.mark { display: inline-block; font-size: 11px; padding: 0 5px; border-radius: 8px;
        background: var(--soft); border: 1px solid var(--line); color: var(--muted); }
"""


def page(title: str, body: str, script: str = "") -> str:
    script_tag = f"<script>{script}</script>" if script else ""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>\n{body}\n{script_tag}</body></html>\n")


_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}


def data_uri(path: Path) -> str | None:
    if not path.is_file() or path.suffix.lower() not in _MIME:
        return None
    return (f"data:{_MIME[path.suffix.lower()]};base64,"
            f"{base64.b64encode(path.read_bytes()).decode()}")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def table_html(lines: list[str]) -> str:
    """A Markdown pipe table (header, rule, rows) as an HTML table."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    rows = [r for r in rows if not all(set(c) <= set("-: ") and c for c in r)]
    head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                   for r in rows[1:])
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


def markdown_html(text: str, folder: Path) -> str:
    """The HTML of forgetkit's Markdown; pictures are read from ``folder`` and embedded
    (one that is missing is shown as its alt text, never as a link)."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 4)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.append(table_html(block))
        elif m := re.fullmatch(r"\s*!\[([^\]]*)\]\(([^)]+)\)\s*", line):
            uri = data_uri(folder / m.group(2))
            alt = html.escape(m.group(1))
            out.append(f'<figure><img alt="{alt}" src="{uri}"></figure>' if uri
                       else f"<p><em>[{alt}: picture missing]</em></p>")
            i += 1
        elif line.lstrip().startswith(("- ", "* ")):
            items = []
            while i < len(lines) and lines[i].lstrip().startswith(("- ", "* ")):
                items.append(f"<li>{_inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        else:
            para = [line.strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|")) \
                    and not lines[i].lstrip().startswith(("- ", "* ", "![")):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


def markdown_page(markdown_file: Path, title: str = "forgetkit results") -> str:
    folder = Path(markdown_file).parent
    return page(title, markdown_html(Path(markdown_file).read_text(encoding="utf-8"), folder))


__all__ = ["STYLE", "data_uri", "markdown_html", "markdown_page", "page", "table_html"]
