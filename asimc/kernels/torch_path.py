"""The torch path of the fast kernel: batched tensor operations, on any device.

For each row tile, the input cycle planes are stacked along the rows (C*R rows) and the weight
bit planes along the columns (bw*N columns), so ONE matrix product gives the MAC of every
(cycle, weight bit) pair; the conversions (``conversion_model``'s codes, or normal draws where
the analog value is not a function of the MAC) and the shift-add are then applied chunk by
chunk so that no more than ``memory_budget`` bytes of temporaries exist at once. It runs where
the native and Triton kernels do not (GPU tensors without Triton, no C compiler, cell or
driver mismatch on CUDA), with the reference's elementwise steps in the same order:
bit-identical to it. The native path converts the MACs of ``mac_chunks`` for cell or driver
mismatch on the CPU.
"""
from __future__ import annotations

import torch

from . import adc, conversion_model, rng, thresholds
from .bitplanes import input_cycle_planes, twos_complement
from .mismatch import driven_planes
from .problem import AcimProblem, PairTables, quad_part

# Chunks above this many conversions stop fitting in cache and run slower on CPU.
CACHE_FRIENDLY_CONVERSIONS = 1 << 20
# Fewer rows than this per chunk make the stacked matrix product inefficient (thin matrices).
MIN_CHUNK_ROWS = 64
# Bytes of temporaries per conversion: float32 MAC, m, code; int64 counters, random words,
# table rows and guide entries; float64 shift-add term.
BYTES_PER_CONVERSION = 64


