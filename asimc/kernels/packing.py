"""The native kernel's packed weight bit planes, cached per weight tensor.

A layer's weights are packed once (bit planes as 64-bit masks per row tile, see
``native.pack_weights``) and reused by every later call while the weight tensor lives and is
unchanged (a run-time operand changes every call). The packed planes count against the
kernel's ``memory_budget``.
"""
from __future__ import annotations

import weakref

import torch

from . import native
from .problem import AcimProblem

# Packed weight bit planes per weight tensor: {id: (weak ref, version, key, packed)}.
_PACKED: dict[int, tuple] = {}


def packed_weights(w: torch.Tensor, tiles, bits: int, n0: int, n1: int) -> torch.Tensor:
    """The weight bit planes of columns [n0, n1), packed once per layer: cached while the
    weight tensor lives and is unchanged (a run-time operand changes every call)."""
    key = (tiles, bits, n0, n1, w.shape, w.data_ptr())
    version = _version(w)
    entry = _PACKED.get(id(w))
    if entry is not None and entry[0]() is w and entry[1] == version and key in entry[2]:
        return entry[2][key]
    packed = native.pack_weights(w.contiguous(), tiles, bits, n0, n1)
    if entry is None or entry[0]() is not w or entry[1] != version:
        ident = id(w)
        entry = (weakref.ref(w, lambda _, ident=ident: _PACKED.pop(ident, None)), version, {})
        _PACKED[ident] = entry
    entry[2][key] = packed
    return packed


def _version(w: torch.Tensor) -> int:
    """The tensor's in-place modification counter (inference tensors have none: -1)."""
    try:
        return w._version
    except RuntimeError:
        return -1


def packed_weight_bytes(problem: AcimProblem) -> int:
    """Bytes of the layer's packed weight bit planes."""
    w = problem.w
    return w.shape[0] * len(problem.tiles) * w.shape[2] * problem.plan.weight_bits \
        * native.words_per_tile(problem.tiles) * 8
