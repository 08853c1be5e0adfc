"""Per-column ADC code thresholds: ``mismatch { adc_dnl }`` (docs/numeric-model.md, 8c).

Each physical column's ADC has its own thresholds: threshold k (between codes k - 1 and k,
k = 1..L) is the float32 value ``theta_k`` in units of the ADC range, drawn once per (seed,
layer, physical column, k) by ``mismatch.static_mismatch``; along k they never decrease (a
threshold that would cross an earlier one stays at it: a missing code). An analog conversion's
code is the number of thresholds its value v (after noise, column gain and offset; in [0, 1])
reaches, ``#{k : v >= theta_k}``, instead of ``round(v * L)``.

Weight bit i of output column n of a product sits in physical column
``(n mod floor(cols / bw)) * bw + i`` (``conversion_model.physical_columns``), so a layer holds
the thresholds of its first ``P = min(N, floor(cols / bw)) * bw`` columns, (P, L), never one
set per conversion; column n's bit i is then also ``(n mod (P / bw)) * bw + i``.
"""
from __future__ import annotations

import torch

from ..chip.conversions import ConversionPlan


def used_columns(plan: ConversionPlan, columns: int) -> int:
    """P: the physical columns a product with ``columns`` outputs uses (the first P)."""
    per_tile = plan.chip.array.cols // plan.weight_bits
    return min(columns, per_tile) * plan.weight_bits


def place(offsets: torch.Tensor, levels: int) -> torch.Tensor:
    """The thresholds (P, L) float32 from each column's offsets d (P, L) float32 in LSB:
    theta_k = float32(((k - 1/2) + d_k) / L) with the sum and the quotient in float64, then
    theta_k = max(theta_k, theta_{k-1}) (crossing thresholds keep their order)."""
    k = torch.arange(1, levels + 1, dtype=torch.float64, device=offsets.device)
    theta = (((k - 0.5) + offsets.double()) / levels).float()
    return torch.cummax(theta, dim=1).values.contiguous()


def count_reached(value: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """The definition, for the reference: #{k : value >= theta_k}, the number of the column's
    thresholds at or below the value, as float32. ``value`` (..., N), ``thresholds`` (N, L):
    column n's own."""
    columns = value.shape[-1]
    per_column = value.reshape(-1, columns).t().contiguous()          # (N, ...)
    count = torch.searchsorted(thresholds.contiguous(), per_column, right=True)
    return count.t().reshape(value.shape).to(value.dtype)


def walk(value: torch.Tensor, flat: torch.Tensor, first: torch.Tensor,
         levels: int) -> torch.Tensor:
    """The same count without an (…, L) temporary: from round(value * L) (near the answer when
    the offsets are small) up while the next threshold is reached, else down while the code's
    own is not; exact because each column's thresholds are sorted. ``flat``: the values (P * L,),
    ``first``: each conversion's column's offset p * L in it (broadcasts with ``value``)."""
    code = torch.round(value * levels).to(torch.int64)
    moved = True
    while moved:
        up = (code < levels) & (value >= flat[first + code.clamp(max=levels - 1)])
        code = code + up.long()
        moved = bool(up.any())
    moved = True
    while moved:
        down = (code > 0) & (value < flat[first + (code - 1).clamp(min=0)])
        code = code - down.long()
        moved = bool(down.any())
    return code.to(value.dtype)
