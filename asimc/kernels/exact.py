"""Exact integer products at float32 speed: the ``int`` mode's product and the fast kernel's
"all exact" merged product (docs/numeric-model.md, section 5, "The integer product").

The operands hold integers (quantised inputs and weights, as floats). A float32 matrix product
of integers is exact, whatever the order of its additions, as long as no partial sum can leave
(-2^24, 2^24), where float32 holds every integer. Every partial sum of
``sum_k x[r, k] * w[k, n]`` is at most ``max|x| * sum_k |w[k, n]|``, and at most
``max|w| * sum_k |x[r, k]|`` (for a convolution, the sum of |x| under one output's window);
the reduction (K) is split into the fewest equal chunks in which one of the two bounds stays
below 2^24 (quantised activations are mostly small: one chunk is usual). Each chunk is one
float32 product (a matrix product, or a convolution over a slice of the input channels) and
the chunks are added in float64, exact below 2^53. The result is, bit for bit, the float64
product ``torch.matmul(x.double(), w.double())`` that int mode computed before, several times
faster.

Where float32 products may not be plain IEEE (TF32 on CUDA, a reduced float32 matmul precision
or oneDNN bf16 setting) or even one block could exceed 2^24 (16-bit operands), the product is
one float64 matrix product. Convolutions run as torch convolutions on CPU with NNPACK switched
off (its Winograd / FFT convolutions round); elsewhere as im2col rows and a matrix product.
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
    x32, w32 = x.float(), w.float()
    chunks = None
    if _float32_is_ieee(x.device, "matmul"):
        chunks = _split(lambda block: _cheapest_first(
            (w32, lambda: (_peak(x32), _columns(_block_sums(w32.abs(), 1, block), 1))),
            (x32, lambda: (_peak(w32), _columns(_block_sums(x32.abs(), 2, block), 2)))),
            w.shape[1], MATMUL_ALIGN)
    if chunks is None:
        return torch.matmul(x.double(), w.double())
    if len(chunks) == 1:
        return torch.matmul(x32, w32).double()
    acc = None
    for k0, k1 in chunks:
        part = torch.matmul(x32[..., k0:k1], w32[..., k0:k1, :])
        acc = part.double() if acc is None else acc.add_(part)
    return acc


def conv2d(padded: torch.Tensor, w: torch.Tensor, geometry) -> torch.Tensor:
    """The integer product of a convolution, exactly: (B, G*N, oh, ow) float64, the values of
    ``matmul(im2col rows, w)`` in torch's convolution layout.

    padded: (B, C, H, W) integer-valued input, already padded; w: (G, K, N) integer-valued
    weights with K = (C / G) * kh * kw in im2col order; geometry: the node's
    ``runtime.im2col.Conv2d`` (kernel, strides, dilations, and ``rows`` for the fallback).
    """
    batch, channels, height, width = padded.shape
    groups, k, n = w.shape
    per_group = channels // groups
    out_hw = geometry.output_size(padded)
    positions = out_hw[0] * out_hw[1]

    def fallback() -> torch.Tensor:                  # im2col and a float64 matrix product
        rows = matmul(geometry.rows(padded, groups, k, positions), w)      # (G, B*P, N)
        return rows.view(groups, batch, positions, n).permute(1, 0, 3, 2) \
            .reshape(batch, groups * n, *out_hw)

    if padded.device.type != "cpu" or not _float32_is_ieee(padded.device, "conv"):
        return fallback()
    x32, w32 = padded.float(), w.float()
    unit = math.prod(geometry.kernel)            # K steps per input channel

    def window_sums(block: int) -> torch.Tensor:
        """Per channel block, the sum of |x| under each output position's window."""
        sums = _block_sums(x32.abs().view(batch, groups, per_group, height, width), 2, block)
        blocks = sums.shape[2]
        ones = sums.new_ones(groups * blocks, 1, *geometry.kernel)
        windows = F.conv2d(sums.view(batch, groups * blocks, height, width), ones,
                           stride=geometry.strides, dilation=geometry.dilations,
                           groups=groups * blocks)
        return _columns(windows.view(batch, groups, blocks, positions), 2)

    with torch.backends.nnpack.flags(enabled=False):
        chunks = _split(lambda block: _cheapest_first(
            (w32, lambda: (_peak(x32), _columns(_block_sums(w32.abs(), 1, block * unit), 1))),
            (x32, lambda: (_peak(w32), window_sums(block)))), per_group, CONV_ALIGN)
        if chunks is None:
            return fallback()
        weight = _conv_weight(w32, geometry.kernel)
        acc = None
        for c0, c1 in chunks:
            xs, ws = x32, weight
            if len(chunks) > 1:
                xs = x32.view(batch, groups, per_group, height, width)[:, :, c0:c1] \
                    .reshape(batch, groups * (c1 - c0), height, width)
                ws = weight[:, c0:c1]
            part = F.conv2d(xs, ws, stride=geometry.strides, dilation=geometry.dilations,
                            groups=groups)
            acc = part.double() if acc is None else acc.add_(part)
    return acc


