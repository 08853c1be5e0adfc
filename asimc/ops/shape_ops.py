"""Ops that move data around without computing on it: Reshape, Flatten, Transpose, Squeeze,
Unsqueeze, Concat, Split, Slice, Expand, Tile, Shape, Size, Identity, Dropout (inference)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ir import Node
from .common import axes_indices, axis_index, fail, ints
from .layout import (ANY_AXIS, BATCH_FREE, CONCAT, EXPAND, FLATTEN, RESHAPE, SAME, SLICE, SPLIT,
                     TRANSPOSE, spatial)
from .registry import op


@op("Reshape", layout=RESHAPE)
def reshape(node: Node, x: Tensor, shape: Tensor) -> Tensor:
    target = ints(shape)
    allowzero = node.attr("allowzero", 0)
    if not allowzero:          # 0 copies the input's dimension at that position
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    if target.count(-1) > 1:
        raise fail(node, f"shape {ints(shape)} has more than one -1")
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        if known == 0 or x.numel() % known:
            raise fail(node, f"cannot reshape a tensor of shape {list(x.shape)} to {ints(shape)}")
        target[target.index(-1)] = x.numel() // known
    if math.prod(target) != x.numel():
        raise fail(node, f"cannot reshape a tensor of shape {list(x.shape)} to {ints(shape)}")
    return x.reshape(target)


@op("Flatten", layout=FLATTEN)
def flatten(node: Node, x: Tensor) -> Tensor:
    axis = node.attr("axis", 1)
    axis = axis + x.dim() if axis < 0 else axis
    if not 0 <= axis <= x.dim():
        raise fail(node, f"axis {node.attr('axis')} out of range for rank {x.dim()}")
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@op("Transpose", layout=TRANSPOSE)
def transpose(node: Node, x: Tensor) -> Tensor:
    perm = node.attr("perm")
    perm = list(range(x.dim()))[::-1] if perm is None else [int(p) for p in perm]
    return x.permute(*perm)


@op("Squeeze", layout=RESHAPE)
def squeeze(node: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
    if axes is None or axes.numel() == 0:
        return x.reshape([d for d in x.shape if d != 1])
    dims = axes_indices(node, ints(axes), x.dim())
    for d in dims:
        if x.shape[d] != 1:
            raise fail(node, f"cannot squeeze axis {d} of size {x.shape[d]}")
    return x.reshape([s for i, s in enumerate(x.shape) if i not in dims])


@op("Unsqueeze", layout=RESHAPE)
def unsqueeze(node: Node, x: Tensor, axes: Tensor) -> Tensor:
    rank = x.dim() + len(ints(axes))
    dims = sorted(axes_indices(node, ints(axes), rank))
    shape = list(x.shape)
    for d in dims:
        shape.insert(d, 1)
    return x.reshape(shape)


@op("Concat", layout=CONCAT)
def concat(node: Node, *inputs: Tensor) -> Tensor:
    axis = axis_index(node, node.attr("axis", 0), inputs[0].dim())
    return torch.cat(list(inputs), dim=axis)


@op("Split", layout=SPLIT)
def split(node: Node, x: Tensor, sizes: Tensor | None = None) -> tuple[Tensor, ...]:
    axis = axis_index(node, node.attr("axis", 0), x.dim())
    length = x.shape[axis]
    if sizes is not None and sizes.numel():
        parts = ints(sizes)
        if sum(parts) != length:
            raise fail(node, f"split sizes {parts} do not add up to {length}")
    else:
        n = int(node.attr("num_outputs", len(node.outputs)))
        chunk = -(-length // n)           # the last part may be smaller (opset 18)
        parts = [min(chunk, length - i * chunk) for i in range(n)]
    return tuple(torch.split(x, parts, dim=axis))


def slice_axis(x: Tensor, axis: int, start: int, end: int, step: int) -> Tensor:
    """``x[start:end:step]`` along one axis, with Python's clamping (what ONNX Slice does)."""
    first, last, stride = slice(start, end, step).indices(x.shape[axis])
    if stride > 0:
        return x[(slice(None),) * axis + (slice(first, last, stride),)]
    # torch has no negative-step slicing: gather the indices instead
    index = torch.arange(first, last, stride, device=x.device)
    return x.index_select(axis, index)


