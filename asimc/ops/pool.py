"""Pooling: MaxPool (with Indices), AveragePool (count_include_pad, ceil_mode, dilations), LpPool
and the global pools.

The window geometry follows the ONNX spec; the input is padded explicitly (including the extra
end padding that ceil_mode needs) so that torch only ever sees valid, unpadded pooling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ir import Node
from .common import fail, spatial_attr
from .conv import explicit_pads, torch_pad_list
from .layout import spatial
from .registry import op

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class Geometry:
    """Kernel, strides, dilations, pads and output size of one pooling node on one input."""

    def __init__(self, node: Node, x: Tensor):
        self.n = n = x.dim() - 2
        if n not in _MAX_POOL:
            raise fail(node, f"{n}-D pooling is not supported (input shape {list(x.shape)})")
        kernel = node.attr("kernel_shape")
        if kernel is None or len(kernel) != n:
            raise fail(node, f"kernel_shape must have {n} values")
        self.kernel = [int(k) for k in kernel]
        self.strides = spatial_attr(node, "strides", n, 1)
        self.dilations = spatial_attr(node, "dilations", n, 1)
        self.sizes = sizes = list(x.shape[2:])
        self.begin, self.end = explicit_pads(node, sizes, self.kernel, self.strides,
                                             self.dilations)
        ceil_mode = bool(node.attr("ceil_mode", 0))
        self.out, self.extra = [], []
        for i in range(n):
            window = (self.kernel[i] - 1) * self.dilations[i] + 1
            span = sizes[i] + self.begin[i] + self.end[i] - window
            count = (-(-span // self.strides[i]) if ceil_mode else span // self.strides[i]) + 1
            if ceil_mode and (count - 1) * self.strides[i] >= sizes[i] + self.begin[i]:
                count -= 1          # the last window must start inside the input or left pad
            self.out.append(max(count, 0))
            needed = (count - 1) * self.strides[i] + window
            self.extra.append(max(0, needed - (sizes[i] + self.begin[i] + self.end[i])))

    def padded(self, x: Tensor, value: float) -> Tensor:
        end = [e + x_ for e, x_ in zip(self.end, self.extra)]
        return F.pad(x, torch_pad_list(self.begin, end), value=value)


@op("MaxPool", layout=spatial((0, 1)))
def max_pool(node: Node, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
    g = Geometry(node, x)
    dtype = x.dtype
    if not dtype.is_floating_point:          # torch pools floats only; ints are exact in double
        x = x.double()
    xp = g.padded(x, -math.inf)
    want_indices = len(node.outputs) > 1 and node.outputs[1]
    result = _MAX_POOL[g.n](xp, g.kernel, g.strides, 0, g.dilations, ceil_mode=False,
                            return_indices=bool(want_indices))
    if not want_indices:
        return result.to(dtype)
    y, idx = result
    return y.to(dtype), _onnx_indices(node, g, xp.shape[2:], idx, x.shape)


def _onnx_indices(node: Node, g: Geometry, padded_sizes, idx: Tensor, shape) -> Tensor:
    """torch's per-plane indices into the padded input -> ONNX flat indices into the input."""
    coords = []
    rest = idx
    for size in reversed(list(padded_sizes)):
        coords.append(rest % size)
        rest = rest // size
    coords = [c - b for c, b in zip(reversed(coords), g.begin)]
    sizes = g.sizes
    flat = torch.zeros_like(idx)
    if node.attr("storage_order", 0):        # column-major: the first spatial axis is fastest
        stride = 1
        for c, size in zip(coords, sizes):
            flat = flat + c * stride
            stride *= size
    else:
        for c, size in zip(coords, sizes):
            flat = flat * size + c
    plane = math.prod(sizes)
    batch, channels = shape[0], shape[1]
    offset = torch.arange(batch * channels, device=idx.device).reshape(
        batch, channels, *[1] * g.n) * plane
    return flat + offset


def _window_sum(x: Tensor, g: Geometry) -> Tensor:
    """Sum over each pooling window (x already padded), as a depthwise all-ones convolution."""
    batch, channels = x.shape[:2]
    planes = x.reshape(batch * channels, 1, *x.shape[2:])
    ones = torch.ones((1, 1, *g.kernel), dtype=x.dtype, device=x.device)
    out = _CONV[g.n](planes, ones, stride=g.strides, dilation=g.dilations)
    return out.reshape(batch, channels, *out.shape[2:])


def _compute_dtype(x: Tensor) -> torch.dtype:
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


@op("AveragePool", layout=spatial((0, 1)))
def average_pool(node: Node, x: Tensor) -> Tensor:
    g = Geometry(node, x)
    dtype = x.dtype
    x = x.to(_compute_dtype(x))
    total = _window_sum(g.padded(x, 0.0), g)
    # the divisor: how many positions of each window count (inside the input, plus the
    # explicit pads with count_include_pad; never the extra ceil_mode padding)
    mask = torch.ones((1, 1, *g.sizes), dtype=torch.float64, device=x.device)
    if node.attr("count_include_pad", 0):
        mask = F.pad(mask, torch_pad_list(g.begin, g.end), value=1.0)
        mask = F.pad(mask, torch_pad_list([0] * g.n, g.extra), value=0.0)
    else:
        mask = g.padded(mask, 0.0)
    count = _window_sum(mask, g).to(x.dtype)
    return (total / count).to(dtype)


@op("LpPool", layout=spatial((0, 1)))
def lp_pool(node: Node, x: Tensor) -> Tensor:
    g = Geometry(node, x)
    p = float(node.attr("p", 2))
    dtype = x.dtype
    x = x.to(_compute_dtype(x))
    total = _window_sum(g.padded(x.abs() ** p, 0.0), g)
    return (total ** (1.0 / p)).to(dtype)


@op("GlobalAveragePool", layout=spatial((0, 1)))
def global_average_pool(node: Node, x: Tensor) -> Tensor:
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


@op("GlobalMaxPool", layout=spatial((0, 1)))
def global_max_pool(node: Node, x: Tensor) -> Tensor:
    return x.amax(dim=tuple(range(2, x.dim())), keepdim=True)


@op("GlobalLpPool", layout=spatial((0, 1)))
def global_lp_pool(node: Node, x: Tensor) -> Tensor:
    p = float(node.attr("p", 2))
    return (x.abs() ** p).sum(dim=tuple(range(2, x.dim())), keepdim=True) ** (1.0 / p)
