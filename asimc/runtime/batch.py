"""Using batch layouts: which sample each element belongs to, and carrying layouts through a
graph node by node.

The layouts themselves and each op's rule live with the ops (``asimc.ops.layout``; every op
declares its rule where it is registered). This module applies them (``propagate``) and turns a
layout into per-sample views and sample indices for per-sample scales and noise keys.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ..ir import Node
from ..ops import registry
from ..ops.layout import LOST, BatchLayout, Layout, fits

__all__ = ["BatchLayout", "LOST", "Layout", "fits", "sample_view", "samples_of",
           "sample_of_rows", "propagate", "lost_reason"]


def sample_view(tensor: Tensor, layout: BatchLayout, batch: int) -> Tensor:
    """A view (outer, batch, S) of ``tensor``: ``view[:, s]`` are sample s's elements, in the
    order a run of sample s alone yields them. E.g. per-sample maxima: ``view.amax((0, 2))``."""
    stride = layout.flat_stride(tensor.shape)
    return tensor.reshape(-1, batch, stride)


def samples_of(layout: BatchLayout, shape: Sequence[int], batch: int,
               device=None) -> Tensor:
    """The sample index of every element, as an int64 tensor of ``shape``."""
    index = torch.arange(shape[layout.axis], device=device)
    sample = (index // layout.inner) % batch
    view = [1] * len(shape)
    view[layout.axis] = shape[layout.axis]
    return sample.reshape(view).expand(tuple(shape))


def sample_of_rows(layout: BatchLayout, shape: Sequence[int], batch: int,
                   device=None) -> Tensor | None:
    """For a matrix-product operand viewed as (rows, shape[-1]) - rows = all leading dims
    flattened - the sample of each row (int64, length rows); None when the batch axis is the
    last axis (then rows do not belong to one sample)."""
    if layout.axis >= len(shape) - 1:
        return None
    per_row = layout.flat_stride(shape) // shape[-1]       # rows per sample block
    rows = math.prod(shape[:-1])
    return (torch.arange(rows, device=device) // per_row) % batch


# ---------------------------------------------------------------- propagation


def propagate(node: Node, inputs: Sequence[Tensor | None], outputs: Sequence[Tensor],
              layouts: Sequence[Layout], batch: int | None) -> list[Layout]:
    """The layouts of ``node``'s outputs from its inputs' layouts and the concrete tensors."""
    layouts = list(layouts)
    rule = registry.layout_rule(node.op_type)
    if (rule is not None and rule.batch_free) or batch is None or \
            all(l is None for l in layouts):
        return [None] * len(outputs)
    if rule is None:
        return [LOST] * len(outputs)
    if not rule.all_inputs and layouts[0] is LOST:
        return [LOST] * len(outputs)
    try:
        result = list(rule.follow(node, list(inputs), list(outputs), layouts, batch))
    except Exception:  # noqa: BLE001 - a rule that cannot follow an odd case loses the layout
        return [LOST] * len(outputs)
    result += [LOST] * (len(outputs) - len(result))
    result = [r if r is None or r is LOST or fits(r, out.shape, batch) else LOST
              for r, out in zip(result, outputs)]
    if batch == 1:      # one sample: every element is sample 0, and (0, 1) says just that
        result = [BatchLayout(0, 1) if r is LOST and out.dim() else r
                  for r, out in zip(result, outputs)]
    return result


def lost_reason(node: Node) -> str:
    """Why ``node`` lost the batch layout of its inputs (for the warning)."""
    rule = registry.layout_rule(node.op_type)
    why = rule.loses if rule is not None else "asimc has no rule for it"
    return f"{node.describe()} loses the batch axis: {why}"
