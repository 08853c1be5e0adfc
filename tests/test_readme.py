"""The README stays true: its supported-ops table lists exactly the ops asimc supports, its
commands exist, and CI runs its test command."""
from __future__ import annotations

import re
from pathlib import Path

from asimc.cli import build_parser
from asimc.frontend import supported_ops

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_supported_ops_table_matches_the_registry():
    rows = re.findall(r"^\| (\w+) \| \d+ \| \d+ \| \d+ \|", README, flags=re.MULTILINE)
    assert sorted(rows) == sorted(supported_ops())


def test_every_documented_command_exists():
    commands = set(re.findall(r"`asimc (\w+)", README))
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)
    assert commands and commands <= known


def test_ci_runs_the_readme_test_command():
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
