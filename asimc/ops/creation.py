"""Ops that make tensors: Constant, ConstantOfShape, Range, EyeLike, Trilu (a triangular mask)."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..ir import Node
from .common import fail, ints, scalar, torch_dtype
from .layout import ANY_AXIS, BATCH_FREE
from .registry import op

_CONSTANT_ATTRS = ("value", "value_float", "value_floats", "value_int", "value_ints",
                   "sparse_value", "value_string", "value_strings")


def constant_value(node: Node) -> np.ndarray:
    """The value of a Constant node as a numpy array (the importer folds these away)."""
    for name in _CONSTANT_ATTRS:
        if name in node.attrs:
            value = node.attrs[name]
            if name in ("value_string", "value_strings"):
                raise fail(node, "string constants are not supported")
            if name == "value_float":
                return np.array(value, dtype=np.float32)
            if name == "value_floats":
                return np.array(value, dtype=np.float32).reshape(-1)
            if name == "value_int":
                return np.array(value, dtype=np.int64)
            if name == "value_ints":
                return np.array(value, dtype=np.int64).reshape(-1)
            return np.asarray(value)
    raise fail(node, "has no value attribute")


@op("Constant", layout=BATCH_FREE)
def constant(node: Node) -> Tensor:
    return torch.from_numpy(np.array(constant_value(node)))


@op("ConstantOfShape", layout=BATCH_FREE)
def constant_of_shape(node: Node, shape: Tensor) -> Tensor:
    value = node.attr("value")
    fill = torch.zeros(1) if value is None else torch.from_numpy(np.array(value).reshape(-1))
    return torch.full(ints(shape), fill[0].item(), dtype=fill.dtype, device=shape.device)


@op("Range", layout=BATCH_FREE)
def range_(node: Node, start: Tensor, limit: Tensor, delta: Tensor) -> Tensor:
    s, l, d = scalar(start), scalar(limit), scalar(delta)
    if d == 0:
        raise fail(node, "delta must not be 0")
    count = max(math.ceil((l - s) / d), 0)
    # start + i * delta in the input's type, as the spec defines the elements
    steps = torch.arange(count, device=start.device, dtype=torch.float64 if start.dtype.is_floating_point else torch.int64)
    return (start.reshape(()).to(steps.dtype) + steps * delta.reshape(()).to(steps.dtype)).to(start.dtype)


@op("EyeLike", layout=BATCH_FREE)
def eye_like(node: Node, x: Tensor) -> Tensor:
    dtype = torch_dtype(node, node.attr("dtype")) if node.attr("dtype") is not None else x.dtype
    k = int(node.attr("k", 0))
    rows, cols = x.shape
    i = torch.arange(rows, device=x.device).reshape(-1, 1)
    j = torch.arange(cols, device=x.device).reshape(1, -1)
    return (j - i == k).to(dtype)


@op("Trilu", layout=ANY_AXIS)
def trilu(node: Node, x: Tensor, k: Tensor | None = None) -> Tensor:
    diagonal = int(scalar(k)) if k is not None and k.numel() else 0
    if x.numel() == 0:
        return x.clone()
    if node.attr("upper", 1):
        return torch.triu(x, diagonal)
    return torch.tril(x, diagonal)