@op("Slice", layout=SLICE)
def slice_(node: Node, x: Tensor, starts: Tensor, ends: Tensor, axes: Tensor | None = None,
           steps: Tensor | None = None) -> Tensor:
    starts_, ends_ = ints(starts), ints(ends)
    axes_ = ints(axes) if axes is not None and axes.numel() else list(range(len(starts_)))
    steps_ = ints(steps) if steps is not None and steps.numel() else [1] * len(starts_)
    if not len(starts_) == len(ends_) == len(axes_) == len(steps_):
        raise fail(node, "starts, ends, axes and steps must have the same length")
    for start, end, axis, step in zip(starts_, ends_, axes_indices(node, axes_, x.dim()), steps_):
        if step == 0:
            raise fail(node, "a step of 0 is not allowed")
        x = slice_axis(x, axis, start, end, step)
    return x


@op("Expand", layout=EXPAND)
def expand(node: Node, x: Tensor, shape: Tensor) -> Tensor:
    target = torch.broadcast_shapes(tuple(x.shape), tuple(ints(shape)))
    return x.expand(target)


@op("Tile", layout=ANY_AXIS)
def tile(node: Node, x: Tensor, repeats: Tensor) -> Tensor:
    reps = ints(repeats)
    if len(reps) != x.dim():
        raise fail(node, f"repeats has {len(reps)} values for an input of rank {x.dim()}")
    return x.repeat(*reps) if reps else x.clone()


@op("Shape", layout=BATCH_FREE)
def shape(node: Node, x: Tensor) -> Tensor:
    dims = list(x.shape)
    start, end = node.attr("start", 0), node.attr("end")
    return torch.tensor(dims[slice(start, end)], dtype=torch.int64, device=x.device)


@op("Size", layout=BATCH_FREE)
def size(node: Node, x: Tensor) -> Tensor:
    return torch.tensor(x.numel(), dtype=torch.int64, device=x.device)


@op("Identity", layout=SAME)
def identity(node: Node, x: Tensor) -> Tensor:
    return x


@op("Dropout", layout=SAME)
def dropout(node: Node, x: Tensor, ratio: Tensor | None = None,
            training_mode: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Inference: the identity, and an all-true mask (asimc never trains)."""
    if training_mode is not None and bool(training_mode.reshape(-1)[0]):
        rate = 0.5 if ratio is None else float(ratio.reshape(-1)[0])
        if rate > 0:
            raise fail(node, "training_mode=true is not supported (asimc runs inference)")
    return x, torch.ones_like(x, dtype=torch.bool)


@op("DepthToSpace", layout=spatial((0,)))
def depth_to_space(node: Node, x: Tensor) -> Tensor:
    b = int(node.attr("blocksize"))
    n, c, h, w = x.shape
    if c % (b * b):
        raise fail(node, f"{c} channels are not divisible by blocksize^2 = {b * b}")
    if node.attr("mode", "DCR") == "CRD":
        y = x.reshape(n, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


@op("SpaceToDepth", layout=spatial((0,)))
def space_to_depth(node: Node, x: Tensor) -> Tensor:
    b = int(node.attr("blocksize"))
    n, c, h, w = x.shape
    if h % b or w % b:
        raise fail(node, f"spatial size {h}x{w} is not divisible by blocksize {b}")
    y = x.reshape(n, c, h // b, b, w // b, b)
    if node.attr("mode", "DCR") == "CRD":      # channel-major: c * b*b + row * b + col
        y = y.permute(0, 1, 3, 5, 2, 4)
    else:
        y = y.permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)