def _row_chunks(rows: int, conversions_per_row: int, memory_budget: int,
                device: torch.device, per_conversion: int = BYTES_PER_CONVERSION
                ) -> list[tuple[int, int]]:
    budget = max(1, memory_budget // per_conversion)
    if device.type == "cpu":
        budget = min(budget, CACHE_FRIENDLY_CONVERSIONS)
    step = max(1, budget // max(1, conversions_per_row))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def _column_blocks(columns: int, per_column: int, device: torch.device) -> list[tuple[int, int]]:
    """Blocks of output columns, so that wide layers still get chunks of many rows (a chunk of
    a few rows would turn the stacked product into many thin matrix products)."""
    if device.type != "cpu":
        return [(0, columns)]
    width = max(1, CACHE_FRIENDLY_CONVERSIONS // (MIN_CHUNK_ROWS * per_column))
    return [(n0, min(columns, n0 + width)) for n0 in range(0, columns, width)]


def _stacked_weights(bits_u: torch.Tensor, cells: torch.Tensor | None, bw: int,
                     k0: int, k1: int) -> torch.Tensor:
    """A tile's weight bit planes side by side, (Gw, Kt, bw*Nb): column block i holds bit i
    (plus the cells' static mismatch, where given)."""
    u = bits_u[:, k0:k1, :]
    planes = torch.empty(u.shape[0], k1 - k0, bw, u.shape[2], dtype=torch.float32,
                         device=u.device)
    for i in range(bw):
        planes[:, :, i, :] = (u >> i) & 1
    if cells is not None:
        planes += cells[:, k0:k1, :].permute(1, 0, 2).unsqueeze(0)
    return planes.view(u.shape[0], k1 - k0, bw * u.shape[2])


def run(problem: AcimProblem, memory_budget: int) -> torch.Tensor:
    plan, noise = problem.plan, problem.noise
    device = problem.x.device
    groups, rows_out, _ = problem.x.shape
    columns, levels = problem.w.shape[-1], plan.adc_levels
    bw, cycles = plan.weight_bits, plan.cycles
    num_cycles = len(cycles)
    pair = PairTables.of(problem)                              # p = c * bw + i

    def per_pair(values, dtype):
        return torch.tensor(values, dtype=dtype, device=device).view(1, num_cycles, 1, bw, 1)

    fractions = [problem.fraction(t) for t in range(len(problem.tiles))]
    tile_full_scale = [torch.tensor([problem.full_scale(t, c) for c in cycles],
                                    dtype=torch.float32, device=device)
                       for t in range(len(problem.tiles))]
    shift_add = per_pair(pair.shift_add, torch.float64)
    digital = pair.digital
    tile_sigmas = [(per_pair([0.0 if d else plan.noise_sigmas(f)[0] for d in digital],
                             torch.float32), plan.noise_sigmas(f)[1]) for f in fractions]
    # Column ADC errors of analog conversions, per tile (G, C, Rc, bw, N)-broadcastable;
    # digital conversions get gain 1 and offset 0 (exact no-ops).
    analog_pair = per_pair([not d for d in digital], torch.bool)

    def column_term(values, neutral, t, n0, n1):
        if values is None:
            return None
        term = values[t, :, n0:n1].view(1, 1, 1, bw, n1 - n0)
        return torch.where(analog_pair, term, torch.full_like(term, neutral))

    def threshold_term(physical):
        """adc_dnl: where each conversion's column's thresholds start in the flat thresholds
        (-1 on digital levels, which round)."""
        if problem.thresholds is None:
            return None
        return torch.where(analog_pair, physical * levels, -1)
    pair_votes = pair.draws
    steps_per_tile = problem.step(1, 0, 0)
    pair_step = per_pair(pair.step, torch.int64)
    pair_alpha = torch.tensor(pair.alpha, dtype=torch.float32, device=device)
    table = conversion_model.tables(problem)
    table_rows = [per_pair(base, torch.int64) for base in table.base]
    column_maps = [per_pair(m, torch.int64) for m in table.column_map]
    acc = torch.empty(groups, rows_out, columns, dtype=torch.float64, device=device)
    # A per-column table draws by counting thresholds: its map entries, rows and W
    # thresholds per conversion too.
    per_conversion = BYTES_PER_CONVERSION if table.columns is None else \
        BYTES_PER_CONVERSION + 24 + 9 * table.columns.thresholds.shape[1]
    for r0, r1, n0, n1, tile_macs in mac_chunks(problem, memory_budget, per_conversion):
        chunk = torch.zeros(groups, r1 - r0, n1 - n0, dtype=torch.float64, device=device)
        stream = offset = None
        if noise is not None:
            stream = noise.stream[:, r0:r1].contiguous()
            offset = (noise.offset[:, r0:r1] + n0 * noise.col_stride).contiguous()
        physical = None          # per-column table or thresholds: each bit's column
        if table.columns is not None or problem.thresholds is not None:
            physical = conversion_model.physical_columns(
                bw, plan.chip.array.cols, torch.arange(n0, n1, device=device)) \
                .view(1, 1, 1, bw, n1 - n0)
        for t, mac in tile_macs:
            step = pair_step + t * steps_per_tile
            measured = None if table.columns is None else (column_maps[t], physical)
            code = _codes(problem, table, table_rows[t], mac, tile_full_scale[t], pair_alpha,
                          tile_sigmas[t], plan.rows * fractions[t], step, pair_votes,
                          stream, offset,
                          column_term(problem.gain, 1.0, t, n0, n1),
                          column_term(problem.offset, 0.0, t, n0, n1), measured,
                          threshold_term(physical))
            chunk += (code.to(torch.float64) * shift_add).sum(dim=(1, 3)) * fractions[t]
        acc[:, r0:r1, n0:n1] = chunk
    return acc / levels


def mac_chunks(problem: AcimProblem, memory_budget: int,
               per_conversion: int = BYTES_PER_CONVERSION):
    """The MACs of every (cycle, weight bit) pair, chunk by chunk within ``memory_budget``
    (``per_conversion`` bytes of temporaries per conversion): yields (r0, r1, n0, n1, tiles)
    for rows [r0, r1) and output columns [n0, n1), ``tiles`` yielding (t, mac) with mac
    (G, C, r1 - r0, bw, n1 - n0) float32 of row tile t, consumed before the next chunk.
    Analog pairs see the cells' and drivers' static mismatch (an exact float64 sum rounded to
    float32, as the reference); digital (hybrid) pairs the exact integer MAC."""
    plan = problem.plan
    chip = plan.chip
    x, w = problem.x, problem.w
    device = x.device
    groups, rows_out, _ = x.shape
    columns = w.shape[-1]
    bw, cycles = plan.weight_bits, plan.cycles
    num_cycles = len(cycles)
    # Digital (hybrid) conversions are exact even in the current domain: no cell or driver
    # mismatch.
    digital_pairs = [(c.index, i) for c, i in plan.pairs if plan.is_digital(i, c)]
    weight_bits = twos_complement(w, bw)                      # (Gw, K, N) int32

    # Perturbed MACs are exact float64 sums (see mismatch): their weight planes are float64,
    # converted once per call.
    analog_dtype = torch.float64 if problem.perturbed else torch.float32
    blocks = []                                  # (n0, n1, stacked weights, exact weights)
    for n0, n1 in _column_blocks(columns, num_cycles * bw, device):
        block = weight_bits[:, :, n0:n1]
        cells = None if problem.cells is None else problem.cells[:, :, n0:n1]
        stacked = [_stacked_weights(block, cells, bw, k0, k1).to(analog_dtype)
                   for k0, k1 in problem.tiles]
        exact = [_stacked_weights(block, None, bw, k0, k1) for k0, k1 in problem.tiles] \
            if problem.perturbed and digital_pairs else None
        blocks.append((n0, n1, stacked, exact))
    widest = max(n1 - n0 for n0, n1, _, _ in blocks)
    # The stacked weight planes are temporaries of this call too.
    weight_bytes = sum(p.numel() * p.element_size() for _, _, stacked, exact in blocks
                       for p in stacked + (exact or []))
    memory_budget = max(1, memory_budget - weight_bytes)

    def tile_macs(stacked_inputs, analog_inputs, stacked, exact, rc, width):
        for t, (k0, k1) in enumerate(problem.tiles):
            mac = torch.matmul(analog_inputs[:, :, k0:k1], stacked[t])
            if problem.perturbed:   # an exact float64 sum, rounded as the reference does
                mac = mac.float()
            mac = mac.view(groups, num_cycles, rc, bw, width)
            if exact is not None:
                ideal = torch.matmul(stacked_inputs[:, :, k0:k1], exact[t]) \
                    .view(groups, num_cycles, rc, bw, width)
                for c, i in digital_pairs:
                    mac[:, c, :, i, :] = ideal[:, c, :, i, :]
            yield t, mac

    for r0, r1 in _row_chunks(rows_out, groups * num_cycles * bw * widest, memory_budget,
                              device, per_conversion):
        rc = r1 - r0
        # The chunk's input cycle planes on top of each other: (G, C*Rc, K), built once for
        # every column block.
        stacked_inputs = input_cycle_planes(x[:, r0:r1, :], chip.input.bits,
                                            chip.input.signed, cycles, dim=1) \
            .view(groups, num_cycles * rc, -1)
        analog_inputs = stacked_inputs.to(analog_dtype) if problem.drivers is None \
            else driven_planes(stacked_inputs, problem.drivers, problem.tiles)
        for n0, n1, stacked, exact in blocks:
            yield r0, r1, n0, n1, tile_macs(stacked_inputs, analog_inputs, stacked, exact, rc,
                                            n1 - n0)


def _codes(problem: AcimProblem, table: conversion_model.FlatTables, table_rows, mac,
           full_scale, pair_alpha, sigmas, rows, step, pair_votes, stream, offset,
           column_gain=None, column_offset=None, measured=None,
           column_first=None) -> torch.Tensor:
    """ADC codes of every conversion of a chunk of one tile (torch path): (G, C, Rc, bw, Nb).
    ``table_rows``: each pair's first row in ``table`` (M = 0); ``full_scale``: the tile's
    range per cycle; ``sigmas``: (random per pair, non-linear) in units of it; ``rows``:
    f * rows (M_bin); ``column_gain/offset``: the column ADCs' errors; ``measured``: a
    per-column transfer table's (map start per pair, physical column per bit and column);
    ``column_first``: where each conversion's column's thresholds start in the flat
    thresholds (-1: rounds)."""
    plan = problem.plan
    groups, num_cycles, rc, bw, columns = mac.shape
    levels = plan.adc_levels
    sigma_random, sigma_nonlinear = sigmas
    alpha = pair_alpha.view(1, num_cycles, 1, bw, 1) if plan.alpha else 0.0
    # The analog value: the code without noise, or the mean of a normal draw (a code drawn
    # from the tables reads only the MAC).
    m = None if problem.draws_codes else \
        adc.analog_value(mac, full_scale.view(1, num_cycles, 1, 1, 1), alpha)
    noise = problem.noise

    def convert(value, gain=column_gain, offset=column_offset, first=column_first):
        if gain is not None or offset is not None:
            value = adc.column_errors(value, gain, offset)
        code = adc.adc_code(value, levels)
        if first is None:
            return code
        reached = thresholds.walk(value, problem.thresholds.view(-1), first.clamp(min=0), levels)
        return torch.where(first >= 0, reached, code)

    if noise is None:
        return convert(m)
    stream = stream.view(groups, 1, rc, 1, 1)
    offset = offset.view(groups, 1, rc, 1, 1)
    column_index = torch.arange(columns, device=mac.device).view(1, 1, 1, 1, columns)
    source = rng.random_words if problem.draws_codes else rng.standard_normal_quad

    def draws(pair_step):
        counter = pair_step * noise.elements + offset + column_index * noise.col_stride
        return source(stream, counter)

    if problem.draws_codes and measured is not None:
        sample = _measured_sampler(table, table_rows, mac, *measured)
    elif problem.draws_codes:           # one word per conversion, its code from the table
        row = table_rows + mac.to(torch.int64)

        def sample(at, word):
            return conversion_model.draw_guided(table, row[at], word)
    else:                               # a normal added to the analog value
        sigma = adc.noise_sigma(m, sigma_random, sigma_nonlinear, rows)
        # the non-linear term must vanish on digital levels too
        analog = torch.tensor([v > 0 for v in pair_votes], dtype=torch.float32,
                              device=mac.device).view(1, num_cycles, 1, bw, 1)

        def sample(at, z):
            part = (lambda t: None if t is None else t[at])
            noisy = adc.add_noise(m[at], z * analog[at], sigma[at])
            return convert(noisy, part(column_gain), part(column_offset), part(column_first))

    # Weight bits 4j..4j+3 share Philox call j: its four words (or normals) in order.
    drawn = torch.stack(draws(step[:, :, :, 0::4, :]), dim=4).flatten(3, 4)[:, :, :, :bw, :]
    code = sample((), drawn)
    for p, count in enumerate(pair_votes):
        if count <= 1:
            continue
        c, i = divmod(p, bw)
        pair = (slice(None), slice(c, c + 1), slice(None), slice(i, i + 1))
        codes = [code[pair]] + [sample(pair, quad_part(draws(step[pair] + v), i))
                                for v in range(1, count)]
        code[pair] = adc.majority(torch.stack(codes))
    return code


def _measured_sampler(table: conversion_model.FlatTables, table_rows, mac, column_map,
                      physical):
    """Codes of a chunk whose analog pairs draw from a per-column table (its column's
    distribution of M, shifted and clamped); the other pairs (digital levels) read their
    rows of ``table``."""
    per_column = column_map >= 0
    mac = mac.to(torch.int64)
    entry = torch.where(per_column, column_map + mac * table.columns.physical + physical, 0)
    row = torch.where(per_column, table_rows, table_rows + mac)

    def sample(at, word):
        return torch.where(per_column[at],
                           conversion_model.draw_measured(table.columns, entry[at], word),
                           conversion_model.draw_guided(table, row[at], word))
    return sample


def run_weight_parallel(problem: AcimProblem, memory_budget: int) -> torch.Tensor:
    """One signed conversion per row tile and output: chunked over rows."""
    plan = problem.plan
    x, w = problem.x, problem.w
    groups, rows_out, _ = x.shape
    columns = w.shape[-1]
    full_scale = plan.parallel_full_scale
    column_index = torch.arange(columns, device=x.device)
    acc = torch.zeros(groups, rows_out, columns, dtype=torch.float64, device=x.device)
    w64 = w.double()
    for r0, r1 in _row_chunks(rows_out, groups * columns, memory_budget, x.device):
        x64 = x[:, r0:r1, :].double()
        for t, (k0, k1) in enumerate(problem.tiles):
            fraction = problem.fraction(t)
            v = adc.signed_analog_value(torch.matmul(x64[:, :, k0:k1], w64[:, k0:k1, :]),
                                        full_scale * fraction)
            z = None
            if problem.noise is not None:
                counters = t * problem.noise.elements \
                    + problem.noise.offset[:, r0:r1].unsqueeze(-1) \
                    + column_index * problem.noise.col_stride
                z = rng.standard_normal(problem.noise.stream[:, r0:r1].unsqueeze(-1), counters)
            code = adc.signed_adc_code(v, z, plan.noise_sigmas(fraction)[0], plan.adc_levels,
                                       None if problem.gain is None else problem.gain[t, 0],
                                       None if problem.offset is None else problem.offset[t, 0])
            acc[:, r0:r1, :] += code.to(torch.float64) * full_scale * fraction
    return acc / plan.adc_levels
