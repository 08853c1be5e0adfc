"""Input-driver mismatch (`mismatch { dac }`, docs/numeric-model.md section 8c) in the kernels:
every path bit-identical to the reference, the documented model literally, reproducible per
seed, and nothing changed at 0."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from asimc.chip.conversions import NORMAL_BOUND, ConversionPlan
from asimc.chip.spec import (AdcSpec, ArraySpec, DomainSpec, HybridSpec, InputSpec,
                             MismatchSpec, NoiseSpec, Quantity, VotingSpec)
from asimc.kernels import fast, native, native_path, reference, rng, torch_path
from asimc.kernels.mismatch import static_mismatch
from asimc.kernels.problem import AcimProblem

from .test_kernels import (assert_native_gives_the_reference_bits, backend,  # noqa: F401
                           chip, random_problem)

CPU = torch.device("cpu")
LSB = NoiseSpec(Quantity(1, "lsb"))


def pct(value: float) -> Quantity:
    return Quantity(value, "%")


def dac(sigma: float = 2.0, **more) -> MismatchSpec:
    return MismatchSpec(dac=pct(sigma), **more)


# Rows 37 over K = 100: tiles of 37, 37 and 26 rows (a short last tile).
ODD = ArraySpec(rows=37)
DAC_CHIPS = {
    "serial": chip(mismatch=dac()),
    "serial-noisy": chip(mismatch=dac(), noise=LSB),
    "parallel-2-noisy": chip(input=InputSpec(8, False, 2), mismatch=dac(), noise=LSB),
    "parallel-3-uneven": chip(input=InputSpec(8, False, 3), adc=AdcSpec(9), mismatch=dac(3.0)),
    "signed-serial-noisy": chip(input=InputSpec(8, True, 1), adc=AdcSpec(6), mismatch=dac(),
                                noise=LSB),
    "signed-parallel-3": chip(input=InputSpec(7, True, 3), adc=AdcSpec(9), mismatch=dac()),
    "cells-noisy": chip(input=InputSpec(8, False, 2), noise=LSB,
                        mismatch=dac(cell=pct(2.0))),
    "cells-hybrid": chip(hybrid=HybridSpec(2), mismatch=dac(cell=pct(1.0))),
    "hybrid-noisy": chip(hybrid=HybridSpec(2), input=InputSpec(8, False, 2), noise=LSB,
                         mismatch=dac()),
    "voting": chip(voting=VotingSpec(2, 3), noise=LSB, mismatch=dac()),
    "columns-range": chip(adc=AdcSpec(7, "used_rows"), noise=LSB,
                          mismatch=dac(adc_offset=Quantity(0.5, "lsb"), adc_gain=pct(1.0))),
    "current": chip(domain=DomainSpec("current", 0.003, pct(1.0)), noise=LSB, mismatch=dac()),
    "nonlinear-ranged-cells": chip(adc=AdcSpec(8, pct(40.0)), noise=NoiseSpec(pct(0.4), pct(1.0)),
                                   mismatch=dac(cell=pct(1.0))),
    "current-voting-hybrid-columns": chip(
        domain=DomainSpec("current", 0.003, pct(1.0)), input=InputSpec(8, True, 2),
        voting=VotingSpec(2, 3), hybrid=HybridSpec(1), noise=NoiseSpec(pct(0.3)),
        mismatch=dac(adc_offset=Quantity(0.5, "lsb"), adc_gain=pct(1.0))),
}


def dac_problem(spec, *, groups=1, weight_groups=1, rows_out=11, k=100, n=7, seed=2,
                mismatch_seed=5) -> AcimProblem:
    plan = ConversionPlan(spec)
    base = random_problem(replace(spec, array=ODD), groups=groups, weight_groups=weight_groups,
                          rows_out=rows_out, k=k, n=n, noise=plan.has_noise, seed=seed)
    plan = ConversionPlan(replace(spec, array=ODD))
    fixed = static_mismatch(plan, mismatch_seed, 11, base.tiles, k, n, CPU)
    assert fixed.drivers is not None
    return replace(base, cells=fixed.cells, gain=fixed.gain, offset=fixed.offset,
                   drivers=fixed.drivers)


@pytest.mark.parametrize("name", DAC_CHIPS)
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_every_path_is_bit_identical_to_the_reference(name, dynamic, backend):
    problem = dac_problem(DAC_CHIPS[name], groups=3 if dynamic else 1,
                          weight_groups=3 if dynamic else 1)
    assert problem.tiles == ((0, 37), (37, 74), (74, 100))
    want = reference.run(problem)
    for budget in (1 << 12, 1 << 30):        # many chunks, one chunk
        assert torch.equal(torch_path.run(problem, budget), want)
        assert torch.equal(fast.run(problem, memory_budget=budget), want)


@pytest.mark.parametrize("name", DAC_CHIPS)
def test_the_native_kernel_converts_non_integer_macs(name, monkeypatch):
    """Driver (and cell) mismatch runs on the native kernel, not the torch path, and gives the
    reference's bits whatever the thread count."""
    problem = dac_problem(DAC_CHIPS[name], groups=2, rows_out=13, n=45)
    assert native_path.fits(problem)
    threads = torch.get_num_threads()
    try:
        for count in (1, max(2, threads)):
            torch.set_num_threads(count)
            assert_native_gives_the_reference_bits(problem, monkeypatch,
                                                   (1 << 12, 1 << 16, 1 << 30))
    finally:
        torch.set_num_threads(threads)


