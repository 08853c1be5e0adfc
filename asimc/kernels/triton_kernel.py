"""The GPU kernel: the bit-level layer in one fused Triton launch per weight group.

Each program takes a block of rows and a block of columns of the product and, for every row
tile, cycle and weight bit, computes the MAC as exact int8 dot products of 0/1 bit planes (tensor
cores, int32 sums; one per input bit of the cycle, shifted), draws Philox4x32-10 normals in
registers (Triton's own ``philox_impl``, keyed exactly as ``rng.random_words``), adds the noise,
converts and shift-adds into float64: no MAC tensor ever exists in memory.

Bit identity with the reference: every float32 step is the reference's, in the same order, with
the correctly rounded ``div_rn`` and ``sqrt_rn`` (Triton's defaults are approximate) and without
fused multiply-adds (``enable_fp_fusion=False``); round-half-to-even is ``(y + 2^23) - 2^23``,
exact for 0 <= y < 2^23. ``TRITON_INTERPRET=1`` runs the same kernel on CPU tensors, which is how
the tests check it without a GPU. Cell mismatch (non-integer MACs) and weight bit-parallel mode
stay on the torch path.

Triton is optional (``pip install asimc[gpu]``); ``available()`` says whether it imports.
"""
from __future__ import annotations

import os

import torch

from . import adc, rng
from .problem import AcimProblem, PairTables

try:
    import triton
    import triton.language as tl
    from triton.language.random import philox_impl
except ImportError:                         # the CPU install: no Triton
    triton = None

ROUND_MAGIC = 8388608.0                     # 2^23


def available() -> bool:
    return triton is not None


