"""The hand-written package list in pyproject.toml covers every package of the source tree, so
that a regular (non-editable) install ships all of asimc, its grammar and its chip library."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(asimc(?:\.\w+)*)"', text.split("packages = [", 1)[1].split("]")[0]))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "asimc").rglob("__init__.py")}
    assert found | {"asimc.grammar", "asimc.chips"} == listed


def test_grammar_and_chips_are_found():
    from asimc.resources import bundled_chips, grammar_path
    assert grammar_path().is_file()
    assert len(bundled_chips()) >= 8
