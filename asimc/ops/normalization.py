"""Normalisations: BatchNormalization (inference), LayerNormalization, InstanceNormalization."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import axis_index, fail
from .layout import (ANY_AXIS, GROUP_NORM, LAYER_NORM, LRN, MEAN_VARIANCE, along_axis,
                     spatial)
from .registry import op


def _channel_shape(x: Tensor) -> list[int]:
    return [1, -1] + [1] * (x.dim() - 2)


@op("BatchNormalization", layout=ANY_AXIS)
def batch_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor,
                        var: Tensor) -> Tensor:
    if node.attr("training_mode", 0):
        raise fail(node, "training_mode=1 is not supported (asimc runs inference)")
    eps = float(node.attr("epsilon", 1e-5))
    shape = _channel_shape(x) if x.dim() > 1 else [-1]
    factor = (scale / torch.sqrt(var + eps)).reshape(shape)
    return (x - mean.reshape(shape)) * factor + bias.reshape(shape)


@op("LayerNormalization", layout=LAYER_NORM)
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


@op("InstanceNormalization", layout=spatial((0, 1)))
def instance_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    if x.dim() < 3:
        raise fail(node, f"input must have rank >= 3, got shape {list(x.shape)}")
    eps = float(node.attr("epsilon", 1e-5))
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    shape = _channel_shape(x)
    return (x - mean) / torch.sqrt(var + eps) * scale.reshape(shape) + bias.reshape(shape)


@op("LpNormalization", layout=along_axis(-1))
def lp_normalization(node: Node, x: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", -1), x.dim())
    p = int(node.attr("p", 2))
    if p not in (1, 2):
        raise fail(node, f"p must be 1 or 2, got {p}")
    norm = x.abs().sum(dim=axis, keepdim=True) if p == 1 else \
        torch.sqrt((x * x).sum(dim=axis, keepdim=True))
    return torch.where(norm == 0, torch.zeros_like(x), x / norm)      # 0/0 -> 0, as ONNX says


def _stash_dtype(node: Node, x: Tensor) -> torch.dtype:
    return torch.float64 if node.attr("stash_type", 1) == 11 or x.dtype == torch.float64 \
        else torch.float32


@op("RMSNormalization", layout=LAYER_NORM)
def rms_normalization(node: Node, x: Tensor, scale: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", -1), x.dim())
    eps = float(node.attr("epsilon", 1e-5))
    xc = x.to(_stash_dtype(node, x))
    dims = tuple(range(axis, x.dim()))
    rms = torch.sqrt((xc * xc).mean(dim=dims, keepdim=True) + eps)
    return (xc / rms).to(x.dtype) * scale


@op("GroupNormalization", layout=GROUP_NORM)
def group_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    """Opset 21 form: per-channel scale and bias (the importer expands opset-18 per-group)."""
    groups = int(node.attr("num_groups"))
    eps = float(node.attr("epsilon", 1e-5))
    n, c = x.shape[:2]
    if c % groups:
        raise fail(node, f"{c} channels are not divisible into {groups} groups")
    xc = x.to(_stash_dtype(node, x)).reshape(n, groups, -1)
    mean = xc.mean(dim=2, keepdim=True)
    var = ((xc - mean) ** 2).mean(dim=2, keepdim=True)
    y = ((xc - mean) / torch.sqrt(var + eps)).reshape(x.shape).to(x.dtype)
    return y * scale.reshape(_channel_shape(x)) + bias.reshape(_channel_shape(x))


@op("MeanVarianceNormalization", layout=MEAN_VARIANCE)
def mean_variance_normalization(node: Node, x: Tensor) -> Tensor:
    axes = node.attr("axes", [0, 2, 3])
    dims = tuple(a % x.dim() for a in axes)
    mean = x.mean(dim=dims, keepdim=True)
    var = (x * x).mean(dim=dims, keepdim=True) - mean * mean
    return (x - mean) / torch.sqrt(var + 1e-9)


@op("LRN", layout=LRN)
def lrn(node: Node, x: Tensor) -> Tensor:
    size = int(node.attr("size"))
    alpha, beta = float(node.attr("alpha", 1e-4)), float(node.attr("beta", 0.75))
    bias = float(node.attr("bias", 1.0))
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    square = (x * x).transpose(0, 1)                       # channels first
    padded = torch.nn.functional.pad(square.reshape(square.shape[0], -1).t(), (before, after))
    window = padded.unfold(1, size, 1).sum(dim=2).t().reshape(square.shape).transpose(0, 1)
    return x / (bias + alpha / size * window) ** beta
