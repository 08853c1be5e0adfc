"""A point of a sweep: the base chip with the point's values applied, through the chip language.

The point is written as a child chip that ``extends`` the base file, so its values are typed,
range-checked and cross-checked by the chip checker itself (a point that fails gets the
checker's message). It is a chip of its own: its name is the base's name plus the point's
values (``asim-hcim-1 adc.bits=10``), its description says what it is (the base's would be
stale: "1 digital MSB level" above ``digital_levels 0``). Both texts are stored: the child
(what ``sweep show --chip N`` prints) and the formatter's canonical text of the result (what the
rows' keys hash, ``--resolved``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..chip import format_chip, load_chip, parse_chip
from ..chip.format import quote
from ..chip.spec import ChipSpec
from ..errors import ChipError
from .grid import Axis


@dataclass(frozen=True)
class Point:
    params: dict                  # axis name -> value text (as on the command line)
    chip_text: str | None         # canonical text, or None when the checker refused the point
    message: str = ""             # the checker's message for an invalid point
    child_text: str = ""          # the point as written: a child chip extending the base

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


def point_name(base_name: str, params: dict) -> str:
    """``asim-hcim-1 adc.bits=10 hybrid.digital_levels=2``: two points never share a name."""
    return " ".join([base_name, *(f"{k}={v}" for k, v in params.items())])


def child_text(base_path: str, base: ChipSpec, axes: list[Axis], values: tuple[str, ...]) -> str:
    """``chip "BASE adc.bits=6" extends "BASE.acim" { description "..." adc { bits 6 } }``,
    with the base's source (the publication its numbers come from), which a child does not
    inherit."""
    base_name = base.name
    params = {a.name: v for a, v in zip(axes, values)}
    chip_blocks: dict[str, list] = {}
    layers: dict[str, dict[str, list]] = {}
    for axis, value in zip(axes, values):
        target = chip_blocks if axis.layer is None else layers.setdefault(axis.layer, {})
        target.setdefault(axis.field.block, []).append((axis, value))
    described = ", ".join(f"{k} {v}" for k, v in params.items())
    lines = [f"chip {quote(point_name(base_name, params))} "
             f"extends {quote(os.path.abspath(base_path))} {{",
             f"    description {quote(f'sweep point: {base_name} with {described}')}"]
    if base.source:
        lines.append(f"    source {quote(base.source)}")
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
        text = child_text(base_path, base, axes, values)
        try:
            spec = parse_chip(text, filename="<point>", base_dir=os.path.dirname(base_path))
        except ChipError as error:
            points.append(Point(params, None, _point_message(error), text))
            continue
        points.append(Point(params, format_chip(spec), child_text=text))
    return points


def _point_message(error: ChipError) -> str:
    """The checker's messages without the synthetic file's location."""
    lines = []
    for d in error.diagnostics:
        lines.append(d.message + (f" ({d.help})" if d.help else ""))
    return "; ".join(lines)
