"""Pad: constant, reflect, edge and wrap modes, negative pads (cropping), optional axes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ir import Node
from .common import axes_indices, fail, ints
from .layout import PAD
from .registry import op


def _source_index(mode: str, length: int, before: int, after: int, device) -> Tensor:
    """For each output position along one axis, the input position it copies (non-constant)."""
    pos = torch.arange(-before, length + after, device=device)
    if mode == "edge":
        return pos.clamp(0, length - 1)
    if mode == "wrap":
        return torch.remainder(pos, length)
    # reflect: mirror without repeating the edge element (pads longer than the axis keep
    # mirroring back and forth)
    if length == 1:
        return torch.zeros_like(pos)
    period = 2 * (length - 1)
    pos = torch.remainder(pos, period)
    return torch.where(pos >= length, period - pos, pos)


@op("Pad", layout=PAD)
def pad(node: Node, x: Tensor, pads: Tensor, value: Tensor | None = None,
        axes: Tensor | None = None) -> Tensor:
    mode = node.attr("mode", "constant")
    rank = x.dim()
    axes_ = axes_indices(node, ints(axes), rank) if axes is not None and axes.numel() \
        else list(range(rank))
    pads_ = ints(pads)
    if len(pads_) != 2 * len(axes_):
        raise fail(node, f"pads has {len(pads_)} values for {len(axes_)} axes")
    begin = dict(zip(axes_, pads_[:len(axes_)]))
    end = dict(zip(axes_, pads_[len(axes_):]))
    if mode == "constant":
        fill = 0 if value is None or value.numel() == 0 else value.reshape(()).item()
        flat = []
        for axis in reversed(range(rank)):       # F.pad lists the last axis first
            flat += [begin.get(axis, 0), end.get(axis, 0)]
        if x.dtype == torch.bool:
            return F.pad(x.to(torch.uint8), flat, value=int(fill)).to(torch.bool)
        return F.pad(x, flat, value=fill)
    if mode not in ("reflect", "edge", "wrap"):
        raise fail(node, f"unknown mode {mode!r}")
    for axis in axes_:
        before, after = begin[axis], end[axis]
        if before == after == 0:
            continue
        length = x.shape[axis]
        # negative pads crop first; then pad from the cropped tensor
        if before < 0 or after < 0:
            lo, hi = max(0, -before), length - max(0, -after)
            x = x.narrow(axis, lo, hi - lo)
            before, after, length = max(before, 0), max(after, 0), hi - lo
        if length == 0:
            raise fail(node, f"cannot {mode}-pad an empty axis {axis}")
        x = x.index_select(axis, _source_index(mode, length, before, after, x.device))
    return x
