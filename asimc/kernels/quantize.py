"""The quantisers of the numeric model (docs/numeric-model.md, "Quantisers"), in float32 like ASiM.

Weights (and the run-time "weight" operand of an activation x activation MatMul) are symmetric:
``Wq = round(clamp(|W|/s_w, 0, 1) * (2^(bw-1)-1)) * sign(W)`` with ``s_w = max|W| + 1e-7``.
Unsigned inputs: ``Xq = round(clamp(X/s_x, 0, 1) * (2^bx - 1))`` with ``s_x = max(X) + 1e-7``.
Signed inputs: like weights with bx bits. ``torch.round`` rounds half to even.
"""
from __future__ import annotations

import torch

from ..chip.conversions import input_levels, weight_levels  # noqa: F401 - the one definition

EPSILON = 1e-7


def scale_of(values: torch.Tensor, signed: bool) -> torch.Tensor:
    """The dynamic scale of a whole tensor: max|v| + eps (signed) or max(v) + eps."""
    peak = values.abs().amax() if signed else values.amax()
    return peak.to(torch.float32) + EPSILON


def quantize_symmetric(values: torch.Tensor, scale: torch.Tensor, levels: int) -> torch.Tensor:
    """round(clamp(|v|/s, 0, 1) * levels) * sign(v); ``scale`` broadcasts against ``values``."""
    magnitude = torch.clamp(values.abs() / scale, 0.0, 1.0)
    return torch.round(magnitude * levels) * torch.sign(values)


def quantize_unsigned(values: torch.Tensor, scale: torch.Tensor, levels: int) -> torch.Tensor:
    """round(clamp(v/s, 0, 1) * levels); negative inputs become 0."""
    return torch.round(torch.clamp(values / scale, 0.0, 1.0) * levels)


def quantize_input(values: torch.Tensor, scale: torch.Tensor, bits: int,
                   signed: bool) -> torch.Tensor:
    levels = input_levels(bits, signed)
    if signed:
        return quantize_symmetric(values, scale, levels)
    return quantize_unsigned(values, scale, levels)


def quantize_weight(values: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    return quantize_symmetric(values, scale, weight_levels(bits))
