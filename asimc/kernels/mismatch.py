"""Fixed-pattern mismatch: the static errors of one chip instance, drawn once from the seed
(docs/numeric-model.md, "ADC range and fixed-pattern mismatch").

Every draw is a function of (seed, layer, coordinate) through the counter-based generator of
``rng`` (its public normal draw), so it is the same for every sample, batch, chunk and run of a
seed, and different for another seed:

- cell errors: counter ``(i * K + k) * N + n`` for weight bit i, row k, column n, rounded to
  multiples of 2^-20;
- column ADC gain and offset: counter ``(t * B + i) * N + n`` for row tile t (a tile sits on its
  own columns), weight bit i (B = bw; weight-parallel: B = 1, i = 0) and column n;
- input drivers: counter ``r * G + g - 1`` for array row r and driven level g = 1..G
  (G = 2^bits_per_cycle - 1), the level rounded to multiples of 2^-14 (docs/numeric-model.md,
  section 8c).
- ADC code thresholds (``adc_dnl``): counter ``p * L + k - 1`` for physical column p and
  threshold k = 1..L (``thresholds``).

Each kind has its own salt, so no two share a number.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..chip.conversions import CELL_GRID_BITS, DRIVER_GRID_BITS, ConversionPlan
from . import rng, thresholds as column_thresholds
from .rng import CELL_SALT, DRIVER_SALT, GAIN_SALT, OFFSET_SALT, THRESHOLD_SALT

# Cell errors are multiples of 2^-20 (1e-6 of a unit cell, far below any sigma one writes), so
# that a MAC over perturbed cells is an exact float64 sum whatever the summation order: both
# kernels then get the same MAC from matrix products of different shapes. Driven input levels
# are multiples of 2^-14 for the same reason (the chip check bounds the sum:
# ``ConversionPlan.perturbed_mac_bits``).
CELL_GRID = float(1 << CELL_GRID_BITS)
DRIVER_GRID = float(1 << DRIVER_GRID_BITS)


@dataclass(frozen=True, eq=False)
class StaticMismatch:
    """The kernel inputs of ``AcimProblem``: cells (bw, K, N), gain and offset (T, B, N),
    drivers (rows, G + 1), thresholds (P, L)."""

    cells: torch.Tensor | None = None
    gain: torch.Tensor | None = None
    offset: torch.Tensor | None = None
    drivers: torch.Tensor | None = None
    thresholds: torch.Tensor | None = None


def normals(seed: int, layer_key: int, salt: int, count: int,
            device: torch.device) -> torch.Tensor:
    """``count`` N(0, 1) draws of one (seed, layer, kind), counters 0..count-1."""
    stream = torch.tensor(rng.combine(seed, layer_key, salt), dtype=torch.int64, device=device)
    return rng.standard_normal(stream, torch.arange(count, dtype=torch.int64, device=device))


def static_mismatch(plan: ConversionPlan, seed: int, layer_key: int,
                    tiles: tuple[tuple[int, int], ...], k: int, n: int,
                    device: torch.device) -> StaticMismatch:
    """The layer's static errors on this chip instance (fields None where the chip has none)."""
    cells = gain = offset = None
    if plan.cell_sigma > 0:
        bw = plan.weight_bits
        z = normals(seed, layer_key, CELL_SALT, bw * k * n, device).view(bw, k, n)
        cells = torch.round(z * plan.cell_sigma * CELL_GRID) / CELL_GRID
    bits = 1 if plan.weight_parallel else plan.weight_bits
    shape = (len(tiles), bits, n)
    if plan.gain_sigma > 0:
        z = normals(seed, layer_key, GAIN_SALT, shape[0] * bits * n, device).view(shape)
        gain = 1.0 + z * plan.gain_sigma
    if plan.chip.mismatch.adc_offset.value > 0:
        z = normals(seed, layer_key, OFFSET_SALT, shape[0] * bits * n, device).view(shape)
        sigma = torch.tensor([plan.offset_sigma(plan.range_fraction(k1 - k0))
                              for k0, k1 in tiles], dtype=torch.float32, device=device)
        offset = z * sigma.view(-1, 1, 1)
    drivers = None
    if plan.dac_sigma > 0:
        drivers = driven_levels(plan, seed, layer_key, max(k1 - k0 for k0, k1 in tiles), device)
    return StaticMismatch(cells, gain, offset, drivers,
                          _thresholds(plan, seed, layer_key, n, device))


def driven_levels(plan: ConversionPlan, seed: int, layer_key: int, rows: int,
                  device: torch.device) -> torch.Tensor:
    """(rows, G + 1) float64: what the drivers of array rows 0..rows-1 drive for group value
    g = 0..G, ``max(0, round(g (1 + eps) 2^14) / 2^14)`` with ``eps = sigma z`` (float32);
    0 drives 0."""
    top = max(c.max_group_value for c in plan.cycles)
    eps = normals(seed, layer_key, DRIVER_SALT, rows * top, device).view(rows, top) \
        * plan.dac_sigma
    g = torch.arange(1, top + 1, dtype=torch.float64, device=device)
    levels = torch.clamp(torch.round(g * (1.0 + eps.double()) * DRIVER_GRID) / DRIVER_GRID,
                         min=0.0)
    return torch.cat([torch.zeros(rows, 1, dtype=torch.float64, device=device), levels], dim=1)


def driven_planes(planes: torch.Tensor, drivers: torch.Tensor,
                  tiles: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """float64 planes of the levels the drivers drive for the group values in ``planes``
    (..., K): input row k of tile [k0, k1) is array row k - k0 (every tile is mapped onto the
    same array rows)."""
    array_row = torch.cat([torch.arange(k1 - k0, device=planes.device) for k0, k1 in tiles])
    return drivers.flatten()[array_row * drivers.shape[1] + planes.long()]


def _thresholds(plan: ConversionPlan, seed: int, layer_key: int, n: int,
                device: torch.device) -> torch.Tensor | None:
    """Each used physical column's ADC thresholds: offsets d = float32(z * float32(sigma)) LSB."""
    sigma = plan.chip.mismatch.adc_dnl.value
    if sigma <= 0:          # (weight-parallel chips refuse adc_dnl: asimc/chip/check.py)
        return None
    columns, levels = column_thresholds.used_columns(plan, n), plan.adc_levels
    z = normals(seed, layer_key, THRESHOLD_SALT, columns * levels, device).view(columns, levels)
    return column_thresholds.place(z * torch.tensor(sigma, dtype=torch.float32, device=device),
                                   levels)
