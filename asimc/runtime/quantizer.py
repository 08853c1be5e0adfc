"""The quantisation steps of an on-chip matrix product (docs/numeric-model.md, "Quantisers"):
input scales (dynamic per tensor, per sample or per token, or static), counting what the
quantiser clips, the per-row scales of the lowered product, the integers of a quantised (QDQ)
model's operands, and dequantising its integer result. The quantiser itself and its level
formulas are ``asimc.kernels.quantize`` (from ``asimc.chip.conversions``)."""
from __future__ import annotations

import torch

from ..chip.conversions import input_levels, weight_levels
from ..chip.fields import InputScale
from ..chip.spec import ChipSpec
from ..program import QdqOperand
from ..kernels.quantize import EPSILON, scale_of
from ..errors import ModelError
from .batch import BatchLayout
from .samples import per_sample_peak


def clipped_count(chip: ChipSpec, static_scale: float | None, x: torch.Tensor) -> torch.Tensor:
    """Inputs the quantiser clips: negatives on an unsigned-input chip, and values beyond a
    static scale (a 0-d int64 tensor)."""
    clipped = x.new_zeros((), dtype=torch.int64)
    if not chip.input.signed:
        clipped = clipped + (x < 0).sum()
    if chip.quant.input == InputScale.STATIC and static_scale is not None:
        peak = x.abs() if chip.input.signed else x
        clipped = clipped + (peak > static_scale).sum()
    return clipped


def input_scale(chip: ChipSpec, x: torch.Tensor, layout, batch: int, node_desc: str,
                signed: bool, static: float | None, reduce_dim: int | None = -1
                ) -> torch.Tensor:
    """Scale of every element of x (a tensor that broadcasts against x).

    ``reduce_dim``: the axis of x that the product reduces (K): ``per_token`` takes one scale
    per slice along it (-1: a row of the left operand; -2: a column of the right operand of
    an activation x activation product). None: x is not unfolded into rows yet (a
    convolution's input), so ``per_token`` falls back to one scale per sample.
    """
    how = chip.quant.input
    if how == InputScale.STATIC:
        return torch.tensor(static, dtype=torch.float32, device=x.device)
    if how == InputScale.PER_TOKEN and reduce_dim is not None and x.dim() > 1:
        _check_rows_within_samples(x, layout, batch, reduce_dim, node_desc)
        peak = (x.abs() if signed else x).amax(dim=reduce_dim, keepdim=True)
        return peak.to(torch.float32) + EPSILON
    if how in (InputScale.PER_SAMPLE, InputScale.PER_TOKEN):
        peak, ids = per_sample_peak(x, layout, batch, signed, node_desc)
        return (peak.to(torch.float32) + EPSILON)[ids]
    return scale_of(x, signed)


def _check_rows_within_samples(x: torch.Tensor, layout, batch: int, reduce_dim: int,
                               node_desc: str) -> None:
    """Per-token scales are per sample only if no row mixes samples: refuse a batch axis that
    runs along the reduction or cannot be followed (as per-sample scales do)."""
    if batch == 1 or layout is None:      # one sample, or values no sample owns
        return
    lost = not isinstance(layout, BatchLayout)
    if lost or layout.axis % x.dim() == reduce_dim % x.dim():
        raise ModelError(
            f"{node_desc}: per-token scales take one scale per row of the product, but "
            + ("the batch axis cannot be followed to this node's input" if lost else
               "the batch runs along this product's reduction, so a row mixes samples")
            + ". Use `quant { input per_tensor }` or static scales (`--input-scales DATA`).")


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


# -- a quantised (QDQ) model's own integers (asimc.passes.qdq) ---------------------------------

def model_integers(x: torch.Tensor, operand: QdqOperand) -> torch.Tensor:
    """The integers the chip takes for x = (u - z) * s (a DequantizeLinear output): u - shift.

    round(x / s) recovers u - z exactly (x is within float32 rounding of an integer times s),
    so the model's integers reach the array unchanged."""
    s = torch.tensor(operand.scale, dtype=torch.float32, device=x.device)
    return torch.round(x.to(torch.float32) / s) + operand.zero_point


def zero_point_correction(acc: torch.Tensor, x: torch.Tensor | None, weights: torch.Tensor,
                          x_zero: int, w_zero: int = 0) -> torch.Tensor:
    """sum (x - z_x)(w - z_w) from the array's acc = sum x w: the digital periphery's exact
    terms, - z_x (column sums of w) - z_w (row sums of x) + K z_x z_w.
    acc (G, R, N), x (G, R, K) (only needed when z_w != 0), weights (G, K, N)."""
    if x_zero:
        acc = acc - x_zero * weights.double().sum(dim=1, keepdim=True)
    if w_zero:
        acc = acc - w_zero * x.double().sum(dim=2, keepdim=True) \
            + float(x_zero) * w_zero * weights.shape[1]
    return acc
