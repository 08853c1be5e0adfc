"""ChipSpec <-> plain JSON-able dicts (for ``--json`` output and compiled artifacts).

Quantities become ``{"value": v, "unit": u}``; layer overrides keep their settings as
``{"block", "field", "value"}``. ``chip_from_dict(chip_to_dict(spec)) == spec``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .fields import BLOCK, CHIP
from .spec import BLOCK_CLASSES, ChipSpec, LayerOverride, Quantity, Setting


def to_json(value: Any) -> Any:
    """Spec values as JSON: quantities as {value, unit}, dataclasses as dicts, tuples as lists."""
    if isinstance(value, Quantity):
        return {"value": value.value, "unit": value.unit}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def chip_to_dict(spec: ChipSpec) -> dict[str, Any]:
    """The resolved spec as nested dicts (layers: pattern, settings [{block, field, value}],
    digital)."""
    return to_json(spec)


def _quantity(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"value", "unit"}:
        return Quantity(value["value"], value["unit"])
    return value


def _block(cls: type, data: dict[str, Any]):
    return cls(**{k: _quantity(v) for k, v in data.items()})


def chip_from_dict(data: dict[str, Any]) -> ChipSpec:
    blocks = {name: _block(cls, data[name]) for name, cls in BLOCK_CLASSES.items()
              if name in data}
    statements = {r.field: data[r.field] for r in BLOCK[CHIP].fields if r.field in data}
    layers = tuple(
        LayerOverride(pattern=o["pattern"], digital=o["digital"],
                      settings=tuple(Setting(s["block"], s["field"], _quantity(s["value"]))
                                     for s in o["settings"]))
        for o in data.get("layers", ()))
    return ChipSpec(name=data["name"], layers=layers, **statements, **blocks)
