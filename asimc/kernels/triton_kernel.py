"""The GPU kernel: the bit-level layer in one fused Triton launch per weight group.

Each program takes a block of rows and a block of columns of the product and, for every row
tile, cycle and weight bit, computes the MAC as exact int8 dot products of 0/1 bit planes (tensor
cores, int32 sums; one per input bit of the cycle, shifted), draws Philox4x32-10 words in
registers (Triton's own ``philox_impl``, keyed exactly as ``rng.random_words``), looks the code
up in the layer's conversion tables (``conversion_model``: one guide entry and one comparison
per conversion, the full threshold count in the rare flagged cells) and shift-adds into float64:
no MAC tensor ever exists in memory. ADC ranges, the current domain and hybrid levels are in
the tables, so the kernel has no float arithmetic of its own: its codes are the reference's.

``TRITON_INTERPRET=1`` runs the same kernel on CPU tensors, which is how the tests check it
without a GPU. Cell mismatch (non-integer MACs), the column ADCs' gain and offset (a normal draw
per conversion) and weight bit-parallel mode stay on the torch path.

Triton is optional (``pip install asimc[gpu]``); ``available()`` says whether it imports.
"""
from __future__ import annotations

import os

import torch

from . import conversion_model
from .problem import AcimProblem, PairTables

try:
    import triton
    import triton.language as tl
    from triton.language.random import philox_impl
except ImportError:                         # the CPU install: no Triton
    triton = None


def available() -> bool:
    return triton is not None


