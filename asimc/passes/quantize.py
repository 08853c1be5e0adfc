"""Compile-time quantisation of static weights (docs/numeric-model.md, "Quantisers").

Per tensor (ASiM's default): one scale ``max|W| + 1e-7`` for the whole weight. Per channel: one
scale per output channel. The integer weights are computed with the very quantiser the executor
uses (asimc.kernels.quantize), in float32.
"""
from __future__ import annotations

import numpy as np
import torch

from ..kernels.quantize import EPSILON, quantize_weight


def quantize_static_weight(weight: np.ndarray, bits: int, per_channel: bool
                           ) -> tuple[np.ndarray, tuple[float, ...]]:
    """(groups, K, N) float weights -> (groups, K, N) integers and their scale(s).

    Per-channel scales come out in output-channel order: group-major, column-minor.
    """
    w = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
    if per_channel:
        scale = w.abs().amax(dim=1, keepdim=True) + EPSILON          # (groups, 1, N)
    else:
        scale = w.abs().amax() + EPSILON
    q = quantize_weight(w, scale, bits)
    dtype = np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32
    return q.numpy().astype(dtype), tuple(float(s) for s in scale.flatten().tolist())
