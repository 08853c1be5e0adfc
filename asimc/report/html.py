"""Self-contained HTML reports (``--report out.html``) with inline SVG charts.

No JavaScript, no external files, no plotting library: a page a designer can mail around.
"""
from __future__ import annotations

import datetime
import html
import math
from typing import Sequence

from .. import __version__

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.reference td { color: #666; font-style: italic; }
.pass { color: #176617; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.meta { color: #666; font-size: 0.85em; }
svg text { font-family: system-ui, sans-serif; font-size: 11px; }
"""


def _esc(value) -> str:
    return html.escape(str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence], row_classes=None) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def bar_chart(labels: Sequence[str], values: Sequence[float | None],
              errors: Sequence[float | None] | None = None, *, unit: str = "",
              reference_lines: Sequence[tuple[str, float]] = (), lower: float | None = None,
              width: int = 760) -> str:
    """Horizontal bars (one per label) with optional error bars and dashed reference lines."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    finite += [v for _, v in reference_lines if math.isfinite(v)]
    if not finite:
        exact = values and all(v == math.inf for v in values)
        return "<p>every value is exact (infinite SQNR)</p>" if exact else "<p>(nothing to plot)</p>"
    low = min(finite + [0.0]) if lower is None else lower
    high = max(finite)
    high = high + 0.05 * (high - low or 1.0)
    label_w, bar_h, pad = 230, 18, 6
    plot_w = width - label_w - 70
    height = len(labels) * (bar_h + pad) + 30

    def x(v: float) -> float:
        return label_w + (max(low, min(high, v)) - low) / (high - low) * plot_w

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for k, (label, value) in enumerate(zip(labels, values)):
        y = 10 + k * (bar_h + pad)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_esc(label)}</text>')
        if value is None or not math.isfinite(value):
            parts.append(f'<text x="{label_w + 4}" y="{y + 13}">'
                         f'{"exact" if value == math.inf else "-"}</text>')
            continue
        start, end = sorted((x(0.0), x(value)))
        parts.append(f'<rect x="{start:.1f}" y="{y}" width="{end - start:.1f}" '
                     f'height="{bar_h}" fill="{"#4a7ebb" if value >= 0 else "#c0504d"}"/>')
        if errors and errors[k]:
            e = errors[k]
            parts.append(f'<line x1="{x(value - e):.1f}" x2="{x(value + e):.1f}" '
                         f'y1="{y + bar_h / 2}" y2="{y + bar_h / 2}" stroke="#111" '
                         f'stroke-width="2"/>')
        parts.append(f'<text x="{max(x(value), x(0.0)) + 4:.1f}" y="{y + 13}">'
                     f'{value:.4g}{unit}</text>')
    bottom = height - 14
    for name, value in reference_lines:
        if math.isfinite(value):
            parts.append(f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="4" y2="{bottom}" '
                         f'stroke="#b00020" stroke-dasharray="4 3"/>'
                         f'<text x="{x(value) + 3:.1f}" y="{height - 2}" fill="#b00020">'
                         f'{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter(points: Sequence[tuple[str, float, float]], *, x_label: str, y_label: str,
            log_x: bool = False, width: int = 760, height: int = 380) -> str:
    """Labelled points (label, x, y), e.g. energy per inference against accuracy."""
    points = [(n, a, b) for n, a, b in points
              if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
              and (a > 0 or not log_x)]
    if len(points) < 2:
        return ""
    xs = [math.log10(a) if log_x else a for _, a, _ in points]
    ys = [b for _, _, b in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1, y1 = x1 + (0.05 * (x1 - x0) or 1), y1 + (0.05 * (y1 - y0) or 1)
    x0, y0 = x0 - (0.05 * (x1 - x0) or 1), y0 - (0.05 * (y1 - y0) or 1)
    left, bottom, right, top = 60, height - 40, width - 20, 15

    def px(v):
        return left + (v - x0) / (x1 - x0) * (right - left)

    def py(v):
        return bottom - (v - y0) / (y1 - y0) * (bottom - top)

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#444"/>',
             f'<text x="{(left + right) / 2}" y="{height - 5}" text-anchor="middle">'
             f'{_esc(x_label)}{" (log scale)" if log_x else ""}</text>',
             f'<text x="14" y="{(top + bottom) / 2}" transform="rotate(-90 14 '
             f'{(top + bottom) / 2})" text-anchor="middle">{_esc(y_label)}</text>']
    for k in range(5):
        vx = x0 + (x1 - x0) * k / 4
        vy = y0 + (y1 - y0) * k / 4
        tick_x = 10 ** vx if log_x else vx
        parts.append(f'<text x="{px(vx):.1f}" y="{bottom + 14}" text-anchor="middle">'
                     f'{tick_x:.3g}</text><text x="{left - 4}" y="{py(vy) + 4:.1f}" '
                     f'text-anchor="end">{vy:.3g}</text>')
    for (name, _, b), vx in zip(points, xs):
        parts.append(f'<circle cx="{px(vx):.1f}" cy="{py(b):.1f}" r="4" fill="#4a7ebb"/>'
                     f'<text x="{px(vx) + 6:.1f}" y="{py(b) - 5:.1f}">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def page(title: str, sections: Sequence[tuple[str, str]], meta: str = "") -> str:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = "".join(f"<h2>{_esc(h)}</h2>{content}" for h, content in sections)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{_esc(title)}</h1>"
            f"<p class='meta'>{_esc(meta)} — asimc {__version__}, {stamp}</p>{body}</body></html>")
