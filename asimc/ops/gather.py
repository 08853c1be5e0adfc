"""Indexing: Gather (embeddings), GatherElements, GatherND. Negative indices count from the end."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import axis_index, fail
from .layout import GATHER, GATHER_ELEMENTS, GATHER_ND
from .registry import op


def _wrap(indices: Tensor, size: int) -> Tensor:
    indices = indices.long()
    return torch.where(indices < 0, indices + size, indices)


@op("Gather", layout=GATHER)
def gather(node: Node, data: Tensor, indices: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", 0), data.dim())
    idx = _wrap(indices, data.shape[axis])
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= data.shape[axis]):
        raise fail(node, f"index out of range for axis {axis} of size {data.shape[axis]}")
    picked = data.index_select(axis, idx.reshape(-1))
    return picked.reshape((*data.shape[:axis], *indices.shape, *data.shape[axis + 1:]))


@op("GatherElements", layout=GATHER_ELEMENTS)
def gather_elements(node: Node, data: Tensor, indices: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", 0), data.dim())
    return torch.gather(data, axis, _wrap(indices, data.shape[axis]))


@op("GatherND", layout=GATHER_ND)
def gather_nd(node: Node, data: Tensor, indices: Tensor) -> Tensor:
    b = int(node.attr("batch_dims", 0))
    depth = indices.shape[-1]
    if b + depth > data.dim():
        raise fail(node, f"indices of depth {depth} with batch_dims={b} do not fit data of "
                         f"rank {data.dim()}")
    batch_shape = list(data.shape[:b])
    batch = int(torch.tensor(batch_shape).prod()) if batch_shape else 1
    flat_data = data.reshape(batch, *data.shape[b:])
    flat_idx = indices.reshape(batch, -1, depth).long().clone()
    for j in range(depth):        # negative indices count from the end
        size = data.shape[b + j]
        flat_idx[..., j] = torch.where(flat_idx[..., j] < 0, flat_idx[..., j] + size,
                                       flat_idx[..., j])
    rows = torch.arange(batch, device=data.device).reshape(batch, 1)
    picked = flat_data[(rows, *[flat_idx[..., j] for j in range(depth)])]
    return picked.reshape((*indices.shape[:-1], *data.shape[b + depth:]))
