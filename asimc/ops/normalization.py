"""Normalisations: BatchNormalization (inference), LayerNormalization, InstanceNormalization."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import axis_index, fail
from .registry import op


def _channel_shape(x: Tensor) -> list[int]:
    return [1, -1] + [1] * (x.dim() - 2)


@op("BatchNormalization")
def batch_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor,
                        var: Tensor) -> Tensor:
    if node.attr("training_mode", 0):
        raise fail(node, "training_mode=1 is not supported (asimc runs inference)")
    eps = float(node.attr("epsilon", 1e-5))
    shape = _channel_shape(x) if x.dim() > 1 else [-1]
    factor = (scale / torch.sqrt(var + eps)).reshape(shape)
    return (x - mean.reshape(shape)) * factor + bias.reshape(shape)


@op("LayerNormalization")
def layer_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor | None = None
                        ) -> Tensor | tuple[Tensor, ...]:
    axis = axis_index(node, node.attr("axis", -1), x.dim())
    eps = float(node.attr("epsilon", 1e-5))
    stash = node.attr("stash_type", 1)
    compute = torch.float64 if stash == 11 or x.dtype == torch.float64 else torch.float32
    dims = tuple(range(axis, x.dim()))
    xc = x.to(compute)
    mean = xc.mean(dim=dims, keepdim=True)
    var = ((xc - mean) ** 2).mean(dim=dims, keepdim=True)
    inv_std = torch.rsqrt(var + eps)
    y = ((xc - mean) * inv_std).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    if len(node.outputs) > 1:          # optional Mean and InvStdDev (reduced axes kept as 1)
        return y, mean.to(torch.float32) if stash == 1 else mean, \
            inv_std.to(torch.float32) if stash == 1 else inv_std
    return y


@op("InstanceNormalization")
def instance_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    if x.dim() < 3:
        raise fail(node, f"input must have rank >= 3, got shape {list(x.shape)}")
    eps = float(node.attr("epsilon", 1e-5))
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    shape = _channel_shape(x)
    return (x - mean) / torch.sqrt(var + eps) * scale.reshape(shape) + bias.reshape(shape)


@op("LpNormalization")
def lp_normalization(node: Node, x: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", -1), x.dim())
    p = int(node.attr("p", 2))
    if p not in (1, 2):
        raise fail(node, f"p must be 1 or 2, got {p}")
    norm = x.abs().sum(dim=axis, keepdim=True) if p == 1 else \
        torch.sqrt((x * x).sum(dim=axis, keepdim=True))
    return x / norm
