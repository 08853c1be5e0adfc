"""Exact integer products at float32 speed: the ``int`` mode's product and the fast kernel's
"all exact" merged product (docs/numeric-model.md, "int mode").

The operands hold integers (quantised inputs and weights, as floats). A float32 matrix product
of integers is exact, whatever the order of its additions, as long as no partial sum can leave
[-2^24, 2^24], the integers float32 holds exactly. Every partial sum of
``sum_k x[k] * w[k, n]`` is bounded by ``max|x| * sum_k |w[k, n]|``, so the reduction (K) is
split into chunks whose bound stays within 2^24; each chunk is one float32 product (a matrix
product, or a convolution over a slice of the input channels) and the chunks are added in
float64, exact below 2^53. The result is the float64 product of the integers, bit for bit, as
``torch.matmul(x.double(), w.double())`` computes it, several times faster.

Where float32 arithmetic is not plain IEEE here (reduced-precision settings: TF32 on CUDA,
bf16 for oneDNN; or a product so large that one input channel alone could exceed 2^24) the
product is computed in float64 instead. Convolutions run as torch convolutions on CPU with
NNPACK (Winograd / FFT, not exact) switched off; elsewhere as im2col rows and a matrix product.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# float32 holds every integer of magnitude up to 2^24 exactly.
FLOAT32_EXACT = float(1 << 24)
# Chunk widths are multiples of this (reduction steps for matrix products, input channels for
# convolutions), so that each float32 product stays on the fast paths of the BLAS / oneDNN.
MATMUL_ALIGN = 64
CONV_ALIGN = 8


def matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(G, R, K) x (Gw, K, N) integer-valued -> (G, R, N) float64, exact."""
    chunks = _split(x, w, 1, MATMUL_ALIGN) if _float32_is_ieee(x.device, "matmul") else None
    if chunks is None:
        return torch.matmul(x.double(), w.double())
    x32, w32 = x.float(), w.float()
    if len(chunks) == 1:
        return torch.matmul(x32, w32).double()
    acc = None
    for k0, k1 in chunks:
        part = torch.matmul(x32[..., k0:k1], w32[..., k0:k1, :])
        acc = part.double() if acc is None else acc.add_(part)
    return acc


def conv2d(padded: torch.Tensor, w: torch.Tensor, geometry) -> torch.Tensor:
    """The integer product of a convolution, exactly as ``matmul(im2col rows, w)`` gives it.

    padded: (B, C, H, W) integer-valued input, already padded; w: (G, K, N) integer-valued
    weights with K = (C / G) * kh * kw in im2col order; geometry: the node's
    ``runtime.im2col.Conv2d`` (kernel, strides, dilations, and ``rows`` for the fallback).
    Returns (G, B * positions, N) float64: group g's rows are (sample, output position).
    """
    batch, channels = padded.shape[:2]
    groups, k, n = w.shape
    per_group = channels // groups
    out_hw = geometry.output_size(padded)
    positions = out_hw[0] * out_hw[1]
    chunks = None
    if padded.device.type == "cpu" and _float32_is_ieee(padded.device, "conv"):
        chunks = _split(padded, w, math.prod(geometry.kernel), CONV_ALIGN)
    if chunks is None:
        return matmul(geometry.rows(padded, groups, k, positions), w)
    x32 = padded.float()
    # (G, K, N) -> (G*N, C/G, kh, kw): torch's weight layout (K is channel, kh, kw).
    weight = w.float().permute(0, 2, 1).reshape(groups * n, per_group, *geometry.kernel)
    # Accumulated channels-last, so that (G, B * positions, N) is a view of it.
    acc = torch.empty(batch, *out_hw, groups * n, dtype=torch.float64, device=padded.device)
    with torch.backends.nnpack.flags(enabled=False):
        for i, (c0, c1) in enumerate(chunks):
            xs, ws = x32, weight
            if len(chunks) > 1:
                xs = x32.view(batch, groups, per_group, *x32.shape[2:])[:, :, c0:c1] \
                    .reshape(batch, groups * (c1 - c0), *x32.shape[2:])
                ws = weight[:, c0:c1]
            part = F.conv2d(xs, ws, stride=geometry.strides, dilation=geometry.dilations,
                            groups=groups).permute(0, 2, 3, 1)
            if i == 0:
                acc.copy_(part)
            else:
                acc.add_(part)
    return acc.view(batch * positions, groups, n).permute(1, 0, 2)


