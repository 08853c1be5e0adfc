"""Activations: Relu, LeakyRelu, PRelu, Sigmoid, Tanh, Hard*, Gelu, Softplus, Elu, ..., Clip."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ir import Node
from .common import fail
from .layout import BROADCAST, SAME
from .registry import op


@op("Relu", layout=SAME)
def relu(node: Node, x: Tensor) -> Tensor:
    return torch.relu(x)


@op("LeakyRelu", layout=SAME)
def leaky_relu(node: Node, x: Tensor) -> Tensor:
    alpha = float(node.attr("alpha", 0.01))
    return torch.where(x >= 0, x, x * alpha)


@op("PRelu", layout=BROADCAST)
def prelu(node: Node, x: Tensor, slope: Tensor) -> Tensor:
    return torch.where(x >= 0, x, x * slope)


@op("Sigmoid", layout=SAME)
def sigmoid(node: Node, x: Tensor) -> Tensor:
    return torch.sigmoid(x)


@op("Tanh", layout=SAME)
def tanh(node: Node, x: Tensor) -> Tensor:
    return torch.tanh(x)


@op("HardSigmoid", layout=SAME)
def hard_sigmoid(node: Node, x: Tensor) -> Tensor:
    alpha = float(node.attr("alpha", 0.2))
    beta = float(node.attr("beta", 0.5))
    return torch.clamp(x * alpha + beta, 0, 1)


@op("HardSwish", layout=SAME)
def hard_swish(node: Node, x: Tensor) -> Tensor:
    return x * torch.clamp(x * (1 / 6) + 0.5, 0, 1)


@op("Gelu", layout=SAME)
def gelu(node: Node, x: Tensor) -> Tensor:
    approximate = node.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise fail(node, f"unknown approximate={approximate!r}")
    return F.gelu(x, approximate=approximate)


@op("Softplus", layout=SAME)
def softplus(node: Node, x: Tensor) -> Tensor:
    # log(1 + exp(x)) without overflow for large x
    return torch.where(x > 20, x, torch.log1p(torch.exp(torch.clamp(x, max=20))))


@op("Softsign", layout=SAME)
def softsign(node: Node, x: Tensor) -> Tensor:
    return x / (1 + torch.abs(x))


@op("Elu", layout=SAME)
def elu(node: Node, x: Tensor) -> Tensor:
    alpha = float(node.attr("alpha", 1.0))
    return torch.where(x > 0, x, alpha * torch.expm1(x))


@op("Selu", layout=SAME)
def selu(node: Node, x: Tensor) -> Tensor:
    alpha = float(node.attr("alpha", 1.67326319217681884765625))
    gamma = float(node.attr("gamma", 1.05070102214813232421875))
    return gamma * torch.where(x > 0, x, alpha * torch.expm1(x))


@op("Celu", layout=SAME)
def celu(node: Node, x: Tensor) -> Tensor:
    alpha = float(node.attr("alpha", 1.0))
    return torch.clamp(x, min=0) + torch.clamp(alpha * torch.expm1(x / alpha), max=0)


@op("ThresholdedRelu", layout=SAME)
def thresholded_relu(node: Node, x: Tensor) -> Tensor:
    alpha = float(node.attr("alpha", 1.0))
    return torch.where(x > alpha, x, torch.zeros_like(x))


@op("Mish", layout=SAME)
def mish(node: Node, x: Tensor) -> Tensor:
    return x * torch.tanh(softplus(node, x))


@op("Clip", layout=BROADCAST)
def clip(node: Node, x: Tensor, lo: Tensor | None = None, hi: Tensor | None = None) -> Tensor:
    # ONNX Clip applies min then max: with min > max every element becomes max.
    if lo is not None and lo.numel():
        x = torch.maximum(x, lo.reshape(()).to(x.dtype))
    if hi is not None and hi.numel():
        x = torch.minimum(x, hi.reshape(()).to(x.dtype))
    return x


@op("Shrink", layout=SAME)
def shrink(node: Node, x: Tensor) -> Tensor:
    lambd, bias = float(node.attr("lambd", 0.5)), float(node.attr("bias", 0.0))
    zero = torch.zeros_like(x)
    below = (x.double() < -lambd)
    above = (x.double() > lambd)
    return torch.where(below, (x.double() + bias).to(x.dtype),
                       torch.where(above, (x.double() - bias).to(x.dtype), zero))


@op("Swish", layout=SAME)
def swish(node: Node, x: Tensor) -> Tensor:
    return x * torch.sigmoid(float(node.attr("alpha", 1.0)) * x)
