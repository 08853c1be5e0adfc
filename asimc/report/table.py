"""Plain-text tables: aligned columns that read the same in a terminal, a log or a pipe."""
from __future__ import annotations

from typing import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        # Numbers (and dashes for missing ones) right-aligned, text left-aligned.
        parts = []
        for value, width in zip(row, widths):
            numeric = value[:1].isdigit() or value[:1] in "-+." and value[1:2].isdigit()
            parts.append(value.rjust(width) if numeric or value == "-" else value.ljust(width))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])
