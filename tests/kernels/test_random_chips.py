"""Random chips from the whole configuration space, written in the chip language: the fast
kernel (native and torch paths) gives the reference kernel's bits on each.

The named chips of the other kernel tests cover each feature; this covers their combinations
(input widths and cycles, signed inputs, odd row counts and tiles, ADC bits and ranges, both
domains, noise, every kind of mismatch, hybrid levels, voting) on small random products. The
chips and operands come from fixed seeds, so a failure names a chip that can be rerun.
"""
from __future__ import annotations

import random

import pytest
import torch

from asimc.chip import parse_chip
from asimc.chip.conversions import ConversionPlan
from asimc.kernels import fast, native, reference
from asimc.kernels.mismatch import static_mismatch
from asimc.kernels.problem import AcimProblem, NoiseKeys

CHIPS = 120


def chip_text(r: random.Random) -> str:
    weight_bits = r.randint(2, 8)
    signed = r.random() < 0.5
    input_bits = r.randint(2 if signed else 1, 8)
    per_cycle = r.randint(1, input_bits - 1 if signed else input_bits) if r.random() < 0.5 \
        else 1
    rows = r.choice([r.randint(1, 40), r.randint(40, 300)])
    current = r.random() < 0.2
    full_scale = r.choice(["rows", "used_rows", "12.5%", "30%", "100%", "37% pow2"])
    lines = [
        f"array {{ rows {rows} cols {r.randint(weight_bits, 64)} }}",
        f"weight {{ bits {weight_bits} serial }}",
        f"input {{ bits {input_bits} {'signed' if signed else 'unsigned'} "
        + (f"parallel {per_cycle} }}" if per_cycle > 1 else "serial }"),
        f"adc {{ bits {r.randint(2, 10)} full_scale {full_scale} }}"]
    if current:
        lines.append(f"domain current {{ alpha {r.choice([0, 0.001, 0.01])} "
                     f"cell_variation {r.choice([0, 1, 3])}% }}")
    if r.random() < 0.7:
        nonlinear = 0 if current else r.choice([0, 0.5, 2])
        lines.append(f"noise {{ random {r.choice([0, 0.3, 1, 2.5])} lsb "
                     f"nonlinear {nonlinear} lsb }}")
    mismatch = [field for field, p in (
        (f"adc_offset {r.choice([0.2, 1])} lsb", 0.3), (f"adc_gain {r.choice([0.5, 2])}%", 0.3),
        (f"cell {r.choice([0.5, 2])}%", 0 if current else 0.2),
        (f"adc_dnl {r.choice([0.1, 0.4, 1.5])} lsb", 0.3), (f"dac {r.choice([0.5, 3])}%", 0.3))
        if r.random() < p]
    if mismatch:
        lines.append("mismatch { " + "  ".join(mismatch) + " }")
    levels = ConversionPlan(parse_chip("chip \"r\" {" + "\n".join(lines) + "}", "r.acim")) \
        .num_levels
    if r.random() < 0.3:
        lines.append(f"hybrid {{ digital_levels {r.randint(1, levels)} }}")
    if r.random() < 0.3:
        lines.append(f"voting {{ levels {r.randint(1, levels)} samples {r.choice([3, 5])} }}")
    return "chip \"r\" {\n    " + "\n    ".join(lines) + "\n}"


def random_problem(text: str, r: random.Random, seed: int) -> AcimProblem:
    spec = parse_chip(text, "r.acim")
    plan = ConversionPlan(spec)
    gen = torch.Generator().manual_seed(seed)
    groups, rows_out, k, n = r.choice([1, 2]), r.randint(1, 12), r.randint(1, 200), r.randint(1, 9)
    bits = spec.input.bits
    if spec.input.signed:
        x = torch.randint(-(1 << (bits - 1)), 1 << (bits - 1), (groups, rows_out, k), generator=gen)
    else:
        x = torch.randint(0, 1 << bits, (groups, rows_out, k), generator=gen)
    top = 1 << (spec.weight.bits - 1)
    w = torch.randint(-top, top, (r.choice([1, groups]), k, n), generator=gen)
    tiles = tuple((k0, min(k, k0 + spec.array.rows)) for k0 in range(0, k, spec.array.rows))
    keys = None
    if plan.has_noise:
        stream = torch.randint(-2 ** 62, 2 ** 62, (groups, rows_out), generator=gen)
        keys = NoiseKeys(stream, torch.arange(groups * rows_out).view(groups, rows_out) * n, 1,
                         groups * rows_out * n)
    m = static_mismatch(plan, seed, 11, tiles, k, n, torch.device("cpu"))
    return AcimProblem(x.float(), w.float(), plan, tiles, keys, m.cells, m.gain, m.offset,
                       m.drivers, m.thresholds)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["native", "torch"])
def test_random_chips_give_the_reference_bits(path, monkeypatch):
    if path == "torch":
        monkeypatch.setattr(native, "library", lambda: None)
    elif not native.available():
        pytest.fail("the native kernel does not build here (no C compiler?)")
    r = random.Random(19)
    for case in range(CHIPS):
        text = chip_text(r)
        problem = random_problem(text, r, seed=case)
        want = reference.run(problem)
        for budget in (1 << 12, 1 << 30):
            got = fast.run(problem, memory_budget=budget)
            assert torch.equal(got, want), f"case {case}, budget {budget}:\n{text}"
