"""Bitwise ops on integers: BitwiseAnd/Or/Xor/Not, BitShift. Unsigned types are viewed as the
signed type of the same width (the bits are what matter), which torch computes on."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import fail
from .layout import BROADCAST, SAME
from .registry import op

_SAME_WIDTH = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}


def _signed_view(t: Tensor) -> Tensor:
    return t.view(_SAME_WIDTH[t.dtype]) if t.dtype in _SAME_WIDTH else t


def _binary(fn):
    def bitwise(node: Node, a: Tensor, b: Tensor) -> Tensor:
        return fn(_signed_view(a), _signed_view(b)).view(a.dtype)
    return bitwise


for _name, _fn in {"BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or,
                   "BitwiseXor": torch.bitwise_xor}.items():
    op(_name, layout=BROADCAST)(_binary(_fn))


@op("BitwiseNot", layout=SAME)
def bitwise_not(node: Node, x: Tensor) -> Tensor:
    return torch.bitwise_not(_signed_view(x)).view(x.dtype)


@op("BitShift", layout=BROADCAST)
def bit_shift(node: Node, x: Tensor, amount: Tensor) -> Tensor:
    direction = node.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise fail(node, f"direction must be LEFT or RIGHT, got {direction!r}")
    if x.dtype == torch.uint64:       # same bits in int64; a right shift must not sign-extend
        v, by = x.view(torch.int64), amount.to(torch.int64).clamp(0, 63)
        if direction == "LEFT":
            return (v << by).view(torch.uint64)
        mask = torch.where(by == 0, -1, (1 << (64 - by).clamp(max=63)) - 1)
        return ((v >> by) & mask).view(torch.uint64)
    # unsigned values up to 32 bits fit int64 exactly: a logical shift there, masked back
    wide, by = x.to(torch.int64), amount.to(torch.int64)
    out = wide << by if direction == "LEFT" else wide >> by
    bits = torch.iinfo(x.dtype).bits
    return (out & ((1 << bits) - 1)).to(x.dtype)
