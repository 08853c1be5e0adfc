"""What a bit-level kernel is asked to compute: one quantised matrix product on one chip.

Both kernels (``reference`` and ``fast``) take an ``AcimProblem`` and return the accumulated
product in integer-product units (``sum_k x[k] * w[k]`` when every conversion is exact), as
float64. Dequantisation (scales, bias) happens outside the kernels.

Random draws: the conversions of weight bits 4j..4j+3 (row tile t, cycle c, vote v) of output
element e of a sample share one Philox4x32-10 call at counter ``step * E + e`` in the sample's
stream; bit 4j + q takes its word q (``rng.random_words``) and draws its code from
``conversion_model``'s table, or, where a normal is drawn instead (``draws_codes``), normal q of
the call (``rng.standard_normal_quad``), with
``step = ((t * ceil(bw/4) + j) * C + c) * V + v`` (V = votes per conversion, E = output
elements per sample). ``NoiseKeys`` gives each (group, row) its stream and the element index of
its first column; column n adds ``n * col_stride``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..chip.conversions import ConversionPlan
from . import rng


@dataclass(frozen=True, eq=False)
class NoiseKeys:
    """Where every conversion's draws come from.

    stream:     (G, R) int64 stream key per row (seed, layer and sample mixed).
    offset:     (G, R) int64 output-element index (within its sample) of the row's column 0.
    col_stride: element index step from one output column to the next.
    elements:   E, output elements per sample (the counter space of one conversion step).
    """

    stream: torch.Tensor
    offset: torch.Tensor
    col_stride: int
    elements: int

    def counters(self, step: torch.Tensor | int, columns: torch.Tensor) -> torch.Tensor:
        """Counters for (…, R, N) conversions of one step; ``columns`` holds column indices."""
        return step * self.elements + self.offset.unsqueeze(-1) + columns * self.col_stride


@dataclass(frozen=True, eq=False)
class AcimProblem:
    """One matrix product on the array.

    x:     (G, R, K) quantised inputs (integer-valued float32).
    w:     (Gw, K, N) quantised weights, Gw = 1 (static weights) or G (run-time operand).
    plan:  the layer's chip and its conversion structure.
    tiles: row tiles as [k0, k1) ranges covering 0..K.
    noise: stream keys, or None when nothing is drawn (noiseless chip).
    cells: (bw, K, N) static cell errors added to the weight bits of analog conversions, or None.
    gain:  (T, bw, N) float32 1 + g, each column ADC's gain (weight-parallel: (T, 1, N)), or None.
    offset: (T, bw, N) float32 each column ADC's offset in units of the tile's range, or None.
    drivers: (rows, G + 1) float64 the level array row r's input driver drives for group value
           g (``mismatch.driven_levels``), seen by analog conversions; or None (ideal drivers).
    thresholds: (P, L) float32 each physical column ADC's code thresholds (``mismatch
            { adc_dnl }``, asimc/kernels/thresholds.py), or None.
    The ADC range of tile t is ``fraction(t)`` x the rows-based F (docs/numeric-model.md,
    "ADC range and fixed-pattern mismatch").
    """

    x: torch.Tensor
    w: torch.Tensor
    plan: ConversionPlan
    tiles: tuple[tuple[int, int], ...]
    noise: NoiseKeys | None = None
    cells: torch.Tensor | None = None
    gain: torch.Tensor | None = None
    offset: torch.Tensor | None = None
    drivers: torch.Tensor | None = None
    thresholds: torch.Tensor | None = None

    def fraction(self, tile: int) -> float:
        """f of tile t: its ADC range over the rows-based full scale."""
        k0, k1 = self.tiles[tile]
        return self.plan.range_fraction(k1 - k0)

    def full_scale(self, tile: int, cycle) -> float:
        """The range a conversion of tile t divides by: f * F (F for full_scale rows)."""
        return self.plan.ranged_full_scale(self.plan.full_scale(cycle), self.fraction(tile))

    @property
    def ranged(self) -> bool:
        """Some tile's ADC range is not the rows-based one."""
        return any(self.fraction(t) != 1.0 for t in range(len(self.tiles)))

    @property
    def column_mismatch(self) -> bool:
        """The column ADCs differ (gain, offset or thresholds): analog codes are per column."""
        return self.gain is not None or self.offset is not None or self.thresholds is not None

    @property
    def perturbed(self) -> bool:
        """Analog conversions see perturbed cells or drivers: their MACs are not integers."""
        return self.cells is not None or self.drivers is not None

    @property
    def draws_codes(self) -> bool:
        """Noisy analog conversions draw their code from ``conversion_model``'s tables (one
        32-bit word each); with perturbed cells or drivers (non-integer MACs) or column ADC
        errors (a per-column transform or code thresholds of the noisy value) they draw a
        normal instead."""
        return self.noise is not None and not self.perturbed and not self.column_mismatch \
            and not self.plan.weight_parallel

    def is_lossless(self, tile: int, cycle) -> bool:
        k0, k1 = self.tiles[tile]
        return self.plan.is_lossless(cycle, k1 - k0)

    @property
    def num_votes(self) -> int:
        return self.plan.chip.voting.samples if self.plan.chip.voting.levels else 1

    def step(self, tile: int, weight_bit: int, cycle: int, vote: int = 0) -> int:
        """The counter step of a conversion's draw (shared by weight bits 4j..4j+3)."""
        plan = self.plan
        return ((tile * weight_quads(plan.weight_bits) + weight_bit // 4) * len(plan.cycles)
                + cycle) * self.num_votes + vote


@dataclass(frozen=True)
class PairTables:
    """What every bit-level kernel needs per (input cycle, weight bit) pair, in the order
    p = c * bw + i of ``ConversionPlan.pairs``."""

    digital: tuple[bool, ...]        # hybrid: computed digitally, exact
    draws: tuple[int, ...]           # noisy conversions: 0 (digital or noiseless), S voted, 1
    shift_add: tuple[int, ...]       # sign * F_c * 2^(i + b_c)
    alpha: tuple[float, ...]         # current-domain compression (0 on digital levels)
    step: tuple[int, ...]            # counter step of the pair's draw in tile 0

    @classmethod
    def of(cls, problem: "AcimProblem") -> "PairTables":
        plan = problem.plan
        pairs = plan.pairs
        digital = tuple(plan.is_digital(i, c) for c, i in pairs)
        return cls(
            digital=digital,
            draws=tuple(plan.conversions(i, c) if problem.noise is not None else 0
                        for c, i in pairs),
            shift_add=tuple(plan.sign(i, c) * plan.full_scale(c) * 2 ** (i + c.low_bit)
                            for c, i in pairs),
            alpha=tuple(0.0 if d else plan.alpha for d in digital),
            step=tuple(problem.step(0, i, c.index) for c, i in pairs))


def weight_quads(weight_bits: int) -> int:
    """Philox calls per conversion step: one per four weight bits."""
    return (weight_bits + 3) // 4


def quad_part(normals: tuple[torch.Tensor, ...], weight_bit: int) -> torch.Tensor:
    """The normal of a Philox quad that belongs to ``weight_bit``."""
    return normals[weight_bit % 4]
