"""The report as one Markdown file (images linked beside it) and one self-contained HTML file (images inlined).

Both are rendered from the same `Document`, so they always say the same thing. The HTML embeds every PNG as a
base64 data URI and its style inline: it opens directly in a browser, from any folder, with no network.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

FLOAT_DIGITS = 4  # decimals shown for metrics


@dataclass(frozen=True)
class Section:
    title: str
    text: str = ""  # a paragraph above the table / figure
    table: pl.DataFrame | None = None
    image: str | None = None  # file name of a PNG beside the report
    notes: Sequence[str] = ()  # small print under the section


@dataclass(frozen=True)
class Document:
    title: str
    facts: Mapping[str, str]  # data set, versions read: shown as a short list under the title
    answer: str  # the one-paragraph answer
    sections: Sequence[Section] = field(default_factory=tuple)


def cell(value: object) -> str:
    """A table cell: floats to `FLOAT_DIGITS` decimals, missing values as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{FLOAT_DIGITS}f}"
    return str(value)


def markdown_table(frame: pl.DataFrame) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(escape(name) for name in frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    rows = ["| " + " | ".join(escape(cell(value)) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def to_markdown(document: Document) -> str:
    lines = [f"# {document.title}", ""]
    lines += [f"- **{name}**: {value}" for name, value in document.facts.items()]
    lines += ["", "## Which tokenizer helps most here", "", document.answer, ""]
    for section in document.sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        if section.table is not None and not section.table.is_empty():
            lines += [markdown_table(section.table), ""]
        if section.image:
            lines += [f"![{section.title}]({section.image})", ""]
        lines += [f"*{note}*" for note in section.notes]
        if section.notes:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_html(document: Document, images: Mapping[str, bytes]) -> str:
    """Self-contained HTML; ``images`` maps each section's image file name to its PNG bytes."""
    parts = [f"<h1>{html.escape(document.title)}</h1>", "<ul class='facts'>"]
    parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in document.facts.items()]
    parts += [
        "</ul>",
        "<h2>Which tokenizer helps most here</h2>",
        f"<p class='answer'>{inline(document.answer)}</p>",
    ]
    for section in document.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{inline(section.text)}</p>")
        if section.table is not None and not section.table.is_empty():
            parts.append(html_table(section.table))
        if section.image:
            data = base64.b64encode(images[section.image]).decode("ascii")
            alt = html.escape(section.title)
            parts.append(f"<img alt='{alt}' src='data:image/png;base64,{data}'>")
        parts += [f"<p class='note'>{html.escape(note)}</p>" for note in section.notes]
    body = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(document.title)}</title>
<style>{STYLE}</style>
</head>
<body>
{body}
</body>
</html>
"""


def inline(text: str) -> str:
    """Escaped text with Markdown's `code` spans as <code> (asset and config names in the prose)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def html_table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = "".join(
            f"<td class='num'>{html.escape(cell(v))}</td>"
            if isinstance(v, int | float) and not isinstance(v, bool)
            else f"<td>{html.escape(cell(v))}</td>"
            for v in row
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1080px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.facts { color: #555; font-size: 0.9em; padding-left: 1.2em; }
.answer { background: #f4f8fb; border-left: 4px solid #1f78b4; padding: 0.8em 1em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; white-space: nowrap; }
th { background: #f0f0f0; text-align: left; }
code { background: #f0f0f0; padding: 0 0.2em; border-radius: 3px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
.note { color: #666; font-size: 0.85em; font-style: italic; }
"""
