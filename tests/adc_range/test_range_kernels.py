"""ADC range (``adc { full_scale ... }``) and fixed-pattern mismatch in the bit-level kernels:
the default is unchanged, the range follows docs/numeric-model.md, "ADC range and fixed-pattern mismatch", literally, and the fast kernel (native
and torch) is bit-identical to the reference with every feature on."""
from __future__ import annotations

import itertools
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from asimc.chip.conversions import ConversionPlan
from asimc.chip.spec import (AdcSpec, ArraySpec, ChipSpec, HybridSpec, InputSpec, MismatchSpec,
                             NoiseSpec, Quantity, VotingSpec, WeightSpec, DomainSpec)
from asimc.kernels import fast, native, reference
from asimc.kernels.mismatch import static_mismatch
from asimc.kernels.problem import AcimProblem, NoiseKeys

BASE = ChipSpec("range-test")


def chip(**blocks) -> ChipSpec:
    return replace(BASE, **blocks)


def pct(v):
    return Quantity(v, "%")


def problem_for(spec: ChipSpec, *, rows_out=13, k=300, n=7, groups=1, noise=False, seed=1,
                mismatch_seed=5, sparse=1.0) -> AcimProblem:
    gen = torch.Generator().manual_seed(seed)
    plan = ConversionPlan(spec)
    bx, signed = spec.input.bits, spec.input.signed
    if signed:
        top = (1 << (bx - 1)) - 1
        x = torch.randint(-top, top + 1, (groups, rows_out, k), generator=gen)
    else:
        x = torch.randint(0, 1 << bx, (groups, rows_out, k), generator=gen)
    # Sparse inputs keep MACs small, as in a real layer (a range below rows then matters).
    x = x * (torch.rand(x.shape, generator=gen) < sparse)
    top_w = (1 << (spec.weight.bits - 1)) - 1
    w = torch.randint(-top_w, top_w + 1, (1, k, n), generator=gen)
    rows = spec.array.rows
    tiles = tuple((k0, min(k, k0 + rows)) for k0 in range(0, k, rows))
    keys = None
    if noise:
        stream = torch.randint(-2 ** 62, 2 ** 62, (groups, rows_out), generator=gen)
        offset = torch.arange(groups * rows_out).view(groups, rows_out) * n
        keys = NoiseKeys(stream, offset, 1, groups * rows_out * n)
    fixed = static_mismatch(plan, mismatch_seed, 11, tiles, k, n, torch.device("cpu"))
    return AcimProblem(x.float(), w.float(), plan, tiles, keys, fixed.cells, fixed.gain,
                       fixed.offset)


def literal(problem: AcimProblem) -> np.ndarray:
    """docs/numeric-model.md with the ADC range, noiseless, written out in float64 numpy."""
    plan = problem.plan
    x = problem.x[0].numpy().astype(np.int64)
    w = problem.w[0].numpy().astype(np.int64)
    bw, levels = plan.weight_bits, plan.adc_levels
    wu = np.where(w < 0, w + (1 << bw), w)
    acc = np.zeros((x.shape[0], w.shape[1]))
    for t, (k0, k1) in enumerate(problem.tiles):
        for i in range(bw):
            bit = (wu[k0:k1] >> i) & 1
            for cycle in plan.cycles:
                g = (x[:, k0:k1] >> cycle.low_bit) & cycle.max_group_value
                full = plan.range_fraction(k1 - k0) * plan.full_scale(cycle)
                mac = g @ bit
                code = np.round(np.clip(mac / full, 0, 1) * levels)
                acc += plan.sign(i, cycle) * code / levels * full * 2.0 ** (i + cycle.low_bit)
    return acc


@pytest.mark.parametrize("full_scale,pow2", [(pct(12.5), False), (pct(30.0), True),
                                             ("used_rows", False), ("used_rows", True)])