def test_the_result_does_not_depend_on_the_batch():
    """A sample's rows give the same numbers alone and within a batch (drivers are static)."""
    problem = dac_problem(DAC_CHIPS["parallel-2-noisy"], rows_out=12)
    whole = fast.run(problem)
    noise = problem.noise
    for r0, r1 in ((0, 1), (1, 8), (8, 12)):
        part = replace(problem, x=problem.x[:, r0:r1],
                       noise=replace(noise, stream=noise.stream[:, r0:r1],
                                     offset=noise.offset[:, r0:r1]))
        assert torch.equal(fast.run(part), whole[:, r0:r1])
        assert torch.equal(reference.run(part), whole[:, r0:r1])


def test_drivers_are_static_per_seed_and_layer_and_row():
    plan = ConversionPlan(chip(input=InputSpec(8, False, 2), mismatch=dac()))
    tiles = ((0, 37), (37, 74), (74, 100))
    drivers = static_mismatch(plan, 5, 11, tiles, 100, 7, CPU).drivers
    assert drivers.shape == (37, 4) and drivers.dtype == torch.float64
    assert torch.equal(drivers, static_mismatch(plan, 5, 11, tiles, 100, 7, CPU).drivers)
    assert not torch.equal(drivers, static_mismatch(plan, 6, 11, tiles, 100, 7, CPU).drivers)
    assert not torch.equal(drivers, static_mismatch(plan, 5, 12, tiles, 100, 7, CPU).drivers)
    # Per array row: a layer with shorter tiles uses the first rows' drivers.
    short = static_mismatch(plan, 5, 11, ((0, 20), (20, 40)), 40, 7, CPU).drivers
    assert torch.equal(short, drivers[:20])
    # 0 drives 0; the levels are multiples of 2^-14 near g.
    assert torch.all(drivers[:, 0] == 0)
    assert torch.equal(torch.round(drivers * 2 ** 14), drivers * 2 ** 14)
    g = torch.arange(4, dtype=torch.float64)
    assert torch.all((drivers - g).abs() <= 0.02 * 6 * g + 2 ** -15)


def _documented_levels(seed: int, layer: int, rows: int, top: int, sigma: float) -> np.ndarray:
    """Section 8c's rule, from the public generator: d[r, g] for g = 0..top."""
    stream = torch.tensor(rng.combine(seed, layer, 0x64726976), dtype=torch.int64)
    z = rng.standard_normal(stream, torch.arange(rows * top, dtype=torch.int64)).numpy()
    eps = (z * np.float32(sigma)).astype(np.float32).reshape(rows, top)
    g = np.arange(1, top + 1, dtype=np.float64)
    levels = np.maximum(0.0, np.round(g * (1.0 + eps.astype(np.float64)) * 2 ** 14) / 2 ** 14)
    return np.concatenate([np.zeros((rows, 1)), levels], axis=1)


