"""A point of a sweep: the base chip with the point's values applied, through the chip language.

The point is written as a child chip that ``extends`` the base file, so its values are typed,
range-checked and cross-checked by the chip checker itself (a point that fails gets the
checker's message); the stored chip text is the formatter's canonical text of the result.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..chip import format_chip, load_chip, parse_chip
from ..chip.format import quote
from ..errors import ChipError
from .grid import Axis


@dataclass(frozen=True)
class Point:
    params: dict                  # axis name -> value text (as on the command line)
    chip_text: str | None         # canonical text, or None when the checker refused the point
    message: str = ""             # the checker's message for an invalid point

    @property
    def valid(self) -> bool:
        return self.chip_text is not None


def _setting(axis: Axis, value: str) -> str:
    field = axis.field
    if field.path == "domain.kind":
        return ""                       # written as the block's head, see _block
    if not field.keyword:               # encodings and flags: the value is the word
        return value
    return f"{field.keyword} {value}"


def _block(block: str, entries: list[tuple[Axis, str]]) -> str:
    kind = next((v for a, v in entries if a.field.path == "domain.kind"), None)
    words = " ".join(w for w in (_setting(a, v) for a, v in entries) if w)
    if block == "domain":
        head = f"domain {kind}" if kind else "domain"
        return f"{head} {{ {words} }}" if words else head
    return f"{block} {{ {words} }}"


def child_text(base_path: str, base_name: str, axes: list[Axis], values: tuple[str, ...]) -> str:
    """``chip "NAME" extends "BASE" { adc { bits 6 } layer "Conv" { adc { bits 6 } } }``."""
    chip_blocks: dict[str, list] = {}
    layers: dict[str, dict[str, list]] = {}
    for axis, value in zip(axes, values):
        target = chip_blocks if axis.layer is None else layers.setdefault(axis.layer, {})
        target.setdefault(axis.field.block, []).append((axis, value))
    lines = [f"chip {quote(base_name)} extends {quote(os.path.abspath(base_path))} {{"]
    lines += [f"    {_block(block, entries)}" for block, entries in chip_blocks.items()]
    for pattern, blocks in layers.items():
        inner = " ".join(_block(block, entries) for block, entries in blocks.items())
        lines.append(f"    layer {quote(pattern)} {{ {inner} }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def make_points(base_path: str, axes: list[Axis], combos: list[tuple[str, ...]]) -> list[Point]:
    base = load_chip(base_path)           # a bad base chip is the user's error: ChipError
    points = []
    for values in combos:
        params = {a.name: v for a, v in zip(axes, values)}
        text = child_text(base_path, base.name, axes, values)
        try:
            spec = parse_chip(text, filename="<point>", base_dir=os.path.dirname(base_path))
        except ChipError as error:
            points.append(Point(params, None, _point_message(error)))
            continue
        # The base's description and source stay (the child would drop them).
        spec = replace(spec, description=base.description, source=base.source)
        points.append(Point(params, format_chip(spec)))
    return points


def _point_message(error: ChipError) -> str:
    """The checker's messages without the synthetic file's location."""
    lines = []
    for d in error.diagnostics:
        lines.append(d.message + (f" ({d.help})" if d.help else ""))
    return "; ".join(lines)
