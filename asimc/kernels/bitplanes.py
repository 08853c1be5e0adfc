"""Splitting quantised integers into what the array sees: weight bit planes, input cycles.

Both use two's complement: a value v with b bits is stored as u = v mod 2^b; bit i of u has
weight 2^i except the MSB (weight -2^(b-1)). Unsigned inputs are their own u.
"""
from __future__ import annotations

import torch

from ..chip.conversions import InputCycle


def twos_complement(values: torch.Tensor, bits: int) -> torch.Tensor:
    """u = v mod 2^bits as int32 (values are integer-valued floats or ints, |v| < 2^16)."""
    v = values.to(torch.int32)
    return torch.remainder(v, 1 << bits)


def weight_bit_planes(weights: torch.Tensor, bits: int) -> torch.Tensor:
    """(bits, *weights.shape) float32 planes of 0/1, plane i = bit i (0 = LSB, last = MSB)."""
    u = twos_complement(weights, bits)
    shifts = torch.arange(bits, device=weights.device).view(-1, *([1] * weights.dim()))
    return ((u.unsqueeze(0) >> shifts) & 1).to(torch.float32)


def input_cycle_planes(inputs: torch.Tensor, bits: int, signed: bool,
                       cycles: tuple[InputCycle, ...], dim: int = 0) -> torch.Tensor:
    """float32 planes stacked on a new axis ``dim`` (C of them): the group value g in
    [0, 2^e'-1] each cycle drives. The sign cycle of a signed input carries the
    two's-complement MSB (0 or 1)."""
    u = twos_complement(inputs, bits) if signed else inputs.to(torch.int32)
    shape = list(inputs.shape)
    shape.insert(dim, len(cycles))
    planes = torch.empty(shape, dtype=torch.float32, device=inputs.device)
    for c in cycles:
        planes.select(dim, c.index).copy_((u >> c.low_bit) & c.max_group_value)
    return planes