def usable(problem: AcimProblem) -> bool:
    """Whether this kernel runs the problem: bit-level, integer MACs, and a CUDA device (or
    CPU tensors under TRITON_INTERPRET=1)."""
    if not available() or problem.plan.weight_parallel or problem.cells is not None \
            or problem.ranged or problem.column_mismatch:
        return False
    device = problem.x.device.type
    return device == "cuda" or (device == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


if triton is not None:
    @triton.jit
    def _log_unit(u):
        bits = u.to(tl.int32, bitcast=True)
        exponent = ((bits >> 23) & 255) - 127
        m = ((bits & 0x7FFFFF) | 0x3F800000).to(tl.float32, bitcast=True)
        big = m > SQRT2
        m = tl.where(big, m * 0.5, m)
        exponent = exponent + big.to(tl.int32)
        s = tl.div_rn(m - 1.0, m + 1.0)
        x = s * s
        p = x * LN4 + LN3
        p = p * x + LN2C
        p = p * x + LN1
        p = p * x + LN0
        return s * p + exponent.to(tl.float32) * LN2

    @triton.jit
    def _cos_turns(k):
        quadrant = k >> 22
        a = (k & 0x3FFFFF).to(tl.float32) * QUARTER_STEP
        b = tl.where((quadrant & 1) == 1, HALF_PI - a, a)
        x = b * b
        c = x * COS7 + COS6
        c = c * x + COS5
        c = c * x + COS4
        c = c * x + COS3
        c = c * x + COS2
        c = c * x + COS1
        c = c * x + COS0
        return tl.where((quadrant == 1) | (quadrant == 2), -c, c)

    @triton.jit
    def _pair(wa, wb):
        """Box-Muller on two words: r cos(theta), r sin(theta)."""
        u1 = ((wa >> 8) + 1).to(tl.int32).to(tl.float32) * INV_2_24
        angle = (wb >> 8).to(tl.int32)
        radius = tl.sqrt_rn(_log_unit(u1) * -2.0)
        return radius * _cos_turns(angle), \
            radius * _cos_turns((angle + QUARTER_TURN) & 0xFFFFFF)

    @triton.jit
    def _quad(k0, k1, counter):
        """The four normals of the Philox call of ``counter`` (int64) in key (k0, k1)."""
        c0 = (counter & 0xFFFFFFFF).to(tl.uint32)
        c1 = ((counter >> 32) & 0xFFFFFFFF).to(tl.uint32)
        zero = tl.zeros_like(c0)
        w0, w1, w2, w3 = philox_impl(c0, c1, zero, zero, k0, k1, 10)
        z0, z1 = _pair(w0, w1)
        z2, z3 = _pair(w2, w3)
        return z0, z1, z2, z3

    @triton.jit
    def _part(z0, z1, z2, z3, PART: tl.constexpr):
        """Normal PART (0..3) of a quad."""
        if PART == 0:
            z = z0
        elif PART == 1:
            z = z1
        elif PART == 2:
            z = z2
        else:
            z = z3
        return z

    @triton.jit
    def _normal(k0, k1, counter, PART: tl.constexpr):
        """Normal PART (0..3) of the quad of ``counter``."""
        z0, z1, z2, z3 = _quad(k0, k1, counter)
        return _part(z0, z1, z2, z3, PART)

    @triton.jit
    def _normals_kernel(stream, counter_ptr, out_ptr, count, BLOCK: tl.constexpr):
        """The four normals of counters (for tests: the same bits as rng's)."""
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        ok = offs < count
        counter = tl.load(counter_ptr + offs, mask=ok, other=0)
        k0 = (tl.zeros_like(counter) + stream) & 0xFFFFFFFF
        k1 = ((tl.zeros_like(counter) + stream) >> 32) & 0xFFFFFFFF
        k0 = k0.to(tl.uint32)
        k1 = k1.to(tl.uint32)
        z0, z1, z2, z3 = _quad(k0, k1, counter)
        tl.store(out_ptr + 4 * offs, z0, mask=ok)
        tl.store(out_ptr + 4 * offs + 1, z1, mask=ok)
        tl.store(out_ptr + 4 * offs + 2, z2, mask=ok)
        tl.store(out_ptr + 4 * offs + 3, z3, mask=ok)

    @triton.jit
    def _round_even(y):
        return (y + ROUND_MAGIC) - ROUND_MAGIC

    @triton.jit
    def _code(m, z, sigma, nonlinear2, rows, levels, NONLINEAR: tl.constexpr):
        if NONLINEAR:
            sigma = tl.sqrt_rn(sigma * sigma + tl.div_rn(nonlinear2 + tl.zeros_like(m),
                                                         m * rows + 1.0))
        y = tl.minimum(tl.maximum(m + z * sigma, 0.0), 1.0)
        return _round_even(y * levels)

    @triton.jit
    def _majority(m, z0, k0, k1, step, elements, base, votes, sigma, nonlinear2, rows, levels,
                  PART: tl.constexpr, NONLINEAR: tl.constexpr):
        """The most frequent code of the votes (vote 0 draws z0), ties to the smallest code."""
        best = tl.zeros_like(m)
        best_count = tl.zeros(m.shape, tl.int32)
        for a in range(votes):
            za = z0
            if a > 0:
                za = _normal(k0, k1, (step + a) * elements + base, PART)
            ca = _code(m, za, sigma, nonlinear2, rows, levels, NONLINEAR)
            count = tl.zeros(m.shape, tl.int32)
            for o in range(votes):
                zo = z0
                if o > 0:
                    zo = _normal(k0, k1, (step + o) * elements + base, PART)
                count += (_code(m, zo, sigma, nonlinear2, rows, levels, NONLINEAR)
                          == ca).to(tl.int32)
            better = (count > best_count) | ((count == best_count) & (ca < best))
            best = tl.where(better, ca, best)
            best_count = tl.where(better, count, best_count)
        return best

    @triton.jit
    def _acim_kernel(x_ptr, w_ptr, acc_ptr, stream_ptr, offset_ptr,
                     bounds_ptr, cycle_low_ptr, cycle_bits_ptr, full_scale_ptr, shift_add_ptr,
                     sigma_ptr, votes_ptr, alpha_ptr, step_ptr,
                     rows_total, k_total, columns, tiles, tile_step, elements, col_stride,
                     nonlinear2, rows, levels, cycles,
                     INPUT_MASK: tl.constexpr, BW: tl.constexpr, NOISY: tl.constexpr,
                     NONLINEAR: tl.constexpr, ALPHA: tl.constexpr,
                     BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        pid_r = tl.program_id(0)
        pid_n = tl.program_id(1)
        r = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
        n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        kk = tl.arange(0, BLOCK_K)
        row_ok = r < rows_total
        col_ok = n < columns
        k0 = tl.zeros((BLOCK_R, BLOCK_N), tl.uint32)
        k1 = tl.zeros((BLOCK_R, BLOCK_N), tl.uint32)
        base = tl.zeros((BLOCK_R, BLOCK_N), tl.int64)
        if NOISY:
            stream = tl.load(stream_ptr + r, mask=row_ok, other=0)
            k0 = k0 + (stream & 0xFFFFFFFF).to(tl.uint32)[:, None]
            k1 = k1 + ((stream >> 32) & 0xFFFFFFFF).to(tl.uint32)[:, None]
            offset = tl.load(offset_ptr + r, mask=row_ok, other=0)
            base = base + offset[:, None] + n.to(tl.int64)[None, :] * col_stride
        acc = tl.zeros((BLOCK_R, BLOCK_N), tl.float64)
        for t in range(tiles):
            t0 = tl.load(bounds_ptr + 2 * t)
            t1 = tl.load(bounds_ptr + 2 * t + 1)
            k = t0 + kk
            k_ok = k < t1
            xv = tl.load(x_ptr + r.to(tl.int64)[:, None] * k_total + k[None, :],
                         mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            ux = xv.to(tl.int32) & INPUT_MASK
            wv = tl.load(w_ptr + k.to(tl.int64)[:, None] * columns + n[None, :],
                         mask=k_ok[:, None] & col_ok[None, :], other=0.0)
            uw = wv.to(tl.int32) & ((1 << BW) - 1)
            for c in range(cycles):
                low = tl.load(cycle_low_ptr + c)
                width = tl.load(cycle_bits_ptr + c)
                fs = tl.load(full_scale_ptr + c)
                for j in tl.static_range((BW + 3) // 4):
                    # One Philox call serves weight bits 4j..4j+3 (vote 0).
                    step = tl.load(step_ptr + c * BW + 4 * j) + t * tile_step
                    z0 = tl.zeros((BLOCK_R, BLOCK_N), tl.float32)
                    z1 = z0
                    z2 = z0
                    z3 = z0
                    if NOISY:
                        z0, z1, z2, z3 = _quad(k0, k1, step * elements + base)
                    for q in tl.static_range(4):
                        if 4 * j + q < BW:
                            i = 4 * j + q
                            wbits = ((uw >> i) & 1).to(tl.int8)
                            mac = tl.zeros((BLOCK_R, BLOCK_N), tl.int32)
                            for b in range(width):
                                xbits = ((ux >> (low + b)) & 1).to(tl.int8)
                                mac += tl.dot(xbits, wbits, out_dtype=tl.int32) << b
                            p = c * BW + i
                            v = mac.to(tl.float32)
                            if ALPHA:
                                alpha = tl.load(alpha_ptr + p)
                                v = tl.div_rn(v, 1.0 + alpha * v)
                            m = tl.minimum(tl.maximum(tl.div_rn(v, fs + tl.zeros_like(v)), 0.0),
                                           1.0)
                            votes = tl.load(votes_ptr + p)
                            sigma = tl.load(sigma_ptr + p)
                            code = _round_even(m * levels)
                            if NOISY:
                                z = _part(z0, z1, z2, z3, q)
                                if votes == 1:
                                    code = _code(m, z, sigma, nonlinear2, rows, levels, NONLINEAR)
                                elif votes > 1:
                                    code = _majority(m, z, k0, k1, step, elements, base, votes,
                                                     sigma, nonlinear2, rows, levels, q,
                                                     NONLINEAR)
                            acc += code.to(tl.float64) * tl.load(shift_add_ptr + p)
        tl.store(acc_ptr + r.to(tl.int64)[:, None] * columns + n[None, :], acc,
                 mask=row_ok[:, None] & col_ok[None, :])

    # The Box-Muller constants of rng, as Triton globals (float32 values held exactly).
    SQRT2 = tl.constexpr(rng.SQRT2)
    LN2 = tl.constexpr(rng.LN2)
    LN0, LN1, LN2C, LN3, LN4 = (tl.constexpr(v) for v in rng.LN_SERIES)
    HALF_PI = tl.constexpr(rng.HALF_PI)
    QUARTER_STEP = tl.constexpr(rng.QUARTER_STEP)
    COS0, COS1, COS2, COS3, COS4, COS5, COS6, COS7 = (tl.constexpr(v) for v in rng.COS_SERIES)
    INV_2_24 = tl.constexpr(rng.INV_2_24)
    QUARTER_TURN = tl.constexpr(rng.QUARTER_TURN)
    ROUND_MAGIC = tl.constexpr(ROUND_MAGIC)


def standard_normal_quads(stream: int, counters: torch.Tensor) -> torch.Tensor:
    """The kernel's four N(0, 1) draws (…, 4) of ``counters`` (int64) in ``stream``."""
    counters = counters.contiguous()
    out = torch.empty(*counters.shape, 4, dtype=torch.float32, device=counters.device)
    block = 256
    _normals_kernel[(triton.cdiv(counters.numel(), block),)](stream, counters, out,
                                                            counters.numel(), BLOCK=block,
                                                            enable_fp_fusion=False)
    return out


def run(problem: AcimProblem, block_rows: int = 32, block_columns: int = 32) -> torch.Tensor:
    """The accumulated product (G, R, N) in integer-product units, float64 (see fast.run)."""
    if not usable(problem):
        raise ValueError("the Triton kernel needs Triton, a bit-level layer without cell "
                         "mismatch, and a CUDA device (or TRITON_INTERPRET=1 on CPU)")
    plan = problem.plan
    chip = plan.chip
    device = problem.x.device
    x = problem.x.contiguous()
    w = problem.w.contiguous()
    groups, rows_out, k_total = x.shape
    columns = w.shape[-1]
    bw, cycles = plan.weight_bits, plan.cycles
    noise = problem.noise
    pair = PairTables.of(problem)

    def table(values, dtype):
        return torch.tensor(values, dtype=dtype, device=device)

    longest = max(k1 - k0 for k0, k1 in problem.tiles)
    block_k = max(16, triton.next_power_of_2(longest))
    args = [
        table([b for tile in problem.tiles for b in tile], torch.int64),
        table([c.low_bit for c in cycles], torch.int32),
        table([c.bits for c in cycles], torch.int32),
        table([plan.full_scale(c) for c in cycles], torch.float32),
        table(pair.shift_add, torch.float64),
        table([0.0 if d else plan.sigma_random for d in pair.digital], torch.float32),
        table(pair.draws, torch.int32),
        table(pair.alpha, torch.float32),
        table(pair.step, torch.int64),
    ]
    acc = torch.empty(groups, rows_out, columns, dtype=torch.float64, device=device)
    dummy = torch.zeros(1, dtype=torch.int64, device=device)
    # One launch per weight group (one launch in all for static weights).
    launches = [(slice(None), 0)] if w.shape[0] == 1 else [(slice(g, g + 1), g)
                                                            for g in range(groups)]
    for rows_slice, gw in launches:
        xs = x[rows_slice]
        rows_total = xs.shape[0] * rows_out
        out = acc[rows_slice]
        stream = noise.stream[rows_slice].contiguous() if noise else dummy
        offset = noise.offset[rows_slice].contiguous() if noise else dummy
        grid = (triton.cdiv(rows_total, block_rows), triton.cdiv(columns, block_columns))
        _acim_kernel[grid](
            xs, w[gw], out, stream, offset, *args,
            rows_total, k_total, columns, len(problem.tiles), problem.step(1, 0, 0),
            noise.elements if noise else 0, noise.col_stride if noise else 0,
            float(adc.nonlinear_square(plan.sigma_nonlinear)), float(plan.rows),
            float(plan.adc_levels), len(cycles),
            INPUT_MASK=(1 << chip.input.bits) - 1, BW=bw, NOISY=noise is not None,
            NONLINEAR=bool(plan.sigma_nonlinear) and noise is not None,
            ALPHA=bool(plan.alpha), BLOCK_R=block_rows, BLOCK_N=block_columns,
            BLOCK_K=block_k, enable_fp_fusion=False)
    return acc / plan.adc_levels
