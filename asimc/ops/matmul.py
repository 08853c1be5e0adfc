"""Matrix products: MatMul (batched, broadcast, 1-D operands), Gemm, Einsum."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import fail
from .layout import EINSUM, GEMM, MATMUL
from .registry import op


def _product(fn, *tensors: Tensor) -> Tensor:
    """Run a matrix product; integer products on CUDA (unsupported there) go through double."""
    if tensors[0].is_cuda and not tensors[0].dtype.is_floating_point:
        return fn(*(t.double() for t in tensors)).round().to(tensors[0].dtype)
    return fn(*tensors)


@op("MatMul", layout=MATMUL)
def matmul(node: Node, a: Tensor, b: Tensor) -> Tensor:
    return _product(torch.matmul, a, b)


@op("Gemm", layout=GEMM)
def gemm(node: Node, a: Tensor, b: Tensor, c: Tensor | None = None) -> Tensor:
    if a.dim() != 2 or b.dim() != 2:
        raise fail(node, f"A and B must be matrices, got shapes {list(a.shape)} and "
                         f"{list(b.shape)}")
    if node.attr("transA", 0):
        a = a.t()
    if node.attr("transB", 0):
        b = b.t()
    return gemm_epilogue(node, _product(torch.matmul, a, b), c)


def gemm_epilogue(node: Node, y: Tensor, c: Tensor | None) -> Tensor:
    """Gemm's alpha * (A B) + beta * C, given y = A B (also the on-chip Gemm's last step)."""
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if alpha != 1.0:
        y = y * alpha
    if c is not None and c.numel():
        y = y + (c * beta if beta != 1.0 else c)
    return y


@op("Einsum", layout=EINSUM)
def einsum(node: Node, *inputs: Tensor) -> Tensor:
    equation = node.attr("equation")
    if not equation:
        raise fail(node, "missing attribute 'equation'")
    return _product(lambda *t: torch.einsum(equation.replace(" ", ""), *t), *inputs)
