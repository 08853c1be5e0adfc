"""Cast and CastLike (numeric and bool types; strings and float8/int4 are not supported)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import torch_dtype
from .layout import SAME
from .registry import op


def cast_to(x: Tensor, dtype: torch.dtype) -> Tensor:
    if x.dtype.is_floating_point and not dtype.is_floating_point and dtype != torch.bool:
        x = torch.trunc(x)          # float -> int truncates toward zero (as C and numpy do)
    return x.to(dtype)


@op("Cast", layout=SAME)
def cast(node: Node, x: Tensor) -> Tensor:
    return cast_to(x, torch_dtype(node, node.attr("to")))


@op("CastLike", layout=SAME)
def cast_like(node: Node, x: Tensor, like: Tensor) -> Tensor:
    return cast_to(x, like.dtype)
