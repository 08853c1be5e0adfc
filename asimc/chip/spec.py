"""ChipSpec: the resolved, checked description of one ACiM chip.

These frozen dataclasses are the hand-off from the chip language (parse, resolve ``extends``,
check) to everything downstream (compiler, kernels, reports). Every field has a default; the
defaults describe the ASiM reference macro: charge domain, 255 rows, W8A8 bit-serial unsigned
inputs, an 8-bit ADC and no noise. Numeric semantics are those of DESIGN.md section 4.

Values that carry a unit keep the unit as written (``Quantity``) so that the canonical text
round-trips exactly; use the accessor methods to get SI values or fractions of full scale.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any

# Units, grouped by what they measure, with their factor to the SI base unit.
UNITS: dict[str, dict[str, float]] = {
    "fraction": {"%": 1e-2},             # fraction of full scale (noise), or of a unit cell
    "lsb": {"lsb": 1.0},                 # ADC least significant bits (noise only)
    "energy": {"aJ": 1e-18, "fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9},
    "frequency": {"kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "time": {"ps": 1e-12, "ns": 1e-9, "us": 1e-6},
}


@dataclass(frozen=True)
class Quantity:
    """A number with the unit it was written in, e.g. ``Quantity(0.4, "%")``."""

    value: float
    unit: str

    def si(self) -> float:
        for table in UNITS.values():
            if self.unit in table:
                return self.value * table[self.unit]
        raise ValueError(f"unknown unit {self.unit!r}")


@dataclass(frozen=True)
class ArraySpec:
    """The SRAM array of one macro.

    rows:    rows that accumulate into one column at once (the analog MAC length); also the
             full-scale normaliser of every conversion, even for a last tile with fewer rows.
    cols:    columns of one macro (output channels x weight bits when weights are bit-serial).
    macros:  macros on the chip; tiles beyond ``macros`` cost weight reloads.
    mapping: how a convolution's reduction (C*kh*kw) is cut into row tiles: ``channels`` puts
             floor(rows / (kh*kw)) whole input channels in a tile (as ASiM does), ``flat`` cuts
             C*kh*kw into chunks of ``rows``.
    """

    rows: int = 255
    cols: int = 256
    macros: int = 1
    mapping: str = "channels"


@dataclass(frozen=True)
class WeightSpec:
    """Weights: ``bits`` two's-complement bits, quantised symmetric to +-(2^(bits-1)-1).

    parallel: False (default) stores one weight bit per column and converts each bit
              separately; True is ASiM's full bit-parallel mode (all weight and input bits in
              one conversion per row tile and output column, signed ADC, random noise only).
    """

    bits: int = 8
    parallel: bool = False


@dataclass(frozen=True)
class InputSpec:
    """Input activations.

    bits:          input bits.
    signed:        False: unsigned, quantised to [0, 2^bits-1]; True: two's complement,
                   quantised to +-(2^(bits-1)-1), the sign bit converted in its own cycle.
    bits_per_cycle: 1 is bit-serial (``serial``); e > 1 is bit-parallel (``parallel e``): the
                   magnitude bits are grouped from the LSB in groups of e bits, the top group
                   possibly shorter, one group per cycle.
    """

    bits: int = 8
    signed: bool = False
    bits_per_cycle: int = 1


@dataclass(frozen=True)
class AdcSpec:
    """The column ADC: ``bits`` of resolution over the full scale of a conversion."""

    bits: int = 8


@dataclass(frozen=True)
class DomainSpec:
    """The analog domain of the MAC.

    kind:           ``charge`` (default) or ``current``.
    alpha:          current domain only: gain compression, a MAC value M becomes M/(1+alpha*M).
    cell_variation: current domain only: static Gaussian mismatch of every weight cell, sigma
                    relative to a unit cell (``1.0%`` adds N(0, 0.01) to each 0/1 cell), drawn
                    once per chip instance (seed).
    """

    kind: str = "charge"
    alpha: float = 0.0
    cell_variation: Quantity = Quantity(0.0, "%")


@dataclass(frozen=True)
class NoiseSpec:
    """Analog noise added to every analog (non-digital) conversion before the ADC.

    random:    sigma of Gaussian noise, in % of full scale or in ADC LSBs.
    nonlinear: sigma (same units) of the MAC-dependent term N(0,1)*sigma/sqrt(M_bin+1)
               (charge domain only).
    """

    random: Quantity = Quantity(0.0, "%")
    nonlinear: Quantity = Quantity(0.0, "%")

    @staticmethod
    def as_fraction(q: Quantity, lsb_fraction: float) -> float:
        """Sigma as a fraction of full scale; ``lsb_fraction`` is one LSB in that unit."""
        if q.unit == "lsb":
            return q.value * lsb_fraction
        return q.si()


@dataclass(frozen=True)
class HybridSpec:
    """Hybrid CiM: the top ``digital_levels`` conversion levels (level = weight bit + input
    cycle) are computed digitally, i.e. without noise (the ADC still rounds)."""

    digital_levels: int = 0


@dataclass(frozen=True)
class VotingSpec:
    """Majority voting: conversions in the top ``levels`` levels are converted ``samples``
    times with independent noise; the most frequent code wins (ties: the smallest code)."""

    levels: int = 0
    samples: int = 3


@dataclass(frozen=True)
class EnergySpec:
    """Optional cost figures for estimates.

    mac:   energy of one cell operation: one weight bit on one row in one input cycle.
    adc:   energy of one ADC conversion.
    clock: clock frequency (or period); one input cycle of one macro takes one clock.
    """

    mac: Quantity | None = None
    adc: Quantity | None = None
    clock: Quantity | None = None

    def clock_hz(self) -> float | None:
        if self.clock is None:
            return None
        if self.clock.unit in UNITS["time"]:
            return 1.0 / self.clock.si()
        return self.clock.si()


@dataclass(frozen=True)
class QuantSpec:
    """How tensors are quantised (DESIGN section 4).

    weight: ``per_tensor`` (ASiM default: one scale max|W|) or ``per_channel`` (one scale per
            output channel).
    input:  ``per_tensor`` (ASiM default: dynamic, max over the whole input tensor of the op),
            ``per_sample`` (dynamic, one scale per sample) or ``static`` (calibrated on data at
            compile time).
    """

    weight: str = "per_tensor"
    input: str = "per_tensor"


# Blocks that a `layer` override may change, with the dataclass of each.
OVERRIDABLE_BLOCKS: dict[str, type] = {
    "array": ArraySpec,
    "weight": WeightSpec,
    "input": InputSpec,
    "adc": AdcSpec,
    "domain": DomainSpec,
    "noise": NoiseSpec,
    "hybrid": HybridSpec,
    "voting": VotingSpec,
    "quant": QuantSpec,
}


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


@dataclass(frozen=True)
class ChipSpec:
    """A complete chip. ``name`` is the only field without a default."""

    name: str
    description: str = ""
    source: str = ""
    array: ArraySpec = field(default_factory=ArraySpec)
    weight: WeightSpec = field(default_factory=WeightSpec)
    input: InputSpec = field(default_factory=InputSpec)
    adc: AdcSpec = field(default_factory=AdcSpec)
    domain: DomainSpec = field(default_factory=DomainSpec)
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    hybrid: HybridSpec = field(default_factory=HybridSpec)
    voting: VotingSpec = field(default_factory=VotingSpec)
    energy: EnergySpec = field(default_factory=EnergySpec)
    quant: QuantSpec = field(default_factory=QuantSpec)
    attention: str = "analog"    # or "digital": keep activation x activation MatMuls off-chip
    layers: tuple[LayerOverride, ...] = ()

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