def test_the_range_is_the_literal_model(full_scale, pow2):
    spec = chip(array=ArraySpec(rows=128), adc=AdcSpec(6, full_scale, pow2))
    problem = problem_for(spec, k=200, n=5, sparse=0.3)
    got = reference.run(problem)[0].numpy()
    want = literal(problem)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-9)
    # ... and it is not the rows range, which loses other bits.
    rows_range = reference.run(replace(problem, plan=ConversionPlan(replace(
        spec, adc=AdcSpec(6)))))[0].numpy()
    assert not np.array_equal(got, rows_range)


def test_full_scale_rows_and_100_percent_are_the_default_bit_for_bit():
    base = problem_for(chip(), noise=True)
    want = reference.run(base)
    for adc in (AdcSpec(8, "rows"), AdcSpec(8, pct(100.0)), AdcSpec(8, "rows", True)):
        problem = replace(base, plan=ConversionPlan(chip(adc=adc)))
        assert torch.equal(reference.run(problem), want)
        assert torch.equal(fast.run(problem), want)


def test_a_smaller_range_clips_and_a_larger_mac_saturates():
    # 1-bit input, weights 1 on all rows: M = active rows. full_scale 25% of 60 rows: F = 15
    # = L of a 4-bit ADC, so a MAC of 8 converts exactly and one of 40 clips at the top code.
    spec = chip(array=ArraySpec(rows=60), weight=WeightSpec(2), input=InputSpec(1),
                adc=AdcSpec(4, pct(25.0)))
    x = torch.zeros(1, 2, 60)
    x[0, 0, :8] = 1
    x[0, 1, :40] = 1
    w = torch.zeros(1, 60, 1)
    w[0, :, 0] = 1
    problem = AcimProblem(x, w, ConversionPlan(spec), ((0, 60),))
    out = reference.run(problem)[0, :, 0].tolist()
    assert out == [pytest.approx(8.0), pytest.approx(15.0)]
    assert torch.equal(fast.run(problem), reference.run(problem))


RANGE_CHIPS = {
    "fraction": chip(adc=AdcSpec(8, pct(12.3))),
    "fraction-pow2-noisy": chip(adc=AdcSpec(8, pct(30.0), True),
                                noise=NoiseSpec(pct(0.4), pct(1.0))),
    "used-rows-lsb-noise": chip(array=ArraySpec(rows=128), adc=AdcSpec(7, "used_rows"),
                                noise=NoiseSpec(Quantity(1, "lsb"))),
    "parallel-4-hybrid": chip(input=InputSpec(8, False, 4), adc=AdcSpec(8, pct(20.0)),
                              hybrid=HybridSpec(2), noise=NoiseSpec(pct(0.5))),
    "signed-voting": chip(input=InputSpec(8, True, 2), adc=AdcSpec(6, pct(40.0)),
                          voting=VotingSpec(2, 3), noise=NoiseSpec(Quantity(0.8, "lsb"))),
    "weight-parallel": chip(weight=WeightSpec(4, True), input=InputSpec(4),
                            adc=AdcSpec(8, pct(25.0)), noise=NoiseSpec(Quantity(1, "lsb")),
                            mismatch=MismatchSpec(Quantity(0.5, "lsb"), pct(1.0))),
    "mismatch-all": chip(mismatch=MismatchSpec(Quantity(0.5, "lsb"), pct(1.0), pct(2.0))),
    "mismatch-ranged-noisy-hybrid": chip(
        adc=AdcSpec(8, pct(25.0)), noise=NoiseSpec(pct(0.3)), hybrid=HybridSpec(1),
        mismatch=MismatchSpec(pct(0.2), pct(1.0), pct(1.0))),
    "mismatch-current-voting": chip(
        domain=DomainSpec("current", 0.003), noise=NoiseSpec(Quantity(1, "lsb")),
        voting=VotingSpec(2, 3), mismatch=MismatchSpec(Quantity(1, "lsb"), pct(2.0), pct(1.0))),
}