def usable(problem: AcimProblem) -> bool:
    """Whether this kernel runs the problem: bit-level, integer MACs drawn from the tables, and
    a CUDA device (or CPU tensors under TRITON_INTERPRET=1)."""
    if not available() or problem.plan.weight_parallel or problem.perturbed \
            or problem.column_mismatch or conversion_model.tables(problem).columns is not None:
        return False        # a per-column transfer table: the torch path
    device = problem.x.device.type
    return device == "cuda" or (device == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


if triton is not None:
    @triton.jit
    def _draw(guide_ptr, low_ptr, thresholds_ptr, width, row, word):
        """The code of each (table row, 32-bit word): conversion_model.draw_guided."""
        entry = tl.load(guide_ptr + row * GUIDE_CELLS + (word >> GUIDE_SHIFT))
        code = ((entry >> 32) & 0xFFFF) + (word > (entry & 0xFFFFFFFF)).to(tl.int64)
        flagged = (entry & SCAN_FLAG) != 0
        if tl.sum(flagged.to(tl.int32)) > 0:        # rare: count over the thresholds
            scan = tl.load(low_ptr + row)
            for j in range(width):
                scan += (word > tl.load(thresholds_ptr + row * width + j)).to(tl.int64)
            code = tl.where(flagged, scan, code)
        return code.to(tl.float32)

    @triton.jit
    def _part(w0, w1, w2, w3, PART: tl.constexpr):
        """Word PART (0..3) of a Philox call, as int64 in [0, 2^32)."""
        if PART == 0:
            w = w0
        elif PART == 1:
            w = w1
        elif PART == 2:
            w = w2
        else:
            w = w3
        return w.to(tl.int64) & 0xFFFFFFFF

    @triton.jit
    def _words(k0, k1, counter):
        """The four words of the Philox call of ``counter`` (int64) in key (k0, k1)."""
        c0 = (counter & 0xFFFFFFFF).to(tl.uint32)
        c1 = ((counter >> 32) & 0xFFFFFFFF).to(tl.uint32)
        zero = tl.zeros_like(c0)
        return philox_impl(c0, c1, zero, zero, k0, k1, 10)

    @triton.jit
    def _vote(k0, k1, step, elements, base, a, w, PART: tl.constexpr):
        """Vote a's word (vote 0's is ``w``)."""
        if a > 0:
            v0, v1, v2, v3 = _words(k0, k1, (step + a) * elements + base)
            w = _part(v0, v1, v2, v3, PART)
        return w

    @triton.jit
    def _majority(row, w, k0, k1, step, elements, base, votes, guide_ptr, low_ptr,
                  thresholds_ptr, width, PART: tl.constexpr):
        """The most frequent code of the votes, ties to the smallest code."""
        best = tl.zeros(row.shape, tl.float32)
        best_count = tl.zeros(row.shape, tl.int32)
        for a in range(votes):
            ca = _draw(guide_ptr, low_ptr, thresholds_ptr, width, row,
                       _vote(k0, k1, step, elements, base, a, w, PART))
            count = tl.zeros(row.shape, tl.int32)
            for o in range(votes):
                co = _draw(guide_ptr, low_ptr, thresholds_ptr, width, row,
                           _vote(k0, k1, step, elements, base, o, w, PART))
                count += (co == ca).to(tl.int32)
            better = (count > best_count) | ((count == best_count) & (ca < best))
            best = tl.where(better, ca, best)
            best_count = tl.where(better, count, best_count)
        return best

    @triton.jit
    def _acim_kernel(x_ptr, w_ptr, acc_ptr, stream_ptr, offset_ptr,
                     bounds_ptr, cycle_low_ptr, cycle_bits_ptr, shift_add_ptr, votes_ptr,
                     step_ptr, fraction_ptr, base_ptr, code_ptr, low_ptr, thresholds_ptr,
                     guide_ptr, width, rows_total, k_total, columns, tiles, tile_step, elements,
                     col_stride, cycles,
                     INPUT_MASK: tl.constexpr, BW: tl.constexpr, NOISY: tl.constexpr,
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
            tile_acc = tl.zeros((BLOCK_R, BLOCK_N), tl.float64)
            for c in range(cycles):
                low = tl.load(cycle_low_ptr + c)
                bits = tl.load(cycle_bits_ptr + c)
                for j in tl.static_range((BW + 3) // 4):
                    # One Philox call serves weight bits 4j..4j+3 (vote 0).
                    step = tl.load(step_ptr + c * BW + 4 * j) + t * tile_step
                    w0 = tl.zeros((BLOCK_R, BLOCK_N), tl.uint32)
                    w1 = w0
                    w2 = w0
                    w3 = w0
                    if NOISY:
                        w0, w1, w2, w3 = _words(k0, k1, step * elements + base)
                    for q in tl.static_range(4):
                        if 4 * j + q < BW:
                            i = 4 * j + q
                            wbits = ((uw >> i) & 1).to(tl.int8)
                            mac = tl.zeros((BLOCK_R, BLOCK_N), tl.int32)
                            for b in range(bits):
                                xbits = ((ux >> (low + b)) & 1).to(tl.int8)
                                mac += tl.dot(xbits, wbits, out_dtype=tl.int32) << b
                            p = c * BW + i
                            row = tl.load(base_ptr + t * cycles * BW + p) + mac.to(tl.int64)
                            votes = tl.load(votes_ptr + p)
                            code = tl.load(code_ptr + row)
                            if NOISY:
                                w = _part(w0, w1, w2, w3, q)
                                if votes == 1:
                                    code = _draw(guide_ptr, low_ptr, thresholds_ptr, width, row, w)
                                elif votes > 1:
                                    code = _majority(row, w, k0, k1, step, elements, base, votes,
                                                     guide_ptr, low_ptr, thresholds_ptr, width, q)
                            tile_acc += code.to(tl.float64) * tl.load(shift_add_ptr + p)
            # as the reference: each tile's exact sum times f_t, then added
            acc += tile_acc * tl.load(fraction_ptr + t)
        tl.store(acc_ptr + r.to(tl.int64)[:, None] * columns + n[None, :], acc,
                 mask=row_ok[:, None] & col_ok[None, :])

    GUIDE_CELLS = tl.constexpr(conversion_model.GUIDE_CELLS)
    GUIDE_SHIFT = tl.constexpr(conversion_model.GUIDE_SHIFT)
    SCAN_FLAG = tl.constexpr(conversion_model.SCAN_FLAG)


def run(problem: AcimProblem, block_rows: int = 32, block_columns: int = 32) -> torch.Tensor:
    """The accumulated product (G, R, N) in integer-product units, float64 (see fast.run)."""
    if not usable(problem):
        raise ValueError("the Triton kernel needs Triton, a bit-level layer without cell or "
                         "column ADC mismatch, and a CUDA device (or TRITON_INTERPRET=1 on CPU)")
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
    tables = conversion_model.tables(problem)

    def table(values, dtype):
        return torch.tensor(values, dtype=dtype, device=device)

    longest = max(k1 - k0 for k0, k1 in problem.tiles)
    block_k = max(16, triton.next_power_of_2(longest))
    args = [
        table([b for tile in problem.tiles for b in tile], torch.int64),
        table([c.low_bit for c in cycles], torch.int32),
        table([c.bits for c in cycles], torch.int32),
        table(pair.shift_add, torch.float64),
        table(pair.draws, torch.int32),
        table(pair.step, torch.int64),
        table([problem.fraction(t) for t in range(len(problem.tiles))], torch.float64),
        table(tables.base, torch.int64),
        tables.code, tables.low, tables.thresholds.contiguous(), tables.guide.contiguous(),
        tables.thresholds.shape[1],
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
            noise.elements if noise else 0, noise.col_stride if noise else 0, len(cycles),
            INPUT_MASK=(1 << chip.input.bits) - 1, BW=bw, NOISY=noise is not None,
            BLOCK_R=block_rows, BLOCK_N=block_columns, BLOCK_K=block_k,
            enable_fp_fusion=False)     # tile_acc * f_t + acc: two roundings, as the reference
    return acc / plan.adc_levels
