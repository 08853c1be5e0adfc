"""The native path of the fast kernel: drives ``native.acim`` (convert.c) over column blocks
and row chunks within the memory budget, with the layer's conversion tables and packed weights.
With cell or driver mismatch (MACs that are not integers) it converts the torch path's exact
float64 MAC products with ``native.convert_macs`` instead (docs/numeric-model.md, 8c).
"""
from __future__ import annotations

import torch

from . import adc, conversion_model, native, torch_path
from .packing import packed_weight_bytes, packed_weights
from .problem import AcimProblem, PairTables


def fits(problem: AcimProblem) -> bool:
    """Within the native kernel's limits (cell or driver mismatch included: ``run`` converts
    their non-integer MACs natively)."""
    plan = problem.plan
    return problem.num_votes <= native.MAX_VOTES \
        and plan.chip.input.bits <= native.MAX_INPUT_BITS \
        and plan.chip.input.bits * plan.weight_bits <= native.MAX_PLANE_PAIRS \
        and _table_rows(conversion_model.tables(problem)) <= native.MAX_TABLE_ROWS


def _table_rows(table: conversion_model.FlatTables) -> int:
    """The most rows of the layer's tables and its per-column table's measured ones (whose
    thresholds and map entries convert.c indexes with 32-bit integers too)."""
    columns = table.columns
    if columns is not None and max(columns.thresholds.numel(), columns.source.numel()) >= 1 << 31:
        return native.MAX_TABLE_ROWS + 1
    return max(table.low.numel(), 0 if columns is None else columns.low.numel())


