"""The fast kernel: the reference's arithmetic, fused (native C) or batched (torch).

On CPU with a C compiler (``native``), one fused pass per row: input and weight bit planes as
bit masks, every binary MAC a popcount, then Philox normals, noise, ADC and shift-add on small
column blocks, threaded over rows. The weight bit planes are packed once per layer (cached with
the weight tensor) and count against ``memory_budget``, as does every buffer of the call.

Elsewhere (GPU tensors without Triton, no compiler) the torch path: for each row tile, the input
cycle planes are stacked along the rows (C*R rows) and the weight bit planes along the columns
(bw*N columns), so ONE matrix product gives the MAC of every (cycle, weight bit) pair; noise,
ADC and shift-add are then applied chunk by chunk so that no more than ``memory_budget`` bytes
of temporaries exist at once.

When every conversion is provably exact (lossless ADC, no noise or only on digital levels, no
current-domain effects) the whole product collapses into one integer matrix product.

Every path does the elementwise steps of the reference kernel (``adc``, ``rng``) in the same
order, and the shift-add sums exact integers in float64, so all of them are bit-identical to it,
noise included.
"""
from __future__ import annotations

import weakref

import torch

from . import adc, exact, native, rng
from .bitplanes import input_cycle_planes, twos_complement
from .problem import AcimProblem, PairTables, quad_part

DEFAULT_MEMORY_BUDGET = 1 << 30        # bytes of temporaries per kernel call
# Chunks above this many conversions stop fitting in cache and run slower on CPU.
CACHE_FRIENDLY_CONVERSIONS = 1 << 20
# Fewer rows than this per chunk make the stacked matrix product inefficient (thin matrices).
MIN_CHUNK_ROWS = 64
# Bytes of temporaries per conversion: float32 MAC, m, z; int64 counters and random bits;
# float64 shift-add term.
BYTES_PER_CONVERSION = 48


