"""``Choice``: the base of asimc's enumerations of names (run modes, placements, chip choices).

A member is the string it names (``Mode.ACIM == "acim"``, same hash, ``str()``, f-strings and
JSON give ``acim``), so chip files, artifacts and JSON output keep their text while code compares
against members instead of literals. (enum.StrEnum does this from Python 3.11; asimc runs on
3.10.)
"""
from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The names in definition order (for argparse choices and error messages)."""
        return tuple(member.value for member in cls)
