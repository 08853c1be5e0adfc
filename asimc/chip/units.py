"""Units of the chip language, grouped by what they measure, and ``Quantity`` (a number with
the unit it was written in). The grammar's UNIT token, the repair of the parser and the unit
checks are all derived from ``UNIT_GROUPS``."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitGroup:
    """Units that measure one thing, each with its factor to the SI base unit; ``what`` names
    the group in messages ("takes `fJ`, not `MHz` (a frequency unit)")."""

    what: str
    factors: dict[str, float]


UNIT_GROUPS: dict[str, UnitGroup] = {
    "fraction": UnitGroup("a percentage", {"%": 1e-2}),   # of full scale, or of a unit cell
    "lsb": UnitGroup("ADC LSBs", {"lsb": 1.0}),           # ADC least significant bits
    "energy": UnitGroup("an energy unit", {"aJ": 1e-18, "fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9}),
    "frequency": UnitGroup("a frequency unit", {"kHz": 1e3, "MHz": 1e6, "GHz": 1e9}),
    "time": UnitGroup("a time unit", {"ps": 1e-12, "ns": 1e-9, "us": 1e-6}),
}

# group -> {unit: factor}
UNITS: dict[str, dict[str, float]] = {name: g.factors for name, g in UNIT_GROUPS.items()}
ALL_UNITS: tuple[str, ...] = tuple(u for table in UNITS.values() for u in table)


def units_of(*groups: str) -> tuple[str, ...]:
    return tuple(u for g in groups for u in UNITS[g])


def unit_group(unit: str) -> str | None:
    for name, table in UNITS.items():
        if unit in table:
            return name
    return None


@dataclass(frozen=True)
class Quantity:
    """A number with the unit it was written in, e.g. ``Quantity(0.4, "%")``."""

    value: float
    unit: str

    def si(self) -> float:
        group = unit_group(self.unit)
        if group is None:
            raise ValueError(f"unknown unit {self.unit!r}")
        return self.value * UNITS[group][self.unit]
