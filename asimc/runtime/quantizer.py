"""The quantisation steps of an on-chip matrix product (docs/numeric-model.md, "Quantisers"): input scales
(dynamic per tensor, per sample, or static), counting what the quantiser clips, the per-row
scales of the lowered product, and dequantising its integer result. The quantiser itself and
its level formulas are ``asimc.kernels.quantize`` (from ``asimc.chip.conversions``)."""
from __future__ import annotations

import torch

from ..chip.conversions import input_levels, weight_levels
from ..chip.spec import ChipSpec
from ..kernels.quantize import EPSILON, scale_of
from .samples import per_sample_peak


def clipped_count(chip: ChipSpec, static_scale: float | None, x: torch.Tensor) -> torch.Tensor:
    """Inputs the quantiser clips: negatives on an unsigned-input chip, and values beyond a
    static scale (a 0-d int64 tensor)."""
    clipped = x.new_zeros((), dtype=torch.int64)
    if not chip.input.signed:
        clipped = clipped + (x < 0).sum()
    if chip.quant.input == "static" and static_scale is not None:
        peak = x.abs() if chip.input.signed else x
        clipped = clipped + (peak > static_scale).sum()
    return clipped


def input_scale(chip: ChipSpec, x: torch.Tensor, layout, batch: int, node_desc: str,
                signed: bool, static: float | None) -> torch.Tensor:
    """Scale of every element of x (a tensor that broadcasts against x)."""
    how = chip.quant.input
    if how == "static":
        return torch.tensor(static, dtype=torch.float32, device=x.device)
    if how == "per_sample":
        peak, ids = per_sample_peak(x, layout, batch, signed, node_desc)
        return (peak.to(torch.float32) + EPSILON)[ids]
    return scale_of(x, signed)


def is_per_element(scale: torch.Tensor) -> bool:
    return scale.dim() > 0 and scale.numel() > 1


def leading_row_scale(x_scale: torch.Tensor, rows: int) -> torch.Tensor:
    """The scale of each of ``rows`` leading-axis slices of x (one sample's elements share one
    scale), or the scalar scale itself."""
    if not is_per_element(x_scale):
        return x_scale
    return x_scale.reshape(-1)[torch.arange(rows, device=x_scale.device)
                               * (x_scale.numel() // rows)]


def rows_of(x: torch.Tensor, x_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, R, K) rows of x (..., K) and the per-row scale (1, R, 1) or a scalar."""
    k = x.shape[-1]
    rows = x.reshape(1, -1, k)
    if is_per_element(x_scale):
        return rows, x_scale.expand_as(x).reshape(-1, k)[:, 0].view(1, -1, 1)
    return rows, x_scale


def dequantize(chip: ChipSpec, acc: torch.Tensor, w_scale, x_scale) -> torch.Tensor:
    """acc * s_w * s_x / (Lw * Lx), in float32."""
    levels = weight_levels(chip.weight.bits) * input_levels(chip.input.bits, chip.input.signed)
    scale = (w_scale.double() * x_scale.double()) / levels
    return (acc * scale).to(torch.float32)
