"""Element-wise arithmetic and math: Add, Sub, Mul, Div, Pow, Mod, Sum/Mean/Max/Min, unary math.

ONNX broadcasting is numpy broadcasting, which torch implements as well. Integer division
truncates toward zero (as onnxruntime does); the result of Pow has the base's type.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import fail, is_float, unsigned_safe
from .layout import BROADCAST, SAME
from .registry import op


@op("Add", layout=BROADCAST)
@unsigned_safe("wrap")
def add(node: Node, a: Tensor, b: Tensor) -> Tensor:
    return a + b


@op("Sub", layout=BROADCAST)
@unsigned_safe("wrap")
def sub(node: Node, a: Tensor, b: Tensor) -> Tensor:
    return a - b


@op("Mul", layout=BROADCAST)
@unsigned_safe("wrap")
def mul(node: Node, a: Tensor, b: Tensor) -> Tensor:
    return a * b


@op("Div", layout=BROADCAST)
@unsigned_safe("div")
def div(node: Node, a: Tensor, b: Tensor) -> Tensor:
    if is_float(a):
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


@op("Pow", layout=BROADCAST)
def pow_(node: Node, base: Tensor, exponent: Tensor) -> Tensor:
    if is_float(base):
        return torch.pow(base, exponent.to(base.dtype))
    if not is_float(exponent) and bool((exponent >= 0).all()):
        return torch.pow(base, exponent.to(base.dtype))
    # An integer base with a float (or negative) exponent: compute in double, cast back.
    return torch.pow(base.double(), exponent.double()).to(base.dtype)


@op("Mod", layout=BROADCAST)
@unsigned_safe("div")
def mod(node: Node, a: Tensor, b: Tensor) -> Tensor:
    if node.attr("fmod", 0):
        return torch.fmod(a, b)       # the sign of the dividend, as C's fmod
    result = torch.remainder(a, b)    # the sign of the divisor, as Python's % and numpy's mod
    if is_float(a):
        # numpy's conventions at the edges: x mod +-inf is x when the signs agree (else the
        # divisor), and a zero result carries the divisor's sign
        at_inf = torch.isinf(b) & torch.isfinite(a)
        agree = (a == 0) | (torch.sign(a) == torch.sign(b))
        result = torch.where(at_inf, torch.where(agree, a, b).to(result.dtype), result)
        result = torch.where(result == 0, torch.copysign(torch.zeros_like(result), b), result)
    return result


def _variadic(node: Node, inputs: tuple[Tensor, ...], combine) -> Tensor:
    if not inputs:
        raise fail(node, "needs at least one input")
    result = inputs[0]
    for t in inputs[1:]:
        result = combine(result, t)
    if len(inputs) == 1:
        result = result.clone()
    return result


@op("Sum", layout=BROADCAST)
@unsigned_safe("wrap")
def sum_(node: Node, *inputs: Tensor) -> Tensor:
    return _variadic(node, inputs, torch.add)


@op("Mean", layout=BROADCAST)
def mean(node: Node, *inputs: Tensor) -> Tensor:
    return _variadic(node, inputs, torch.add) / len(inputs)


@op("Max", layout=BROADCAST)
@unsigned_safe("order")
def max_(node: Node, *inputs: Tensor) -> Tensor:
    return _variadic(node, inputs, torch.maximum)


@op("Min", layout=BROADCAST)
@unsigned_safe("order")
def min_(node: Node, *inputs: Tensor) -> Tensor:
    return _variadic(node, inputs, torch.minimum)


_UNARY = {
    "Neg": torch.neg, "Abs": torch.abs, "Reciprocal": torch.reciprocal, "Sqrt": torch.sqrt,
    "Exp": torch.exp, "Log": torch.log, "Floor": torch.floor, "Ceil": torch.ceil,
    "Round": torch.round,  # half to even, as ONNX specifies
    "Erf": torch.erf, "Sign": torch.sign, "Sin": torch.sin, "Cos": torch.cos, "Tan": torch.tan,
    "Asin": torch.asin, "Acos": torch.acos, "Atan": torch.atan, "Sinh": torch.sinh,
    "Cosh": torch.cosh, "Asinh": torch.asinh, "Acosh": torch.acosh, "Atanh": torch.atanh,
}


def _make_unary(fn):
    def unary(node: Node, x: Tensor) -> Tensor:
        if fn in (torch.floor, torch.ceil, torch.round) and not is_float(x):
            return x.clone()
        return fn(x)
    return unary


for _name, _fn in _UNARY.items():
    op(_name, layout=SAME)(_make_unary(_fn))