def run(problem: AcimProblem, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """The accumulated product (G, R, N) in integer-product units, float64."""
    if problem.plan.weight_parallel:
        return _run_weight_parallel(problem, memory_budget)
    if _all_exact(problem):
        return exact.matmul(problem.x, problem.w)
    if backend(problem.x.device) == "native" and _native_fits(problem):
        return _run_native(problem, memory_budget)
    if problem.x.device.type == "cuda":
        from . import triton_kernel                 # optional (asimc[gpu]); imports slowly
        if triton_kernel.usable(problem):
            return triton_kernel.run(problem)
    return _run_bit_level(problem, memory_budget)


def merges_exactly(problem: AcimProblem) -> bool:
    """Whether ``run`` computes ``problem`` as one exact integer product (every conversion
    lossless and noiseless): a caller may compute that product any other exact way."""
    return not problem.plan.weight_parallel and _all_exact(problem)


def _all_exact(problem: AcimProblem) -> bool:
    plan = problem.plan
    if problem.cells is not None or problem.column_mismatch or plan.alpha:
        return False
    # Losslessness depends on (tile length, cycle) only, digital levels on (bit, cycle) only:
    # one tile per length (the Python checks cost 15 us each, tens per layer and run).
    one_per_length = {k1 - k0: t for t, (k0, k1) in enumerate(problem.tiles)}.values()
    return all(problem.is_lossless(t, c) for t in one_per_length for c in plan.cycles) \
        and (problem.noise is None or all(plan.is_digital(i, c) for i in range(plan.weight_bits)
                                          for c in plan.cycles))


def _row_chunks(rows: int, conversions_per_row: int, memory_budget: int,
                device: torch.device) -> list[tuple[int, int]]:
    budget = max(1, memory_budget // BYTES_PER_CONVERSION)
    if device.type == "cpu":
        budget = min(budget, CACHE_FRIENDLY_CONVERSIONS)
    step = max(1, budget // max(1, conversions_per_row))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def backend(device: torch.device | str = "cpu") -> str:
    """Which implementation runs the bit-level layers: ``native`` (C, CPU), ``triton`` (CUDA
    with asimc[gpu]) or ``torch``."""
    device = torch.device(device)
    if device.type == "cpu":
        return "native" if native.available() else "torch"
    if device.type == "cuda":
        from . import triton_kernel
        return "triton" if triton_kernel.available() else "torch"
    return "torch"


def _native_fits(problem: AcimProblem) -> bool:
    """Within the native kernel's limits; cell mismatch makes MACs non-integer (torch path)."""
    plan = problem.plan
    return problem.cells is None and problem.num_votes <= native.MAX_VOTES \
        and plan.chip.input.bits <= native.MAX_INPUT_BITS \
        and plan.chip.input.bits * plan.weight_bits <= native.MAX_PLANE_PAIRS


# Packed weight bit planes per weight tensor: {id: (weak ref, version, key, packed)}.
_PACKED: dict[int, tuple] = {}


def _packed_weights(w: torch.Tensor, tiles, bits: int, n0: int, n1: int) -> torch.Tensor:
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


def _run_native(problem: AcimProblem, memory_budget: int) -> torch.Tensor:
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
    sigmas = [plan.noise_sigmas(f) for f in fractions]        # (random, non-linear) per tile
    # Column ADC errors (T, bw, N): both or neither (gain 1 and offset 0 are exact no-ops);
    # digital conversions take none (``analog``).
    gain = offset = None
    if problem.column_mismatch:
        shape = (len(problem.tiles), bw, columns)
        gain = (problem.gain if problem.gain is not None else torch.ones(shape)) \
            .to(torch.float32).contiguous()
        offset = (problem.offset if problem.offset is not None else torch.zeros(shape)) \
            .to(torch.float32).contiguous()
    args = dict(
        tiles=problem.tiles, input_bits=chip.input.bits, weight_bits=bw, columns=columns,
        cycle_low=torch.tensor([c.low_bit for c in cycles], dtype=torch.int32),
        cycle_bits=torch.tensor([c.bits for c in cycles], dtype=torch.int32),
        full_scale=torch.tensor([[problem.full_scale(t, c) for c in cycles] for t in tiles],
                                dtype=torch.float32),
        shift_add=torch.tensor(pair.shift_add, dtype=torch.float64),
        sigma=torch.tensor([[0.0 if d else s[0] for d in digital] for s in sigmas],
                           dtype=torch.float32),
        votes=torch.tensor(pair.draws, dtype=torch.int32),
        alpha=torch.tensor(pair.alpha, dtype=torch.float32),
        step=torch.tensor(pair.step, dtype=torch.int64),
        tile_step=problem.step(1, 0, 0), elements=noise.elements if noise else 0,
        col_stride=noise.col_stride if noise else 0,
        nonlinear2=torch.tensor([float(adc.nonlinear_square(s[1])) for s in sigmas],
                                dtype=torch.float32),
        rows=torch.tensor([plan.rows * f for f in fractions], dtype=torch.float32),
        fraction=torch.tensor(fractions, dtype=torch.float64), gain=gain,
        column_offset=offset, analog=torch.tensor([not d for d in digital], dtype=torch.int32),
        levels=plan.adc_levels)
    # The kernel's conversion tables (convert.c: 12 bytes per MAC value, one table per distinct
    # parameter set) count against the budget too.
    memory_budget = max(1, memory_budget - _table_bytes(problem, args))
    # Column blocks whose packed weights take at most half the budget; the other half holds
    # the output rows of a call.
    per_column = packed_weight_bytes(problem) // columns
    width = max(1, min(columns, memory_budget // 2 // max(1, per_column)))
    acc = torch.empty(groups, rows_out, columns, dtype=torch.float64)
    for n0 in range(0, columns, width):
        n1 = min(columns, n0 + width)
        wpack = _packed_weights(w, problem.tiles, bw, n0, n1)
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


def _table_bytes(problem: AcimProblem, args: dict) -> int:
    """Bytes of the native kernel's tables: one per distinct (tile range, alpha, sigma, cycle
    width, non-linear sigma, rows) of MAC values 0..longest tile * (2^bits - 1)."""
    cycles, bw = problem.plan.cycles, problem.plan.weight_bits
    longest = max(k1 - k0 for k0, k1 in problem.tiles)
    full_scale, sigma, alpha = (args[k].tolist() for k in ("full_scale", "sigma", "alpha"))
    nonlinear2, rows = args["nonlinear2"].tolist(), args["rows"].tolist()
    keys = {(full_scale[t][p // bw], alpha[p], sigma[t][p], cycles[p // bw].bits, nonlinear2[t],
             rows[t]) for t in range(len(problem.tiles)) for p in range(len(cycles) * bw)}
    return sum(12 * (longest * ((1 << bits) - 1) + 1) for *_, bits, _, _ in keys)


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


def _run_bit_level(problem: AcimProblem, memory_budget: int) -> torch.Tensor:
    plan = problem.plan
    chip = plan.chip
    x, w = problem.x, problem.w
    device = x.device
    groups, rows_out, _ = x.shape
    columns = w.shape[-1]
    bw, cycles = plan.weight_bits, plan.cycles
    num_cycles = len(cycles)
    levels = plan.adc_levels
    noise = problem.noise
    pairs = plan.pairs                                         # p = c * bw + i
    pair = PairTables.of(problem)

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
    pair_votes = pair.draws
    steps_per_tile = problem.step(1, 0, 0)
    pair_step = per_pair(pair.step, torch.int64)
    pair_alpha = torch.tensor(pair.alpha, dtype=torch.float32, device=device)
    # Digital (hybrid) conversions are exact even in the current domain: no cell mismatch.
    digital_pairs = [(c.index, i) for d, (c, i) in zip(digital, pairs) if d]
    weight_bits = twos_complement(w, bw)                      # (Gw, K, N) int32

    blocks = []                                  # (n0, n1, stacked weights, exact weights)
    for n0, n1 in _column_blocks(columns, num_cycles * bw, device):
        block = weight_bits[:, :, n0:n1]
        cells = None if problem.cells is None else problem.cells[:, :, n0:n1]
        stacked = [_stacked_weights(block, cells, bw, k0, k1) for k0, k1 in problem.tiles]
        exact = [_stacked_weights(block, None, bw, k0, k1) for k0, k1 in problem.tiles] \
            if cells is not None and digital_pairs else None
        blocks.append((n0, n1, stacked, exact))
    widest = max(n1 - n0 for n0, n1, _, _ in blocks)
    # The stacked weight planes are temporaries of this call too.
    weight_bytes = sum(p.numel() * 4 for _, _, stacked, exact in blocks
                       for p in stacked + (exact or []))
    memory_budget = max(1, memory_budget - weight_bytes)

    acc = torch.empty(groups, rows_out, columns, dtype=torch.float64, device=device)
    for r0, r1 in _row_chunks(rows_out, groups * num_cycles * bw * widest, memory_budget,
                              device):
        rc = r1 - r0
        # The chunk's input cycle planes on top of each other: (G, C*Rc, K), built once for
        # every column block.
        stacked_inputs = input_cycle_planes(x[:, r0:r1, :], chip.input.bits,
                                            chip.input.signed, cycles, dim=1) \
            .view(groups, num_cycles * rc, -1)
        for n0, n1, stacked, exact in blocks:
            chunk = torch.zeros(groups, rc, n1 - n0, dtype=torch.float64, device=device)
            stream = offset = None
            if noise is not None:
                stream = noise.stream[:, r0:r1].contiguous()
                offset = (noise.offset[:, r0:r1] + n0 * noise.col_stride).contiguous()
            for t, (k0, k1) in enumerate(problem.tiles):
                if problem.cells is None:
                    mac = torch.matmul(stacked_inputs[:, :, k0:k1], stacked[t])
                else:       # perturbed cells: an exact float64 sum (see mismatch.CELL_GRID)
                    mac = torch.matmul(stacked_inputs[:, :, k0:k1].double(),
                                       stacked[t].double()).float()
                mac = mac.view(groups, num_cycles, rc, bw, n1 - n0)
                if exact is not None:
                    ideal = torch.matmul(stacked_inputs[:, :, k0:k1], exact[t]) \
                        .view(groups, num_cycles, rc, bw, n1 - n0)
                    for c, i in digital_pairs:
                        mac[:, c, :, i, :] = ideal[:, c, :, i, :]
                step = pair_step + t * steps_per_tile
                code = _codes(problem, mac, tile_full_scale[t], pair_alpha, tile_sigmas[t],
                              plan.rows * fractions[t], step, pair_votes, stream, offset,
                              column_term(problem.gain, 1.0, t, n0, n1),
                              column_term(problem.offset, 0.0, t, n0, n1))
                chunk += (code.to(torch.float64) * shift_add).sum(dim=(1, 3)) * fractions[t]
            acc[:, r0:r1, n0:n1] = chunk
    return acc / levels


def _codes(problem: AcimProblem, mac, full_scale, pair_alpha, sigmas, rows, step, pair_votes,
           stream, offset, column_gain=None, column_offset=None) -> torch.Tensor:
    """ADC codes of every conversion of a chunk of one tile (torch path): (G, C, Rc, bw, Nb).
    ``full_scale``: the tile's range per cycle; ``sigmas``: (random per pair, non-linear) in
    units of it; ``rows``: f * rows (M_bin); ``column_gain/offset``: the column ADCs' errors."""
    plan = problem.plan
    groups, num_cycles, rc, bw, columns = mac.shape
    levels = plan.adc_levels
    sigma_random, sigma_nonlinear = sigmas
    alpha = pair_alpha.view(1, num_cycles, 1, bw, 1) if plan.alpha else 0.0
    m = adc.analog_value(mac, full_scale.view(1, num_cycles, 1, 1, 1), alpha)
    noise = problem.noise

    def convert(value):
        if column_gain is not None or column_offset is not None:
            value = adc.column_errors(value, column_gain, column_offset)
        return adc.adc_code(value, levels)

    if noise is None:
        return convert(m)
    stream = stream.view(groups, 1, rc, 1, 1)
    offset = offset.view(groups, 1, rc, 1, 1)
    column_index = torch.arange(columns, device=mac.device).view(1, 1, 1, 1, columns)

    def draws(pair_step):
        counter = pair_step * noise.elements + offset + column_index * noise.col_stride
        return rng.standard_normal_quad(stream, counter)

    # Weight bits 4j..4j+3 share Philox call j: its four normals in order.
    z = torch.stack(draws(step[:, :, :, 0::4, :]), dim=4).flatten(3, 4)[:, :, :, :bw, :]
    if sigma_nonlinear:            # the non-linear term must vanish on digital levels too
        analog = torch.tensor([v > 0 for v in pair_votes], dtype=torch.float32,
                              device=mac.device).view(1, num_cycles, 1, bw, 1)
        z = z * analog
    code = convert(adc.add_noise(m, z, sigma_random, sigma_nonlinear, rows))
    for p, count in enumerate(pair_votes):
        if count <= 1:
            continue
        c, i = divmod(p, bw)
        pair = (slice(None), slice(c, c + 1), slice(None), slice(i, i + 1))
        codes = [code[pair]]
        gain_p = None if column_gain is None else column_gain[pair]
        offset_p = None if column_offset is None else column_offset[pair]
        for v in range(1, count):
            z_vote = quad_part(draws(step[pair] + v), i)
            noisy = adc.add_noise(m[pair], z_vote, sigma_random[pair], sigma_nonlinear, rows)
            if gain_p is not None or offset_p is not None:
                noisy = adc.column_errors(noisy, gain_p, offset_p)
            codes.append(adc.adc_code(noisy, levels))
        code[pair] = adc.majority(torch.stack(codes))
    return code


def _run_weight_parallel(problem: AcimProblem, memory_budget: int) -> torch.Tensor:
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
