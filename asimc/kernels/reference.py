"""The reference kernel: docs/numeric-model.md as a plain loop, written to be read.

One loop iteration per conversion step: for every row tile, weight bit, input cycle (and vote),
compute the ideal MAC of that bit plane, convert it like the chip does, and shift-add the code.
Each step is vectorised over the rows and columns of the product only. Slow on purpose; it is
the specification of the random stream (``conversion_model``, ``problem``), and every fast path
is tested bit for bit against it.
"""
from __future__ import annotations

import torch

from . import adc, conversion_model, rng, thresholds
from .bitplanes import input_cycle_planes, weight_bit_planes
from .mismatch import driven_planes
from .problem import AcimProblem, quad_part


def run(problem: AcimProblem) -> torch.Tensor:
    """The accumulated product (G, R, N) in integer-product units, float64."""
    if problem.plan.weight_parallel:
        return _run_weight_parallel(problem)
    plan = problem.plan
    chip = plan.chip
    x, w = problem.x, problem.w
    groups, rows_out, _ = x.shape
    columns = w.shape[-1]
    input_planes = input_cycle_planes(x, chip.input.bits, chip.input.signed, plan.cycles)
    exact_planes = weight_bit_planes(w, plan.weight_bits)
    # Analog conversions see the cells' and drivers' static mismatch; digital ones the exact
    # bits and group values.
    analog_planes = exact_planes if problem.cells is None \
        else exact_planes + problem.cells.unsqueeze(1)
    analog_inputs = input_planes if problem.drivers is None \
        else driven_planes(input_planes, problem.drivers, problem.tiles)
    column_index = torch.arange(columns, device=x.device)
    levels = plan.adc_levels
    table = conversion_model.tables(problem)
    if table.columns is not None or problem.thresholds is not None:
        # per-column transfer table or ADC thresholds (adc_dnl): each bit's physical column
        physical = conversion_model.physical_columns(plan.weight_bits, chip.array.cols,
                                                     column_index)

    # Per tile, the sum of sign * D * F * 2^(i + b_c) (F rows-based): an exact integer held in
    # float64; times the tile's range fraction f, summed over the tiles in order.
    acc = torch.zeros(groups, rows_out, columns, dtype=torch.float64, device=x.device)
    for t, (k0, k1) in enumerate(problem.tiles):
        fraction = problem.fraction(t)
        sigma_random, sigma_nonlinear = plan.noise_sigmas(fraction)
        tile_acc = torch.zeros_like(acc)
        for i in range(plan.weight_bits):
            for cycle in plan.cycles:
                digital = plan.is_digital(i, cycle)
                # 1. The MAC of this tile, weight bit and input cycle.
                if digital or not problem.perturbed:
                    mac = torch.matmul(input_planes[cycle.index, :, :, k0:k1],
                                       exact_planes[i, :, k0:k1, :])
                else:       # perturbed cells or drivers: an exact float64 sum (see mismatch)
                    mac = torch.matmul(analog_inputs[cycle.index, :, :, k0:k1].double(),
                                       analog_planes[i, :, k0:k1, :].double()).float()
                # 2. Normalise to the ADC range (current domain, analog conversions: gain
                #    compression first).
                m = adc.analog_value(mac, problem.full_scale(t, cycle),
                                     0.0 if digital else plan.alpha)

                def convert(value):
                    """The column ADC (with its fixed-pattern errors on analog conversions)."""
                    if problem.column_mismatch and not digital:
                        value = adc.column_errors(
                            value, None if problem.gain is None else problem.gain[t, i],
                            None if problem.offset is None else problem.offset[t, i])
                        if problem.thresholds is not None:
                            return thresholds.count_reached(value,
                                                            problem.thresholds[physical[i]])
                    return adc.adc_code(value, levels)

                # 3-4. Noise on analog conversions (several times when voted), then the ADC:
                #      a code drawn from its distribution given M (one 32-bit word), or a
                #      normal added to the analog value where that is not a function of M.
                if problem.noise is None or digital:
                    code = convert(m)
                else:
                    votes = problem.num_votes if plan.is_voted(i, cycle) else 1
                    pair = cycle.index * plan.weight_bits + i
                    row = table.base[t][pair]
                    column_map = table.column_map[t][pair] if table.column_map else -1
                    codes = []
                    for v in range(votes):
                        counters = problem.noise.counters(problem.step(t, i, cycle.index, v),
                                                          column_index)
                        stream = problem.noise.stream.unsqueeze(-1)
                        if problem.draws_codes:
                            word = quad_part(rng.random_words(stream, counters), i)
                            if column_map >= 0:     # the distribution of M and its column
                                entry = column_map + mac.long() * table.columns.physical \
                                    + physical[i]
                                codes.append(conversion_model.draw_measured(
                                    table.columns, entry, word))
                            else:
                                codes.append(conversion_model.draw(table, row + mac.long(),
                                                                   word))
                        else:
                            z = quad_part(rng.standard_normal_quad(stream, counters), i)
                            sigma = adc.noise_sigma(m, sigma_random, sigma_nonlinear,
                                                    plan.rows * fraction)
                            codes.append(convert(adc.add_noise(m, z, sigma)))
                    code = adc.majority(torch.stack(codes))
                # 5. Shift-add with the sign of the weight MSB / input sign cycle.
                weight = plan.sign(i, cycle) * plan.full_scale(cycle) * 2 ** (i + cycle.low_bit)
                tile_acc += code.to(torch.float64) * weight
        acc += tile_acc * fraction
    return acc / levels


def _run_weight_parallel(problem: AcimProblem) -> torch.Tensor:
    """Full bit-parallel: one signed conversion of each row tile's whole product."""
    plan = problem.plan
    x, w = problem.x, problem.w
    groups, rows_out, _ = x.shape
    columns = w.shape[-1]
    column_index = torch.arange(columns, device=x.device)
    full_scale = plan.parallel_full_scale
    acc = torch.zeros(groups, rows_out, columns, dtype=torch.float64, device=x.device)
    for t, (k0, k1) in enumerate(problem.tiles):
        fraction = problem.fraction(t)
        tile_product = torch.matmul(x[:, :, k0:k1].double(), w[:, k0:k1, :].double())
        v = adc.signed_analog_value(tile_product, full_scale * fraction)
        z = None
        if problem.noise is not None:
            z = rng.standard_normal(problem.noise.stream.unsqueeze(-1),
                                    problem.noise.counters(t, column_index))
        code = adc.signed_adc_code(v, z, plan.noise_sigmas(fraction)[0], plan.adc_levels,
                                   None if problem.gain is None else problem.gain[t, 0],
                                   None if problem.offset is None else problem.offset[t, 0])
        acc += code.to(torch.float64) * full_scale * fraction
    return acc / plan.adc_levels
