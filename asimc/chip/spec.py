"""ChipSpec: the resolved, checked description of one ACiM chip.

These frozen dataclasses are the hand-off from the chip language (parse, resolve ``extends``,
check) to everything downstream (compiler, kernels, reports). Their fields, defaults and
documentation come from the field registry (``fields.BLOCKS``); a class is written here only for
the methods it adds. Numeric semantics are those of docs/numeric-model.md.

Values that carry a unit keep the unit as written (``Quantity``) so that the canonical text
round-trips exactly; use the accessor methods to get SI values or fractions of full scale.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any

from .fields import BLOCK, BLOCKS, CHIP
from .units import UNITS, Quantity

__all__ = ["UNITS", "Quantity", "ArraySpec", "WeightSpec", "InputSpec", "AdcSpec", "DomainSpec",
           "NoiseSpec", "MismatchSpec", "HybridSpec", "VotingSpec", "EnergySpec", "QuantSpec", "BLOCK_CLASSES",
           "OVERRIDABLE_BLOCKS", "Setting", "LayerOverride", "ChipSpec"]


def _docstring(block) -> str:
    lines = [block.doc, ""]
    lines += [f"{rule.field}: {rule.doc or rule.meaning}" for rule in block.fields]
    return "\n".join(lines)


def _block_class(name: str, cls: type | None = None) -> type:
    """The frozen dataclass of one block: the registry's fields on ``cls`` (for its methods)."""
    block = BLOCK[name]
    if cls is None:
        cls = type(f"{name.capitalize()}Spec", (), {"__module__": __name__})
    cls.__annotations__ = {rule.field: rule.python_type for rule in block.fields}
    for rule in block.fields:
        setattr(cls, rule.field, rule.default)
    cls.__doc__ = _docstring(block)
    return dataclass(frozen=True)(cls)


def block_spec(name: str):
    """Class decorator: a block's dataclass with its fields from the registry."""
    return lambda cls: _block_class(name, cls)


ArraySpec = _block_class("array")
WeightSpec = _block_class("weight")
InputSpec = _block_class("input")
AdcSpec = _block_class("adc")
DomainSpec = _block_class("domain")


NoiseSpec = _block_class("noise")
MismatchSpec = _block_class("mismatch")
HybridSpec = _block_class("hybrid")
VotingSpec = _block_class("voting")


@block_spec("energy")
class EnergySpec:
    def clock_hz(self) -> float | None:
        if self.clock is None:
            return None
        if self.clock.unit in UNITS["time"]:
            return 1.0 / self.clock.si()
        return self.clock.si()


QuantSpec = _block_class("quant")

# Every block's dataclass; a block without methods needs no line above.
_DECLARED = {c.__name__: c for c in (ArraySpec, WeightSpec, InputSpec, AdcSpec, DomainSpec,
                                     NoiseSpec, MismatchSpec, HybridSpec, VotingSpec, EnergySpec, QuantSpec)}
BLOCK_CLASSES: dict[str, type] = {
    b.name: _DECLARED.get(f"{b.name.capitalize()}Spec") or _block_class(b.name)
    for b in BLOCKS if b.name != CHIP}

# Blocks that a `layer` override may change, with the dataclass of each.
OVERRIDABLE_BLOCKS: dict[str, type] = {name: cls for name, cls in BLOCK_CLASSES.items()
                                       if BLOCK[name].overridable}


@dataclass(frozen=True)
class Setting:
    """One field set inside a layer override, e.g. ``Setting("adc", "bits", 6)``."""

    block: str
    field: str
    value: Any


@dataclass(frozen=True)
class LayerOverride:
    """``layer "PATTERN" { ... }``: settings for the matrix products it matches.

    pattern: an ONNX op type (``Conv``, ``Gemm``, ``MatMul``) or a glob over node names
             (``/attn/*``). A node matches when its op type equals the pattern or its name
             matches the glob. Later overrides win over earlier ones.
    digital: keep matching layers off the array (run them digitally in float).
    settings: the fields this override changes.
    """

    pattern: str
    settings: tuple[Setting, ...] = ()
    digital: bool = False

    def matches(self, op_type: str, node_name: str) -> bool:
        return op_type == self.pattern or fnmatch.fnmatchcase(node_name, self.pattern)


def _chip_fields(cls: type) -> type:
    """ChipSpec's fields: name, the chip statements, the blocks, the statements written after
    the blocks, the layer overrides (the canonical order, also of positional arguments)."""
    statements = BLOCK[CHIP].fields
    annotations: dict[str, Any] = {"name": str}
    order = ([r for r in statements if not r.last], [b for b in BLOCKS if b.name != CHIP],
             [r for r in statements if r.last])
    for rule in order[0]:
        annotations[rule.field] = rule.python_type
        setattr(cls, rule.field, rule.default)
    for block in order[1]:
        annotations[block.name] = BLOCK_CLASSES[block.name]
        setattr(cls, block.name, field(default_factory=BLOCK_CLASSES[block.name]))
    for rule in order[2]:
        annotations[rule.field] = rule.python_type
        setattr(cls, rule.field, rule.default)
    annotations["layers"] = tuple[LayerOverride, ...]
    cls.layers = ()
    cls.__annotations__ = annotations
    return dataclass(frozen=True)(cls)


@_chip_fields
class ChipSpec:
    """A complete chip. ``name`` is the only field without a default."""

    def apply(self, settings: tuple[Setting, ...]) -> "ChipSpec":
        """A copy with the given block settings applied."""
        spec = self
        for s in settings:
            block = replace(getattr(spec, s.block), **{s.field: s.value})
            spec = replace(spec, **{s.block: block})
        return spec

    def for_layer(self, op_type: str, node_name: str) -> tuple["ChipSpec", bool]:
        """The effective chip for one matrix product and whether it is kept digital."""
        spec, digital = self, False
        for override in self.layers:
            if override.matches(op_type, node_name):
                spec = spec.apply(override.settings)
                digital = digital or override.digital
        return replace(spec, layers=()), digital
