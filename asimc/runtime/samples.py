"""Which sample each element of a tensor belongs to, and each sample's random stream.

A batch layout (asimc.runtime.batch) says where the batch sits in a tensor: an element with flat
index f belongs to sample (f // S) % B, where S is the layout's flat stride. Per-sample scales
and per-sample noise keys are built on that.

Noise keys make a sample's draws independent of the rest of the batch: a sample's stream is
derived from the seed, the layer and the *content* of the sample's model inputs, and its draws
are indexed by the element's position within the sample. The same image gives the same
numbers alone, in a batch of 7 or of 256, in any chunk.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError
from ..kernels import rng
from .batch import BatchLayout, samples_of


def per_sample_peak(values: torch.Tensor, layout, batch: int, signed: bool, node_desc: str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(peak per sample (B,), sample id of every element): max|v| or max(v) per sample."""
    if batch == 1:
        ids = torch.zeros(values.shape, dtype=torch.int64, device=values.device)
    elif isinstance(layout, BatchLayout):
        ids = samples_of(layout, values.shape, batch, values.device)
    else:
        raise ModelError(
            f"{node_desc}: per-sample scales need to know which sample each element belongs "
            f"to, but the batch axis cannot be followed to this node's input. Use "
            f"`quant {{ input per_tensor }}` or static scales (`--input-scales DATA`).")
    source = values.abs() if signed else values
    peak = torch.full((batch,), -torch.inf, dtype=values.dtype, device=values.device)
    peak = peak.scatter_reduce(0, ids.flatten(), source.flatten(), reduce="amax")
    return peak, ids


@dataclass(frozen=True)
class SampleKeys:
    """One 64-bit key per sample, from the content of its model inputs; and one for the whole
    batch (used where the batch axis cannot be followed)."""

    per_sample: tuple[int, ...]
    whole_batch: int

    @property
    def batch(self) -> int:
        return len(self.per_sample)

    @staticmethod
    def from_inputs(arrays: list[np.ndarray], unbatched: list[np.ndarray] = ()) -> "SampleKeys":
        """``arrays``: the batched model inputs, batch first; ``unbatched``: the others."""
        if not arrays:                    # nothing is batched: the whole input is one sample
            whole = rng.combine(*[rng.bytes_key(np.ascontiguousarray(a).tobytes())
                                  for a in unbatched])
            return SampleKeys((whole,), whole)
        batch = len(arrays[0])
        keys = []
        for b in range(batch):
            parts = [rng.bytes_key(str(a.dtype).encode() + str(a.shape[1:]).encode()
                                   + np.ascontiguousarray(a[b]).tobytes()) for a in arrays]
            keys.append(rng.combine(*parts))
        whole = rng.combine(*[rng.bytes_key(np.ascontiguousarray(a).tobytes()) for a in arrays])
        return SampleKeys(tuple(keys), whole)


def row_noise_keys(out_shape: tuple[int, ...], layout, first_column_flat: torch.Tensor,
                   col_stride: int, columns: int, keys: SampleKeys, seed: int, layer_key: int):
    """Stream key and within-sample element index for rows whose column 0 sits at flat index
    ``first_column_flat`` of an output of shape ``out_shape`` (columns step by ``col_stride``).

    Returns (stream, offset, elements_per_sample).
    """
    from ..kernels.problem import CONVERSION_SALT
    device = first_column_flat.device
    batch = keys.batch
    numel = math.prod(out_shape)
    if batch > 1 and isinstance(layout, BatchLayout):
        stride = layout.flat_stride(out_shape)
        last = first_column_flat + (columns - 1) * col_stride
        samples = (first_column_flat // stride) % batch
        if torch.equal(samples, (last // stride) % batch):
            offset = (first_column_flat // (stride * batch)) * stride \
                + first_column_flat % stride
            streams = torch.tensor([rng.combine(seed, layer_key, CONVERSION_SALT, k)
                                    for k in keys.per_sample], dtype=torch.int64, device=device)
            return streams[samples], offset, numel // batch
    if batch == 1 or layout is None:      # one sample, or values that no sample owns
        key = keys.per_sample[0] if batch == 1 else 0
    else:                                 # the batch axis was lost: key on the whole batch
        key = keys.whole_batch
    stream = torch.full_like(first_column_flat, rng.combine(seed, layer_key, CONVERSION_SALT, key))
    return stream, first_column_flat, numel
