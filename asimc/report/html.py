"""Self-contained HTML reports (``--report out.html``): tables, notes and inline SVG figures.

No JavaScript, no external files: a page a designer can mail around. The figures are
matplotlib's (asimc.report.figures), the same as ``--plot`` writes.
"""
from __future__ import annotations

import datetime
import html
from typing import Sequence

from .. import __version__

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: right;
         white-space: nowrap; vertical-align: top; }
th { white-space: normal; vertical-align: bottom; }
td .meta { display: block; white-space: normal; max-width: 24em; }
th:first-child, td:first-child { text-align: left; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
td.text, th.text { text-align: left; white-space: normal; min-width: 16em; }
tr.reference td { color: #666; font-style: italic; }
.pass { color: #176617; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.meta { color: #666; font-size: 0.85em; } p.note { color: #444; font-size: 0.85em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
"""


def escape(value) -> str:
    return html.escape(str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_classes=None,
          text_columns: Sequence[int] = ()) -> str:
    """A table; ``rows`` hold HTML (escape text cells with :func:`escape`). Numbers align
    right; the first two columns and ``text_columns`` (prose) align left and wrap."""
    def cell(tag: str, j: int, content: str) -> str:
        cls = " class='text'" if j in text_columns else ""
        return f"<{tag}{cls}>{content}</{tag}>"
    head = "".join(cell("th", j, escape(h)) for j, h in enumerate(headers))
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        body.append(f"<tr{cls}>" + "".join(cell("td", j, c) for j, c in enumerate(row))
                    + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def note(markup: str) -> str:
    return f"<p class='note'>{markup}</p>"


def figure(fig) -> str:
    """A matplotlib figure inlined as SVG."""
    from .figures import svg_markup
    return f"<figure>{svg_markup(fig)}</figure>"


def page(title: str, sections: Sequence[tuple[str, str]], meta: str = "") -> str:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = "".join(f"<h2>{escape(h)}</h2>{content}" for h, content in sections)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<p class='meta'>{escape(meta)} — asimc {__version__}, {stamp}</p>{body}"
            f"</body></html>")
