"""Where the grammar and the bundled chip library are, installed or in a source checkout."""
from __future__ import annotations

import importlib.resources
from pathlib import Path


def _folder(name: str) -> Path:
    # A wheel installs grammar/ and chips/ as asimc.grammar and asimc.chips; an editable install
    # or a plain checkout has them next to the package.
    try:
        return Path(str(importlib.resources.files(f"asimc.{name}")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / name


def grammar_path() -> Path:
    return _folder("grammar") / "acim.lark"


def chips_folder() -> Path:
    return _folder("chips")


def bundled_chips() -> list[Path]:
    return sorted(chips_folder().glob("*.acim"))
