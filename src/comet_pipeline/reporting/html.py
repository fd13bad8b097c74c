"""A single self-contained HTML report: Markdown-ish sections and base64-embedded PNG figures."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TABLE_SEPARATOR = re.compile(r"^\|?[\s:|-]+\|?$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_STYLE = """
body { font-family: sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
blockquote { border-left: 4px solid #e0a000; margin: 1em 0; padding: 0.2em 1em; background: #fff8e0; }
figure { display: inline-block; margin: 1em; } img { max-width: 100%; }
"""


def _inline(text: str) -> str:
    """Escape HTML and render `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    """A Markdown pipe table (header, optional separator, body rows) as an HTML table."""
    header, body = lines[0], [line for line in lines[1:] if not _TABLE_SEPARATOR.match(line.strip())]
    head = "".join(f"<th>{_inline(cell)}</th>" for cell in _cells(header))
    rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(line)) + "</tr>" for line in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _block(lines: list[str]) -> str:
    """One block of consecutive non-blank lines: table, quote, bullet list or paragraph."""
    first = lines[0].strip()
    if first.startswith("|"):
        return _table(lines)
    if first.startswith(">"):
        return "<blockquote>" + " ".join(_inline(line.lstrip("> ")) for line in lines) + "</blockquote>"
    if all(line.lstrip().startswith(("- ", "* ")) for line in lines):
        return "<ul>" + "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines) + "</ul>"
    return "<p>" + " ".join(_inline(line) for line in lines) + "</p>"


def markdown_to_html(text: str) -> str:
    """Convert the Markdown subset used by the reports (headings, pipe tables, quotes, lists) to HTML."""
    blocks, current = [], []
    for line in [*text.splitlines(), ""]:
        heading = _HEADING.match(line.strip())
        if line.strip() and not heading:
            current.append(line)
            continue
        if current:
            blocks.append(_block(current))
            current = []
        if heading:
            level = min(len(heading.group(1)) + 1, 6)  # the page title is <h1>, section titles <h2>
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
    return "\n".join(blocks)


def _png_data_uri(image: bytes | Path) -> str:
    data = Path(image).read_bytes() if isinstance(image, (str, Path)) else bytes(image)
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"image {image if isinstance(image, (str, Path)) else '<bytes>'} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def html_report(title: str, sections: list[tuple[str, str]], images: dict[str, bytes | Path]) -> str:
    """One self-contained HTML page: ``<h1>title``, then each (heading, Markdown text) section,
    then the PNG ``images`` (raw bytes or file paths) embedded as base64 data URIs with their names as captions."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, text in sections:
        body.append(f"<section><h2>{html.escape(heading)}</h2>\n{markdown_to_html(text)}</section>")
    if images:
        figures = "".join(
            f'<figure><img alt="{html.escape(name)}" src="{_png_data_uri(image)}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
            for name, image in images.items()
        )
        body.append(f"<section><h2>Figures</h2>{figures}</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