@pytest.fixture(params=["native", "torch"])
def backend(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr(native, "library", lambda: None)
    elif not native.available() and os.environ.get("ASIMC_NATIVE") != "0":
        pytest.fail("the native kernel does not build here; set ASIMC_NATIVE=0 to test torch")
    return request.param


@pytest.mark.parametrize("name", RANGE_CHIPS)
def test_fast_equals_reference(name, backend):
    spec = RANGE_CHIPS[name]
    problem = problem_for(spec, noise=ConversionPlan(spec).has_noise, groups=2, sparse=0.4)
    want = reference.run(problem)
    for budget in (1 << 12, 1 << 30):
        assert torch.equal(fast.run(problem, memory_budget=budget), want)


def test_percent_noise_is_relative_to_the_rows_swing_and_lsb_to_the_adc():
    rows = ConversionPlan(chip(noise=NoiseSpec(pct(0.4), pct(1.0))))
    ranged = ConversionPlan(chip(noise=NoiseSpec(pct(0.4), pct(1.0)), adc=AdcSpec(8, pct(25.0))))
    assert ranged.noise_sigmas(0.25) == pytest.approx((0.016, 0.04))
    assert rows.noise_sigmas(1.0) == pytest.approx((0.004, 0.01))
    lsb = ConversionPlan(chip(noise=NoiseSpec(Quantity(1, "lsb")), adc=AdcSpec(8, pct(25.0))))
    assert lsb.noise_sigmas(0.25)[0] == pytest.approx(1 / 255)


def test_lossless_takes_the_range_and_the_tile_into_account():
    plan = ConversionPlan(chip(array=ArraySpec(rows=255), adc=AdcSpec(8, "used_rows")))
    c = plan.cycles[0]
    assert plan.is_lossless(c, 255) and plan.is_lossless(c, 85) and plan.is_lossless(c, 15)
    assert not plan.is_lossless(c, 9) and not plan.is_lossless(c)
    clipped = ConversionPlan(chip(array=ArraySpec(rows=510), adc=AdcSpec(8, pct(50.0))))
    assert not clipped.is_lossless(clipped.cycles[0])       # F = 255 = L, but MACs above clip


# ---- fixed-pattern mismatch: statistics and identity across samples ---------------------------

def test_mismatch_draws_have_the_written_sigmas():
    spec = chip(adc=AdcSpec(8, pct(50.0)),
                mismatch=MismatchSpec(pct(0.4), pct(1.0), pct(2.0)))
    plan = ConversionPlan(spec)
    tiles = ((0, 255), (255, 300))
    fixed = static_mismatch(plan, 3, 7, tiles, 300, 400, torch.device("cpu"))
    assert fixed.cells.shape == (8, 300, 400) and fixed.gain.shape == (2, 8, 400)
    assert fixed.cells.std().item() == pytest.approx(0.02, rel=0.05)
    assert (fixed.gain - 1).std().item() == pytest.approx(0.01, rel=0.05)
    # 0.4% of the rows swing is 0.8% of a range half as large (the offset is in range units).
    assert fixed.offset[0].std().item() == pytest.approx(0.008, rel=0.05)
    assert abs(fixed.cells.mean().item()) < 1e-3 and abs((fixed.gain - 1).mean().item()) < 1e-3
    # A function of the seed: the same again, different for another seed, and the three kinds
    # of draws are independent.
    again = static_mismatch(plan, 3, 7, tiles, 300, 400, torch.device("cpu"))
    other = static_mismatch(plan, 4, 7, tiles, 300, 400, torch.device("cpu"))
    assert torch.equal(again.cells, fixed.cells) and torch.equal(again.offset, fixed.offset)
    assert not torch.equal(other.gain, fixed.gain)
    corr = np.corrcoef(fixed.gain.flatten().numpy(), fixed.offset.flatten().numpy())[0, 1]
    assert abs(corr) < 0.05


def test_lsb_offset_sigma_is_one_adc_step_of_the_range():
    plan = ConversionPlan(chip(adc=AdcSpec(6, pct(25.0)),
                               mismatch=MismatchSpec(Quantity(0.5, "lsb"))))
    fixed = static_mismatch(plan, 0, 1, ((0, 255),), 255, 20000, torch.device("cpu"))
    assert fixed.offset.std().item() == pytest.approx(0.5 / 63, rel=0.05)
    assert fixed.gain is None and fixed.cells is None
