"""Data-dependent indexing: ScatterElements, ScatterND, OneHot, Compress, NonZero."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ir import Node
from .common import axis_index, fail, scalar
from .layout import COMPRESS, ONE_HOT, SCATTER_ELEMENTS, lost
from .registry import op

_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _reduction(node: Node) -> str | None:
    name = node.attr("reduction", "none")
    if name != "none" and name not in _REDUCE:
        raise fail(node, f"unknown reduction {name!r}")
    return None if name == "none" else _REDUCE[name]


@op("ScatterElements", layout=SCATTER_ELEMENTS)
def scatter_elements(node: Node, data: Tensor, indices: Tensor, updates: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", 0), data.dim())
    idx = indices.long()
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    reduce = _reduction(node)
    if reduce is None:
        return data.scatter(axis, idx, updates)
    return data.scatter_reduce(axis, idx, updates, reduce, include_self=True)


@op("ScatterND", layout=lost("ScatterND writes updates at computed coordinates, which the batch rules do not follow"))
def scatter_nd(node: Node, data: Tensor, indices: Tensor, updates: Tensor) -> Tensor:
    depth = indices.shape[-1]
    lead = data.shape[:depth]
    rows = math.prod(lead)
    flat = data.reshape(rows, -1).clone()
    idx = indices.reshape(-1, depth).long()
    idx = torch.where(idx < 0, idx + torch.tensor(lead, device=idx.device), idx)
    strides = torch.tensor([math.prod(lead[k + 1:]) for k in range(depth)], device=idx.device)
    row = (idx * strides).sum(dim=1)
    values = updates.reshape(row.numel(), -1)
    reduce = _reduction(node)
    if reduce is None:
        flat[row] = values
    else:
        flat.scatter_reduce_(0, row.unsqueeze(1).expand_as(values), values, reduce,
                             include_self=True)
    return flat.reshape(data.shape)


@op("OneHot", layout=ONE_HOT)
def one_hot(node: Node, indices: Tensor, depth: Tensor, values: Tensor) -> Tensor:
    size = int(scalar(depth))
    idx = indices.to(torch.float64).floor().long() if indices.dtype.is_floating_point \
        else indices.long()
    idx = torch.where(idx < 0, idx + size, idx)
    valid = (idx >= 0) & (idx < size)
    hot = torch.nn.functional.one_hot(torch.where(valid, idx, 0), size).bool() & \
        valid.unsqueeze(-1)
    axis = axis_index(node, node.attr("axis", -1), indices.dim() + 1)
    hot = hot.movedim(-1, axis)
    off, on = values.reshape(-1)[0], values.reshape(-1)[1]
    return torch.where(hot, on, off)


@op("Compress", layout=COMPRESS)
def compress(node: Node, x: Tensor, condition: Tensor) -> Tensor:
    axis = node.attr("axis")
    if axis is None:
        x, axis = x.reshape(-1), 0
    else:
        axis = axis_index(node, axis, x.dim())
    keep = torch.nonzero(condition.reshape(-1).bool()).reshape(-1)
    keep = keep[keep < x.shape[axis]]
    return x.index_select(axis, keep)


@op("NonZero", layout=lost("NonZero lists the coordinates of every sample together"))
def non_zero(node: Node, x: Tensor) -> Tensor:
    if x.dim() == 0:
        return torch.zeros((0, int(bool(x))), dtype=torch.int64, device=x.device)
    return torch.nonzero(x).t().contiguous()