def _split(x: torch.Tensor, w: torch.Tensor, unit: int, align: int
           ) -> list[tuple[int, int]] | None:
    """Chunks [u0, u1) of the reduction of x (..., K) by w (Gw, K, N), counted in ``unit``
    steps (a convolution's input channel is kh * kw steps), ``align`` units long where
    possible, in each of which float32 is exact; None where none is."""
    peak = _peak(x)
    length = w.shape[1] // unit
    for block in (align, 1):
        chunks = _chunks(peak, _column_mass(w, block * unit), block, length)
        if chunks is not None:
            return chunks
    return None


def _peak(x: torch.Tensor) -> float:
    """max |x| (one pass, no temporary)."""
    if x.numel() == 0:
        return 0.0
    low, high = torch.aminmax(x)
    return max(-float(low), float(high))


def _column_mass(w: torch.Tensor, block: int) -> torch.Tensor:
    """(ceil(K / block), Gw * N) float64: per column, the sum of |w| over each ``block``
    reduction steps (the last block possibly shorter)."""
    gw, k, n = w.shape
    full = k // block * block
    parts = []
    if full:
        parts.append(torch.linalg.vector_norm(w[:, :full].reshape(gw, full // block, block, n),
                                              1, dim=2, dtype=torch.float64))
    if full < k:
        parts.append(torch.linalg.vector_norm(w[:, full:], 1, dim=1, keepdim=True,
                                              dtype=torch.float64))
    if not parts:
        return w.new_zeros(0, gw * n, dtype=torch.float64)
    return torch.cat(parts, dim=1).permute(1, 0, 2).reshape(-1, gw * n)


def _chunks(peak: float, mass: torch.Tensor, block: int, length: int
            ) -> list[tuple[int, int]] | None:
    """Equal chunks of [0, length), in whole blocks of ``block`` units (``mass`` holds each
    block's sum of |w| per column), in which ``peak * mass summed over the chunk <= 2^24`` for
    every column: then no partial sum leaves float32's exact integers. None: even one block
    could leave them."""
    blocks, columns = mass.shape
    if blocks == 0 or columns == 0:
        return [(0, length)]
    prefix = torch.cat([mass.new_zeros(1, columns), mass.cumsum(0)])
    total = peak * float(prefix[-1].max())
    if not math.isfinite(total):
        return None
    count = max(1, math.ceil(total / FLOAT32_EXACT))
    while count <= blocks:
        size = math.ceil(blocks / count)
        starts = torch.arange(0, blocks, size)
        ends = torch.clamp(starts + size, max=blocks)
        if peak * float((prefix[ends] - prefix[starts]).max()) <= FLOAT32_EXACT:
            return [(int(s) * block, min(length, int(e) * block))
                    for s, e in zip(starts, ends)]
        count = math.ceil(blocks / (size - 1)) if size > 1 else blocks + 1
    return None


def _float32_is_ieee(device: torch.device, op: str) -> bool:
    """Whether float32 products here are plain IEEE float32 (no TF32 or bf16 shortcuts)."""
    if device.type != "cpu":
        return False                     # CUDA: TF32 settings, cuDNN's Winograd: use float64
    if op == "matmul" and torch.get_float32_matmul_precision() != "highest":
        return False
    mkldnn = torch.backends.mkldnn
    settings = (getattr(torch.backends, "fp32_precision", "none"),
                getattr(mkldnn, "fp32_precision", "none"),
                getattr(getattr(mkldnn, op, None), "fp32_precision", "none"))
    return all(s in ("none", "ieee") for s in settings)