def run(problem: AcimProblem, memory_budget: int) -> torch.Tensor:
    if problem.perturbed:
        return _run_perturbed(problem, memory_budget)
    plan = problem.plan
    chip = plan.chip
    x, w = problem.x.contiguous(), problem.w
    groups, rows_out, _ = x.shape
    columns = w.shape[-1]
    bw, cycles = plan.weight_bits, plan.cycles
    noise = problem.noise
    pair = PairTables.of(problem)
    digital = pair.digital
    tiles = range(len(problem.tiles))
    fractions = [problem.fraction(t) for t in tiles]
    table = conversion_model.tables(problem)
    # digital conversions take no column errors (``analog``)
    gain, column_offset = _column_errors(problem)
    args = dict(
        tiles=problem.tiles, input_bits=chip.input.bits, weight_bits=bw, columns=columns,
        cycle_low=torch.tensor([c.low_bit for c in cycles], dtype=torch.int32),
        cycle_bits=torch.tensor([c.bits for c in cycles], dtype=torch.int32),
        shift_add=torch.tensor(pair.shift_add, dtype=torch.float64),
        votes=torch.tensor(pair.draws, dtype=torch.int32),
        step=torch.tensor(pair.step, dtype=torch.int64),
        tile_step=problem.step(1, 0, 0), elements=noise.elements if noise else 0,
        col_stride=noise.col_stride if noise else 0,
        fraction=torch.tensor(fractions, dtype=torch.float64), gain=gain,
        column_offset=column_offset, thresholds=problem.thresholds,
        analog=torch.tensor([not d for d in digital], dtype=torch.int32),
        table_base=torch.tensor(table.base, dtype=torch.int64),
        tables=native.native_tables(table), draws_codes=problem.draws_codes,
        levels=plan.adc_levels)
    # The layer's conversion tables count against the budget too.
    memory_budget = max(1, memory_budget - table.nbytes)
    # Column blocks whose packed weights take at most half the budget; the other half holds
    # the output rows of a call.
    per_column = packed_weight_bytes(problem) // columns
    width = max(1, min(columns, memory_budget // 2 // max(1, per_column)))
    acc = torch.empty(groups, rows_out, columns, dtype=torch.float64)
    for n0 in range(0, columns, width):
        n1 = min(columns, n0 + width)
        wpack = packed_weights(w, problem.tiles, bw, n0, n1)
        left = max(0, memory_budget - wpack.numel() * 8)
        whole = n1 - n0 == columns
        if whole and groups * rows_out * (n1 - n0) * 8 <= left:
            chunks = [(slice(None), 0, rows_out)]        # straight into the result
        else:
            step = max(1, left // ((n1 - n0) * 8))
            chunks = [(slice(g, g + 1), r0, min(rows_out, r0 + step))
                      for g in range(groups) for r0 in range(0, rows_out, step)]
        for g, r0, r1 in chunks:
            xg = x[g, r0:r1].contiguous()
            out = acc if whole and r1 - r0 == rows_out and g == slice(None) else \
                torch.empty(xg.shape[0], r1 - r0, n1 - n0, dtype=torch.float64)
            stream = offset = None
            if noise is not None:
                stream = noise.stream[g, r0:r1].contiguous()
                offset = noise.offset[g, r0:r1].contiguous()
            native.acim(xg, wpack if wpack.shape[0] == 1 else wpack[g], out,
                        n0=n0, stream=stream, offset=offset, **args)
            if out is not acc:
                acc[g, r0:r1, n0:n1] = out
    return acc / plan.adc_levels


def _column_errors(problem: AcimProblem) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Column ADC errors (T, bw, N): both or neither (gain 1 and offset 0 are exact no-ops; the
    thresholds of adc_dnl come with both)."""
    if not problem.column_mismatch:
        return None, None
    shape = (len(problem.tiles), problem.plan.weight_bits, problem.w.shape[-1])
    gain = problem.gain if problem.gain is not None else torch.ones(shape)
    offset = problem.offset if problem.offset is not None else torch.zeros(shape)
    return gain.to(torch.float32).contiguous(), offset.to(torch.float32).contiguous()


# Bytes of temporaries per conversion of a chunk: the float64 MAC product, its float32 copy
# and the exact MACs of digital pairs.
MAC_BYTES_PER_CONVERSION = 16


def _run_perturbed(problem: AcimProblem, memory_budget: int) -> torch.Tensor:
    """Cell or driver mismatch: the MACs (not integers) of the torch path's exact float64
    products, chunk by chunk, converted and shift-added by ``native.convert_macs`` (a normal
    drawn per noisy conversion, as the reference)."""
    plan = problem.plan
    x, noise = problem.x, problem.noise
    groups, rows_out, _ = x.shape
    columns = problem.w.shape[-1]
    pair = PairTables.of(problem)
    gain, column_offset = _column_errors(problem)
    args = dict(
        columns=columns, shift_add=torch.tensor(pair.shift_add, dtype=torch.float64),
        votes=torch.tensor(pair.draws, dtype=torch.int32),
        step=torch.tensor(pair.step, dtype=torch.int64), tile_step=problem.step(1, 0, 0),
        elements=noise.elements if noise else 0, col_stride=noise.col_stride if noise else 0,
        gain=gain, column_offset=column_offset, thresholds=problem.thresholds,
        analog=torch.tensor([not d for d in pair.digital], dtype=torch.int32),
        alpha=torch.tensor(pair.alpha, dtype=torch.float32), levels=plan.adc_levels)
    tiles = []                  # per tile: its ranges, sigmas and the rows of its M_bin
    for t in range(len(problem.tiles)):
        fraction = problem.fraction(t)
        sigma_random, sigma_nonlinear = plan.noise_sigmas(fraction)
        tiles.append(dict(
            fraction=fraction,
            full_scale=torch.tensor([problem.full_scale(t, c) for c in plan.cycles],
                                    dtype=torch.float32),
            sigma_random=torch.tensor([0.0 if d else sigma_random for d in pair.digital],
                                      dtype=torch.float32),
            nonlinear2=float(adc.nonlinear_square(sigma_nonlinear)) if sigma_nonlinear
            else -1.0, rows=plan.rows * fraction))
    acc = torch.zeros(groups, rows_out, columns, dtype=torch.float64)
    for r0, r1, n0, n1, tile_macs in torch_path.mac_chunks(problem, memory_budget,
                                                           MAC_BYTES_PER_CONVERSION):
        out = torch.zeros(groups, r1 - r0, n1 - n0, dtype=torch.float64)
        stream = offset = None
        if noise is not None:
            stream = noise.stream[:, r0:r1].contiguous()
            offset = noise.offset[:, r0:r1].contiguous()
        for t, mac in tile_macs:
            native.convert_macs(mac.contiguous(), out, n0=n0, tile=t, stream=stream,
                                offset=offset, **args, **tiles[t])
        acc[:, r0:r1, n0:n1] = out
    return acc / plan.adc_levels