@pytest.mark.parametrize("signed,per_cycle", [(False, 1), (False, 3), (True, 2)])
def test_the_reference_is_the_documented_model(signed, per_cycle):
    """Noiseless: M = sum over a tile's rows of d[k - k0, g] * bit, coded and shift-added as in
    section 5, written out here in numpy from the documented rule."""
    spec = chip(input=InputSpec(7, signed, per_cycle), adc=AdcSpec(8), mismatch=dac(3.0))
    problem = dac_problem(spec, rows_out=6, k=80, n=4, mismatch_seed=9)
    plan = problem.plan
    top = (1 << per_cycle) - 1
    d = _documented_levels(9, 11, 37, top, 0.03)
    x = problem.x[0].numpy().astype(np.int64)
    w = problem.w[0].numpy().astype(np.int64)
    bw, levels = plan.weight_bits, plan.adc_levels
    xu = np.where(x < 0, x + (1 << 7), x)
    wu = np.where(w < 0, w + (1 << bw), w)
    acc = np.zeros((x.shape[0], w.shape[1]))
    for k0, k1 in problem.tiles:
        rows = np.arange(k1 - k0)
        for i in range(bw):
            bit = (wu[k0:k1] >> i) & 1
            for cycle in plan.cycles:
                g = (xu[:, k0:k1] >> cycle.low_bit) & cycle.max_group_value
                mac = (d[rows, g] @ bit).astype(np.float32)
                full = np.float32(plan.full_scale(cycle))
                code = np.round(np.clip(mac / full, 0, 1) * np.float32(levels))
                acc += plan.sign(i, cycle) * code.astype(np.float64) * float(full) \
                    * 2.0 ** (i + cycle.low_bit)
    assert np.array_equal(reference.run(problem)[0].numpy(), acc / levels)


def test_the_error_is_unbiased_and_grows_with_sigma():
    """Against ideal drivers on a fine ADC: mean error about 0, spread about proportional to
    sigma (level errors add up as independent normals over the rows)."""
    spreads = []
    for sigma in (1.0, 4.0):
        spec = chip(adc=AdcSpec(14), input=InputSpec(8, False, 2), mismatch=dac(sigma))
        ideal = replace(spec, mismatch=MismatchSpec())
        problem = dac_problem(spec, rows_out=64, k=100, n=16)
        error = (reference.run(problem) - reference.run(replace(problem, drivers=None,
                                                                plan=ConversionPlan(ideal))))
        spreads.append(float(error.std()))
        assert abs(float(error.mean())) < 0.2 * spreads[-1]
    assert 3.0 < spreads[1] / spreads[0] < 5.0


def test_no_dac_changes_nothing_and_stays_native():
    spec = chip(input=InputSpec(8, False, 2), noise=LSB)
    zero = replace(spec, mismatch=dac(0.0))
    fixed = static_mismatch(ConversionPlan(zero), 5, 11, ((0, 37),), 37, 7, CPU)
    assert fixed.drivers is None
    plain = random_problem(spec, rows_out=9, k=60, n=5, noise=True, seed=4)
    with_zero = replace(plain, plan=ConversionPlan(zero))
    assert torch.equal(fast.run(with_zero), fast.run(plain))
    assert torch.equal(reference.run(with_zero), reference.run(plain))
    if native.available():
        assert native_path.fits(with_zero)


def test_static_normals_stay_below_the_bound_of_the_exactness_proof():
    """perturbed_mac_bits assumes |z| < 6: the largest Box-Muller radius, at the smallest
    uniform (2^-24), is sqrt(48 ln 2) = 5.77."""
    w0 = torch.zeros(4, dtype=torch.int64)
    angles = torch.tensor([0, 1 << 22, 2 << 22, 3 << 22], dtype=torch.int64) << 8
    z = torch.cat(rng.normals_from_words(w0, angles))
    assert 5.76 < float(z.abs().max()) < NORMAL_BOUND


def test_the_triton_kernel_hands_driver_mismatch_to_the_torch_path(monkeypatch):
    # Imported here: tests/kernels/test_triton_kernel.py sets TRITON_INTERPRET before Triton
    # is first imported.
    from asimc.kernels import triton_kernel
    monkeypatch.setenv("TRITON_INTERPRET", "1")          # CPU tensors count as Triton's
    problem = dac_problem(DAC_CHIPS["serial-noisy"])
    assert not triton_kernel.usable(problem)
    assert triton_kernel.usable(replace(problem, drivers=None)) == triton_kernel.available()
