"""Shared helpers for the chip-language tests."""
from __future__ import annotations

import pytest

from asimc.chip import parse_chip
from asimc.errors import ChipError, Diagnostic


def chip(body: str, name: str = "t") -> str:
    """A chip file around ``body`` (the statements between the braces)."""
    return f'chip "{name}" {{\n{body}\n}}\n'


def errors(text: str, filename: str = "t.acim", base_dir=None) -> list[Diagnostic]:
    """The diagnostics a text produces (fails the test if it parses)."""
    with pytest.raises(ChipError) as info:
        parse_chip(text, filename=filename, base_dir=base_dir)
    return list(info.value.diagnostics)


def one_error(text: str, **kwargs) -> Diagnostic:
    found = errors(text, **kwargs)
    assert len(found) == 1, "\n".join(d.render() for d in found)
    return found[0]


def caret_column(rendered: str) -> int:
    """The 1-based source column the caret line of a rendered diagnostic points at."""
    lines = rendered.split("\n")
    gutter = lines[1].index("| ") + 2
    return lines[2].index("^") - gutter + 1
