"""Softmax, LogSoftmax and Hardmax over one axis (the opset >= 13 form; older "flatten to 2-D"
forms are rewritten by the importer)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import axis_index
from .layout import along_axis
from .registry import op


@op("Softmax", layout=along_axis(-1))
def softmax(node: Node, x: Tensor) -> Tensor:
    return torch.softmax(x, dim=axis_index(node, node.attr("axis", -1), x.dim()))


@op("LogSoftmax", layout=along_axis(-1))
def log_softmax(node: Node, x: Tensor) -> Tensor:
    return torch.log_softmax(x, dim=axis_index(node, node.attr("axis", -1), x.dim()))


@op("Hardmax", layout=along_axis(-1))
def hardmax(node: Node, x: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", -1), x.dim())
    first = torch.argmax(x, dim=axis, keepdim=True)       # the first maximum wins
    return torch.zeros_like(x).scatter_(axis, first, 1)
