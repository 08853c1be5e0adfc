"""TopK: the k largest (or smallest) elements along an axis; ties keep the lower index first."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import axis_index, fail, scalar
from .layout import TOPK
from .registry import op


@op("TopK", layout=TOPK)
def top_k(node: Node, x: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    axis = axis_index(node, node.attr("axis", -1), x.dim())
    count = int(scalar(k))
    if not 0 <= count <= x.shape[axis]:
        raise fail(node, f"k={count} is out of range for an axis of size {x.shape[axis]}")
    largest = bool(node.attr("largest", 1))
    # a stable sort keeps equal elements in index order, as ONNX requires
    values, indices = torch.sort(x, dim=axis, descending=largest, stable=True)
    return values.narrow(axis, 0, count), indices.narrow(axis, 0, count)
