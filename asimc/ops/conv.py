"""Convolutions: Conv (grouped, depthwise, strided, dilated, explicit/auto padding) and
ConvTranspose, on 1-D, 2-D and 3-D inputs."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..ir import Node
from .common import fail, spatial_attr
from .layout import spatial
from .registry import op

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def same_pads(auto_pad: str, size: int, out: int, stride: int, window: int) -> tuple[int, int]:
    """(begin, end) padding for auto_pad SAME_UPPER / SAME_LOWER (the extra pixel goes last /
    first)."""
    total = max(0, (out - 1) * stride + window - size)
    small = total // 2
    return (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)


def explicit_pads(node: Node, sizes: list[int], kernel: list[int], strides: list[int],
                  dilations: list[int]) -> tuple[list[int], list[int]]:
    """(begin pads, end pads) per spatial axis from ``pads`` or ``auto_pad``."""
    n = len(sizes)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [same_pads(auto_pad, sizes[i], -(-sizes[i] // strides[i]), strides[i],
                           (kernel[i] - 1) * dilations[i] + 1) for i in range(n)]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    if auto_pad == "VALID":
        return [0] * n, [0] * n
    if auto_pad not in ("NOTSET", ""):
        raise fail(node, f"unknown auto_pad {auto_pad!r}")
    pads = node.attr("pads")
    if pads is None or len(pads) == 0:
        return [0] * n, [0] * n
    pads = [int(p) for p in pads]
    if len(pads) != 2 * n:
        raise fail(node, f"pads has {len(pads)} values for {n} spatial axes")
    return pads[:n], pads[n:]


def torch_pad_list(begin: list[int], end: list[int]) -> list[int]:
    """F.pad's argument: (begin, end) pairs from the last axis to the first."""
    flat: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        flat += [b, e]
    return flat


def _check_rank(node: Node, x: Tensor, w: Tensor) -> int:
    n = x.dim() - 2
    if n not in _CONV:
        raise fail(node, f"{n}-D convolutions are not supported (input shape {list(x.shape)})")
    if w.dim() != x.dim():
        raise fail(node, f"weight of rank {w.dim()} does not fit input of rank {x.dim()}")
    return n


@op("Conv", layout=spatial((0,)))
def conv(node: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    n = _check_rank(node, x, w)
    kernel = list(w.shape[2:])
    strides = spatial_attr(node, "strides", n, 1)
    dilations = spatial_attr(node, "dilations", n, 1)
    begin, end = explicit_pads(node, list(x.shape[2:]), kernel, strides, dilations)
    group = int(node.attr("group", 1))
    if begin == end:
        padding = begin
    else:                       # asymmetric padding: pad explicitly, then a valid conv
        x = F.pad(x, torch_pad_list(begin, end))
        padding = [0] * n
    return _CONV[n](x, w, b, stride=strides, padding=padding, dilation=dilations, groups=group)


@op("ConvTranspose", layout=spatial((0,)))
def conv_transpose(node: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    n = _check_rank(node, x, w)
    sizes, kernel = list(x.shape[2:]), list(w.shape[2:])
    strides = spatial_attr(node, "strides", n, 1)
    dilations = spatial_attr(node, "dilations", n, 1)
    out_pad = spatial_attr(node, "output_padding", n, 0)
    group = int(node.attr("group", 1))
    # the full (unpadded) result, then a window of it: begin pads cut from the front, and the
    # output size decides the end (output_padding may reach past the full result: zeros)
    full = [strides[i] * (sizes[i] - 1) + (kernel[i] - 1) * dilations[i] + 1 for i in range(n)]
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    if output_shape is not None and len(output_shape):
        out = [int(v) for v in output_shape][-n:]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [sizes[i] * strides[i] for i in range(n)]
    else:
        out = None
    if out is not None:
        begin = []
        for i in range(n):
            total = full[i] + out_pad[i] - out[i]
            begin.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    else:
        begin, end = explicit_pads(node, sizes, kernel, strides, dilations)
        out = [full[i] + out_pad[i] - begin[i] - end[i] for i in range(n)]
    y = _CONV_T[n](x, w, None, stride=strides, dilation=dilations, groups=group)
    y = F.pad(y, torch_pad_list([-p for p in begin],
                                [out[i] + begin[i] - full[i] for i in range(n)]))
    if b is not None:
        y = y + b.reshape([1, -1] + [1] * n)
    return y
