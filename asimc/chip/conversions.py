"""How one chip turns a row-tile MAC into ADC conversions
(docs/numeric-model.md, "One conversion" and "Hybrid levels and voting").

Shared by ``asimc chip show`` (derived facts) and by the kernels, so that both describe the same
cycles, levels and full scales. Pure integer arithmetic, no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .fields import Domain
from .spec import ChipSpec

# Perturbed MACs are exact float64 sums (docs/numeric-model.md, 8c): cell errors are multiples
# of 2^-20 (kernels/mismatch.py), driven input levels multiples of 2^-14, and no static draw
# exceeds 6 sigma (the Box-Muller normal of kernels/rng.py is at most sqrt(48 ln 2) = 5.77).
CELL_GRID_BITS = 20
DRIVER_GRID_BITS = 14
NORMAL_BOUND = 6.0
FLOAT64_BITS = 53


def weight_levels(bits: int) -> int:
    """2^(bw-1) - 1: the largest quantised weight magnitude (symmetric, two's complement)."""
    return (1 << (bits - 1)) - 1


def input_levels(bits: int, signed: bool) -> int:
    """Lx: 2^bx - 1 (unsigned) or 2^(bx-1) - 1 (signed)."""
    return weight_levels(bits) if signed else (1 << bits) - 1


@dataclass(frozen=True)
class InputCycle:
    """One input cycle: which input bits drive the rows, and how strongly.

    index:   c, counting from the least significant group (0) upwards.
    low_bit: b_c, the lowest input bit of the group (its shift in the shift-add).
    bits:    e', the number of bits in the group (the group value is in [0, 2^e' - 1]).
    sign:    True for the sign cycle of signed inputs (weight -2^(bx-1) in two's complement).
    """

    index: int
    low_bit: int
    bits: int
    sign: bool = False

    @property
    def max_group_value(self) -> int:
        return (1 << self.bits) - 1


def input_cycles(bits: int, signed: bool, bits_per_cycle: int) -> tuple[InputCycle, ...]:
    """The input cycles of a ``bits``-bit input converted ``bits_per_cycle`` bits at a time."""
    magnitude_bits = bits - 1 if signed else bits
    cycles: list[InputCycle] = []
    low = 0
    while low < magnitude_bits:
        width = min(bits_per_cycle, magnitude_bits - low)
        cycles.append(InputCycle(len(cycles), low, width))
        low += width
    if signed:
        cycles.append(InputCycle(len(cycles), bits - 1, 1, sign=True))
    return tuple(cycles)


def precision(chip: ChipSpec) -> str:
    """A short description like ``W8 A8u serial ADC8``."""
    i = chip.input
    encoding = "serial" if i.bits_per_cycle == 1 else f"parallel{i.bits_per_cycle}"
    weights = f"W{chip.weight.bits}" + ("(parallel)" if chip.weight.parallel else "")
    return f"{weights} A{i.bits}{'s' if i.signed else 'u'} {encoding} ADC{chip.adc.bits}"


@dataclass(frozen=True)
class ConversionPlan:
    """Everything the kernels need to know about one layer's conversions on one chip."""

    chip: ChipSpec

    @cached_property
    def cycles(self) -> tuple[InputCycle, ...]:
        i = self.chip.input
        return input_cycles(i.bits, i.signed, i.bits_per_cycle)

    @property
    def weight_bits(self) -> int:
        return self.chip.weight.bits

    @property
    def weight_parallel(self) -> bool:
        return self.chip.weight.parallel

    @property
    def rows(self) -> int:
        return self.chip.array.rows

    @property
    def adc_levels(self) -> int:
        """L: the largest ADC code. Unsigned ADC: 2^adc - 1; weight-parallel's signed ADC:
        2^(adc-1) - 1 per polarity."""
        bits = self.chip.adc.bits
        return (1 << (bits - 1)) - 1 if self.weight_parallel else (1 << bits) - 1

    @property
    def weight_levels(self) -> int:
        """2^(bw-1) - 1: the largest quantised weight magnitude."""
        return weight_levels(self.weight_bits)

    @property
    def input_levels(self) -> int:
        """Lx: 2^bx - 1 (unsigned) or 2^(bx-1) - 1 (signed)."""
        return input_levels(self.chip.input.bits, self.chip.input.signed)

    @property
    def num_levels(self) -> int:
        """Levels i + c run from 0 to bw + C - 2."""
        return self.weight_bits + len(self.cycles) - 1

    def full_scale(self, cycle: InputCycle) -> int:
        """F = (2^e' - 1) * rows for a bit-level conversion in this cycle: the rows-based full
        swing (the ADC range at ``full_scale rows``, and the unit of noise given in %)."""
        return cycle.max_group_value * self.rows

    def range_fraction(self, tile_rows: int | None = None) -> float:
        """f, the ADC range as a fraction of the rows-based F
        (docs/numeric-model.md, "ADC range and fixed-pattern mismatch"): 1 for ``rows``,
        tile_rows / rows for ``used_rows`` (a full tile when not given), the written fraction;
        ``pow2`` rounds it down to 1 / 2^k.
        ``calibrated`` without a value is refused by the compiler; here it is the rows range."""
        written = self.chip.adc.full_scale
        if written == "used_rows":
            f = (self.rows if tile_rows is None else tile_rows) / self.rows
        elif isinstance(written, str):            # rows (calibrated: not yet filled in)
            f = 1.0
        else:
            f = written.si()
        if self.chip.adc.pow2:
            f = 2.0 ** math.floor(math.log2(f))
        return f

    def ranged_full_scale(self, full_scale: int, fraction: float) -> float:
        """f * F as the float32 number both kernels divide by (F itself when f = 1)."""
        return float(np.float32(fraction * full_scale))

    def noise_sigmas(self, fraction: float = 1.0) -> tuple[float, float]:
        """(random, non-linear) sigma in units of an ADC range of ``fraction`` x the rows-based
        F: ``%`` is a fraction of the rows-based swing (analog noise is fixed in volts), so it
        grows relative to a smaller range; ``lsb`` is one step of the ADC as configured. The
        non-linear term exists in the charge domain's bit-level conversions only. The one
        sigma rule: every kernel gets its sigmas here (``kernels.conversion_model``)."""
        return (self._in_range(self.chip.noise.random, fraction),
                self._in_range(self.chip.noise.nonlinear, fraction)
                if self.chip.domain.kind == Domain.CHARGE and not self.weight_parallel else 0.0)

    def _in_range(self, q, fraction: float) -> float:
        if q.unit == "lsb":
            return q.value * self.lsb_fraction
        return q.si() if fraction == 1.0 else q.si() / fraction

    def offset_sigma(self, fraction: float = 1.0) -> float:
        """Sigma of the per-column ADC offset in units of the tile's ADC range."""
        return self._in_range(self.chip.mismatch.adc_offset, fraction)

    @property
    def gain_sigma(self) -> float:
        return self.chip.mismatch.adc_gain.si()

    @property
    def has_column_mismatch(self) -> bool:
        return self.chip.mismatch.adc_offset.value > 0 or self.gain_sigma > 0

    @property
    def parallel_full_scale(self) -> int:
        """F of a weight-parallel conversion: (2^bx - 1) * (2^(bw-1) - 1) * rows."""
        return ((1 << self.chip.input.bits) - 1) * self.weight_levels * self.rows

    def is_digital(self, weight_bit: int, cycle: InputCycle) -> bool:
        """Hybrid CiM: level i + c above bw + C - L - 2 is computed digitally (no noise)."""
        levels = self.chip.hybrid.digital_levels
        return levels > 0 and weight_bit + cycle.index > self.num_levels - 1 - levels

    def is_voted(self, weight_bit: int, cycle: InputCycle) -> bool:
        levels = self.chip.voting.levels
        return levels > 0 and weight_bit + cycle.index > self.num_levels - 1 - levels

    def votes(self, weight_bit: int, cycle: InputCycle) -> int:
        """How many times the chip converts this MAC (voted analog levels: ``samples``)."""
        if self.is_voted(weight_bit, cycle) and not self.is_digital(weight_bit, cycle):
            return self.chip.voting.samples
        return 1

    def conversions(self, weight_bit: int, cycle: InputCycle) -> int:
        """ADC conversions of this MAC: 0 on a digital (hybrid) level, else ``votes``."""
        return 0 if self.is_digital(weight_bit, cycle) else self.votes(weight_bit, cycle)

    @property
    def pairs(self) -> tuple[tuple[InputCycle, int], ...]:
        """Every (input cycle, weight bit) pair, cycles outer: pair p is c * bw + i, the order
        of the kernels' per-pair tables."""
        return tuple((c, i) for c in self.cycles for i in range(self.weight_bits))

    def sign(self, weight_bit: int, cycle: InputCycle) -> int:
        """-1 when exactly one of (weight MSB, input sign cycle) holds, else +1."""
        msb = weight_bit == self.weight_bits - 1
        return -1 if msb != cycle.sign else 1

    @property
    def lsb_fraction(self) -> float:
        """One ADC LSB as a fraction of full scale."""
        return 1.0 / self.adc_levels

    @property
    def current_domain(self) -> bool:
        return self.chip.domain.kind == Domain.CURRENT

    @property
    def cell_sigma(self) -> float:
        """Per-cell weight error sigma: ``mismatch { cell }``, or the current domain's older
        spelling ``cell_variation`` (the same mechanism)."""
        if self.weight_parallel:
            return 0.0
        legacy = self.chip.domain.cell_variation.si() if self.current_domain else 0.0
        return self.chip.mismatch.cell.si() or legacy

    @property
    def dac_sigma(self) -> float:
        """Sigma of each input driver's relative level error (``mismatch { dac }``); bit-level
        conversions only."""
        return 0.0 if self.weight_parallel else self.chip.mismatch.dac.si()

    @property
    def perturbed_mac_bits(self) -> float:
        """log2 of the largest |MAC| a tile can reach under driver mismatch, in units of its
        grid (2^-14, times 2^-20 with cell mismatch): at most 53, every partial sum of a
        perturbed MAC is an integer multiple of the grid below 2^53, so the float64 sum is
        exact in any order (docs/numeric-model.md, 8c)."""
        top = max(c.max_group_value for c in self.cycles)
        level = top * (1 + NORMAL_BOUND * self.dac_sigma) + 2.0 ** -(DRIVER_GRID_BITS + 1)
        cell, grid = 1.0, DRIVER_GRID_BITS
        if self.cell_sigma:
            cell += NORMAL_BOUND * self.cell_sigma + 2.0 ** -(CELL_GRID_BITS + 1)
            grid += CELL_GRID_BITS
        return math.log2(self.rows * level * cell) + grid

    @property
    def has_static_mismatch(self) -> bool:
        """Some draw is fixed per chip instance (seed): cells, input drivers or column ADCs
        (gain, offset, code thresholds)."""
        return self.cell_sigma > 0 or self.dac_sigma > 0 or self.has_column_mismatch \
            or self.chip.mismatch.adc_dnl.value > 0

    @property
    def alpha(self) -> float:
        return self.chip.domain.alpha if self.current_domain else 0.0

    @property
    def has_noise(self) -> bool:
        """Some analog conversion draws its code: noise, or a measured transfer table."""
        return any(s > 0 for s in self.noise_sigmas()) or bool(self.chip.adc.transfer)

    def is_lossless(self, cycle: InputCycle, tile_rows: int | None = None) -> bool:
        """round(M*L/F)*F/L == M for every integer M a tile can produce, [0, (2^e'-1) *
        tile_rows], exactly when the range F is an integer that divides L and is not below that
        maximum (no clipping). Without ``tile_rows``: for every tile the chip can have."""
        if self.alpha != 0.0:
            return False
        if tile_rows is None:
            if self.chip.adc.full_scale == "used_rows":
                return all(self.is_lossless(cycle, r) for r in range(1, self.rows + 1))
            tile_rows = self.rows
        full_scale = self.range_fraction(tile_rows) * self.full_scale(cycle)
        return full_scale.is_integer() and self.adc_levels % int(full_scale) == 0 \
            and cycle.max_group_value * tile_rows <= full_scale

    def lsb_mac(self, cycle: InputCycle) -> float:
        """One ADC step in MAC units for a full tile: f * F / L."""
        return self.range_fraction() * self.full_scale(cycle) / self.adc_levels

    @property
    def conversions_per_tile_column(self) -> int:
        """ADC conversions per row tile and output column (one output position); digital
        levels are not converted by the ADC."""
        if self.weight_parallel:
            return 1
        return sum(self.conversions(i, c) for c, i in self.pairs)

    @property
    def digital_per_tile_column(self) -> int:
        """Digitally computed (hybrid) bit products per row tile and output column."""
        if self.weight_parallel:
            return 0
        return sum(1 for i in range(self.weight_bits) for c in self.cycles
                   if self.is_digital(i, c))
