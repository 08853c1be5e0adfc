"""Comparisons and logic: Equal, Greater(OrEqual), Less(OrEqual), And, Or, Xor, Not, Where."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import unsigned_safe
from .layout import BROADCAST, SAME
from .registry import op

_COMPARE = {"Equal": torch.eq, "Greater": torch.gt, "GreaterOrEqual": torch.ge,
            "Less": torch.lt, "LessOrEqual": torch.le}
_LOGIC = {"And": torch.logical_and, "Or": torch.logical_or, "Xor": torch.logical_xor}


def _binary(fn):
    def compare(node: Node, a: Tensor, b: Tensor) -> Tensor:
        return fn(a, b)
    return compare


for _name, _fn in _COMPARE.items():
    op(_name, layout=BROADCAST)(unsigned_safe("order")(_binary(_fn)))
for _name, _fn in _LOGIC.items():
    op(_name, layout=BROADCAST)(_binary(_fn))


@op("Not", layout=SAME)
def not_(node: Node, x: Tensor) -> Tensor:
    return torch.logical_not(x)


@op("Where", layout=BROADCAST)
def where(node: Node, condition: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return torch.where(condition.to(torch.bool), x, y)


@op("IsNaN", layout=SAME)
def is_nan(node: Node, x: Tensor) -> Tensor:
    return torch.isnan(x)


@op("IsInf", layout=SAME)
def is_inf(node: Node, x: Tensor) -> Tensor:
    detect_negative = node.attr("detect_negative", 1)
    detect_positive = node.attr("detect_positive", 1)
    result = torch.zeros_like(x, dtype=torch.bool)
    if detect_positive:
        result |= torch.isposinf(x)
    if detect_negative:
        result |= torch.isneginf(x)
    return result