def _conv_weight(w: torch.Tensor, kernel) -> torch.Tensor:
    """(G, K, N) -> (G*N, C/G, kh, kw), torch's weight layout (K is channel, kh, kw). The 2-D
    transposing clone is many times faster than ``.contiguous()`` on large power-of-two
    shapes (measured: 1.4 ms against 13 ms for 4608 x 512)."""
    groups, k, n = w.shape
    if groups == 1:
        flat = w[0].t().clone(memory_format=torch.contiguous_format)
    else:
        flat = w.transpose(1, 2).contiguous()
    return flat.view(groups * n, k // math.prod(kernel), *kernel)


def _split(sides_of, length: int, align: int) -> list[tuple[int, int]] | None:
    """Chunks [u0, u1) of a reduction of ``length`` units, ``align`` units long where possible
    (else single units), in each of which float32 is exact; None where even one unit is not.
    ``sides_of(block)`` gives the two bounds, each a function computing its (scale, block
    masses) (see ``_chunks``): the second is computed only if the first needs several chunks."""
    for block in (align, 1):
        sides, chunks = [], None
        for side in sides_of(block):
            sides.append(side())
            chunks = _chunks(sides, block, length)
            if chunks is not None and len(chunks) == 1:
                return chunks
        if chunks is not None:
            return chunks
    return None


def _cheapest_first(*sides):
    """(operand, bound) pairs -> the bounds, that over the smaller operand first (computing a
    bound costs a pass over the operand whose |values| it sums)."""
    return [bound for _, bound in sorted(sides, key=lambda side: side[0].numel())]


def _chunks(sides, block: int, length: int) -> list[tuple[int, int]] | None:
    """Equal chunks of [0, length), in whole blocks of ``block`` units, in each of which every
    partial sum of the product stays below 2^24.

    sides: (scale, mass) pairs, each a bound: ``mass`` (blocks, columns) holds, per block of the
    reduction, sums of one operand's |values| (per weight column, or per input row / window)
    and ``scale`` is the other operand's max |value|; a chunk's partial sums are at most
    ``scale`` x the largest column of its mass, on either side. Masses are float32 sums of
    non-negative integers made float64: exact below 2^24 and never rounded below it from above,
    so the strict comparison is safe. None: even one block can exceed 2^24."""
    blocks = sides[0][1].shape[0]
    if blocks == 0 or any(mass.shape[1] == 0 for _, mass in sides):
        return [(0, length)]                 # an empty product: zeros, exact
    prefixes = [(scale, torch.cat([mass.new_zeros(1, mass.shape[1]), mass.cumsum(0)]))
                for scale, mass in sides]
    totals = [scale * float(prefix[-1].max()) for scale, prefix in prefixes]
    if not all(math.isfinite(total) for total in totals):
        return None                          # inf or NaN operands: float64 propagates them
    count = max(1, math.ceil(min(totals) / FLOAT32_EXACT))
    while count <= blocks:
        size = math.ceil(blocks / count)
        starts = torch.arange(0, blocks, size)
        ends = torch.clamp(starts + size, max=blocks)
        bounds = torch.stack([scale * (prefix[ends] - prefix[starts]).amax(1)
                              for scale, prefix in prefixes]).amin(0)
        worst = float(bounds.max())
        if worst < FLOAT32_EXACT:
            return [(int(s) * block, min(length, int(e) * block))
                    for s, e in zip(starts, ends)]
        if not math.isfinite(worst):
            return None
        count = max(math.ceil(blocks / (size - 1)) if size > 1 else blocks + 1,
                    math.ceil(count * worst / FLOAT32_EXACT))
    return None


def _peak(values: torch.Tensor) -> float:
    """max |values| (one pass, no temporary)."""
    if values.numel() == 0:
        return 0.0
    low, high = torch.aminmax(values)
    return max(-float(low), float(high))


def _block_sums(a: torch.Tensor, dim: int, block: int) -> torch.Tensor:
    """Sums of ``a`` over consecutive blocks of ``block`` along ``dim`` (the last block possibly
    shorter): ``dim`` becomes the block index."""
    k = a.shape[dim]
    full = k // block * block
    parts = []
    if full:
        parts.append(a.narrow(dim, 0, full).unflatten(dim, (full // block, block))
                     .sum(dim + 1))
    if full < k:
        parts.append(a.narrow(dim, full, k - full).sum(dim, keepdim=True))
    if not parts:
        return a.narrow(dim, 0, 0)
    return torch.cat(parts, dim) if len(parts) > 1 else parts[0]


def _columns(sums: torch.Tensor, dim: int) -> torch.Tensor:
    """(blocks, columns) float64 from block sums along ``dim``: every other axis a column."""
    moved = sums.movedim(dim, 0)
    return moved.reshape(moved.shape[0], math.prod(moved.shape[1:])).double()


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
