"""The fast kernel: the reference's arithmetic, batched into a few large matrix products.

For each row tile, the input cycle planes are stacked along the rows (C*R rows) and the weight
bit planes along the columns (bw*N columns), so ONE matrix product gives the MAC of every
(cycle, weight bit) pair. Noise, ADC and shift-add are then applied chunk by chunk (a chunk of
rows at a time) so that no more than ``memory_budget`` bytes of temporaries exist at once.

When every conversion is provably exact (lossless ADC, no noise or only on digital levels, no
current-domain effects) the whole product collapses into one integer matrix product.

The elementwise steps call the same functions as the reference kernel (``adc``, ``rng``) in the
same order, and the shift-add sums exact integers in float64, so with noise off the two kernels
are bit-identical, and with noise on they draw the very same random numbers.
"""
from __future__ import annotations

import torch

from . import adc, rng
from .bitplanes import input_cycle_planes, weight_bit_planes
from .problem import AcimProblem

DEFAULT_MEMORY_BUDGET = 1 << 30        # bytes of temporaries per kernel call
# Chunks above this many conversions stop fitting in cache and run slower on CPU.
CACHE_FRIENDLY_CONVERSIONS = 1 << 20
# Bytes of temporaries per conversion: float32 MAC, m, z; int64 counters and random bits;
# float64 shift-add term.
BYTES_PER_CONVERSION = 48


def run(problem: AcimProblem, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """The accumulated product (G, R, N) in integer-product units, float64."""
    if problem.plan.weight_parallel:
        return _run_weight_parallel(problem, memory_budget)
    if _all_exact(problem):
        return torch.matmul(problem.x.double(), problem.w.double())
    return _run_bit_level(problem, memory_budget)


def _all_exact(problem: AcimProblem) -> bool:
    plan = problem.plan
    if problem.cells is not None or plan.alpha:
        return False
    return all(plan.is_lossless(c) and (problem.noise is None or plan.is_digital(i, c))
               for i in range(plan.weight_bits) for c in plan.cycles)


def _row_chunks(rows: int, conversions_per_row: int, memory_budget: int,
                device: torch.device) -> list[tuple[int, int]]:
    budget = max(1, memory_budget // BYTES_PER_CONVERSION)
    if device.type == "cpu":
        budget = min(budget, CACHE_FRIENDLY_CONVERSIONS)
    step = max(1, budget // max(1, conversions_per_row))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


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
    votes = problem.num_votes

    # Per (cycle, weight bit) constants, shaped to broadcast over (G, C, R, bw, N).
    def per_pair(values, dtype):
        return torch.tensor(values, dtype=dtype, device=device).view(1, num_cycles, 1, bw, 1)

    full_scale = torch.tensor([plan.full_scale(c) for c in cycles], dtype=torch.float32,
                              device=device).view(1, num_cycles, 1, 1, 1)
    shift_add = per_pair([[plan.sign(i, c) * plan.full_scale(c) * 2 ** (i + c.low_bit)
                           for i in range(bw)] for c in cycles], torch.float64)
    noisy = problem.noise is not None
    if noisy:
        sigma_random = per_pair([[0.0 if plan.is_digital(i, c) else plan.sigma_random
                                  for i in range(bw)] for c in cycles], torch.float32)
        # The non-linear term also vanishes on digital levels: scale z by an analog mask.
        analog = per_pair([[0.0 if plan.is_digital(i, c) else 1.0 for i in range(bw)]
                           for c in cycles], torch.float32)
        step = per_pair([[((i * num_cycles) + c.index) * votes for i in range(bw)]
                         for c in cycles], torch.int64)
        steps_per_tile = bw * num_cycles * votes
        voted = [(c, i) for c in cycles for i in range(bw)
                 if plan.is_voted(i, c) and not plan.is_digital(i, c) and votes > 1]
        column_index = torch.arange(columns, device=device).view(1, 1, 1, 1, columns)

    input_planes = input_cycle_planes(x, chip.input.bits, chip.input.signed, cycles)
    weight_planes = weight_bit_planes(w, bw)                    # (bw, Gw, K, N)
    if problem.cells is not None:
        weight_planes = weight_planes + problem.cells.unsqueeze(1)

    acc = torch.zeros(groups, rows_out, columns, dtype=torch.float64, device=device)
    chunks = _row_chunks(rows_out, groups * num_cycles * bw * columns, memory_budget, device)
    for t, (k0, k1) in enumerate(problem.tiles):
        # Weight bit planes side by side: (Gw, Kt, bw*N), column block i holds bit i.
        stacked_weights = weight_planes[:, :, k0:k1, :].permute(1, 2, 0, 3) \
            .reshape(weight_planes.shape[1], k1 - k0, bw * columns)
        for r0, r1 in chunks:
            rc = r1 - r0
            # Input cycle planes on top of each other: (G, C*Rc, Kt), row block c = cycle c.
            stacked_inputs = input_planes[:, :, r0:r1, k0:k1].transpose(0, 1) \
                .reshape(groups, num_cycles * rc, k1 - k0)
            mac = torch.matmul(stacked_inputs, stacked_weights) \
                .view(groups, num_cycles, rc, bw, columns)
            m = adc.analog_value(mac, full_scale, plan.alpha)
            if noisy:
                stream = problem.noise.stream[:, r0:r1].view(groups, 1, rc, 1, 1)
                offset = problem.noise.offset[:, r0:r1].view(groups, 1, rc, 1, 1)

                def draw(vote: int, pair_step=None, pair_stream=stream, pair_offset=offset):
                    s = (step if pair_step is None else pair_step) + (t * steps_per_tile + vote)
                    counter = s * problem.noise.elements + pair_offset \
                        + column_index * problem.noise.col_stride
                    return rng.standard_normal(pair_stream, counter)

                z = draw(0)
                if plan.sigma_nonlinear:
                    z = z * analog
                noisy_m = adc.add_noise(m, z, sigma_random, plan.sigma_nonlinear, plan.rows)
                code = adc.adc_code(noisy_m, levels)
                for c, i in voted:
                    pair_m = m[:, c.index:c.index + 1, :, i:i + 1, :]
                    pair_step = ((i * num_cycles) + c.index) * votes
                    codes = [code[:, c.index:c.index + 1, :, i:i + 1, :]]
                    for v in range(1, votes):
                        zv = draw(v, pair_step)
                        codes.append(adc.adc_code(adc.add_noise(
                            pair_m, zv, plan.sigma_random, plan.sigma_nonlinear, plan.rows),
                            levels))
                    code[:, c.index:c.index + 1, :, i:i + 1, :] = adc.majority(
                        torch.stack(codes))
            else:
                code = adc.adc_code(m, levels)
            acc[:, r0:r1, :] += (code.to(torch.float64) * shift_add).sum(dim=(1, 3))
    return acc / levels


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
            v = adc.signed_analog_value(torch.matmul(x64[:, :, k0:k1], w64[:, k0:k1, :]),
                                        full_scale)
            z = None
            if problem.noise is not None:
                counters = t * problem.noise.elements \
                    + problem.noise.offset[:, r0:r1].unsqueeze(-1) \
                    + column_index * problem.noise.col_stride
                z = rng.standard_normal(problem.noise.stream[:, r0:r1].unsqueeze(-1), counters)
            code = adc.signed_adc_code(v, z, plan.sigma_random, plan.adc_levels)
            acc[:, r0:r1, :] += code.to(torch.float64) * full_scale
    return acc / plan.adc_levels
