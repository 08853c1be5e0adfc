"""Reductions: Reduce{Sum,Mean,Max,Min,Prod,L1,L2,LogSum,LogSumExp,SumSquare}, ArgMax/ArgMin,
CumSum. Axes come as the second input (opset >= 18 form; the importer converts older forms)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ir import Node
from .common import axes_indices, axis_index, ints, scalar
from .layout import ARG_REDUCE, CUMULATIVE, REDUCE
from .registry import op


def _reduced_axes(node: Node, x: Tensor, axes: Tensor | None) -> list[int] | None:
    """The axes to reduce, or None for "no reduction" (noop_with_empty_axes)."""
    listed = ints(axes) if axes is not None else []
    if not listed:
        return None if node.attr("noop_with_empty_axes", 0) else list(range(x.dim()))
    return sorted(set(axes_indices(node, listed, x.dim())))


def _empty_value(kind: str, dtype: torch.dtype) -> float:
    """What a reduction over zero elements gives."""
    if dtype == torch.bool:
        return kind == "min"          # max over nothing is False, min True
    if kind == "max":
        return -math.inf if dtype.is_floating_point else torch.iinfo(dtype).min
    if kind == "min":
        return math.inf if dtype.is_floating_point else torch.iinfo(dtype).max
    return {"prod": 1, "mean": math.nan, "log_sum": -math.inf, "log_sum_exp": -math.inf}.get(kind, 0)


_REDUCERS = {
    "ReduceSum": ("sum", lambda x, d, k: x.sum(dim=d, keepdim=k, dtype=x.dtype)),
    "ReduceMean": ("mean", lambda x, d, k: x.mean(dim=d, keepdim=k)),
    "ReduceMax": ("max", lambda x, d, k: x.amax(dim=d, keepdim=k)),
    "ReduceMin": ("min", lambda x, d, k: x.amin(dim=d, keepdim=k)),
    "ReduceProd": ("prod", lambda x, d, k: _prod(x, d, k)),
    "ReduceL1": ("l1", lambda x, d, k: x.abs().sum(dim=d, keepdim=k, dtype=x.dtype)),
    "ReduceL2": ("l2", lambda x, d, k: _l2(x, d, k)),
    "ReduceLogSum": ("log_sum", lambda x, d, k: torch.log(x.sum(dim=d, keepdim=k))),
    "ReduceLogSumExp": ("log_sum_exp", lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k)),
    "ReduceSumSquare": ("sum_square", lambda x, d, k: (x * x).sum(dim=d, keepdim=k, dtype=x.dtype)),
}


def _prod(x: Tensor, dims, keepdim: bool) -> Tensor:
    for d in sorted(dims, reverse=True):
        x = x.prod(dim=d, keepdim=keepdim, dtype=x.dtype)
    return x


def _l2(x: Tensor, dims, keepdim: bool) -> Tensor:
    if x.dtype.is_floating_point:
        return torch.sqrt((x * x).sum(dim=dims, keepdim=keepdim))
    return torch.sqrt((x * x).sum(dim=dims, keepdim=keepdim).double()).to(x.dtype)


def _make_reduce(kind: str, reduce):
    def reduce_op(node: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
        dims = _reduced_axes(node, x, axes)
        if dims is None:
            return x
        keepdims = bool(node.attr("keepdims", 1))
        if x.dim() == 0:
            return reduce(x, (), keepdims) if kind not in ("max", "min") else x
        if any(x.shape[d] == 0 for d in dims):
            shape = [1 if i in dims else s for i, s in enumerate(x.shape) if keepdims or i not in dims]
            return torch.full(shape, _empty_value(kind, x.dtype), dtype=x.dtype, device=x.device)
        if x.dtype == torch.bool:                 # Reduce{Max,Min} on bool (opset 20)
            return reduce(x.to(torch.uint8), tuple(dims), keepdims).to(torch.bool)
        return reduce(x, tuple(dims), keepdims)
    return reduce_op


for _name, (_kind, _fn) in _REDUCERS.items():
    op(_name, layout=REDUCE)(_make_reduce(_kind, _fn))


def _arg(node: Node, x: Tensor, fn) -> Tensor:
    axis = axis_index(node, node.attr("axis", 0), x.dim())
    keepdims = bool(node.attr("keepdims", 1))
    if node.attr("select_last_index", 0):
        flipped = fn(x.flip(axis), dim=axis, keepdim=keepdims)
        return x.shape[axis] - 1 - flipped
    return fn(x, dim=axis, keepdim=keepdims)


@op("ArgMax", layout=ARG_REDUCE)
def arg_max(node: Node, x: Tensor) -> Tensor:
    return _arg(node, x, torch.argmax)


@op("ArgMin", layout=ARG_REDUCE)
def arg_min(node: Node, x: Tensor) -> Tensor:
    return _arg(node, x, torch.argmin)


def _cumulative(node: Node, x: Tensor, axis: Tensor, fn, identity: int) -> Tensor:
    dim = axis_index(node, int(scalar(axis)), x.dim())
    reverse, exclusive = node.attr("reverse", 0), node.attr("exclusive", 0)
    if reverse:
        x = x.flip(dim)
    if exclusive and x.shape[dim]:   # shift by one, starting from the identity (exact)
        x = torch.cat([torch.full_like(x.narrow(dim, 0, 1), identity),
                       x.narrow(dim, 0, x.shape[dim] - 1)], dim=dim)
    y = fn(x, dim=dim, dtype=x.dtype)
    return y.flip(dim) if reverse else y


@op("CumSum", layout=CUMULATIVE)
def cum_sum(node: Node, x: Tensor, axis: Tensor) -> Tensor:
    return _cumulative(node, x, axis, torch.cumsum, 0)


@op("CumProd", layout=CUMULATIVE)
def cum_prod(node: Node, x: Tensor, axis: Tensor) -> Tensor:
    return _cumulative(node, x, axis, torch.cumprod, 1)
