"""The bit-level kernels against the literal model and against each other."""
from __future__ import annotations

import itertools
import os
import math
from dataclasses import replace

import pytest
import torch

from asimc.chip.conversions import ConversionPlan
from asimc.chip.spec import (AdcSpec, ArraySpec, ChipSpec, DomainSpec, HybridSpec, InputSpec,
                             MismatchSpec,
                             NoiseSpec, Quantity, VotingSpec, WeightSpec)
from asimc.kernels import fast, native, reference, rng, torch_path
from asimc.kernels.mismatch import static_mismatch
from asimc.kernels.problem import AcimProblem, NoiseKeys

from .literal_model import literal_acc

BASE = ChipSpec("kernel-test")


def chip(**blocks) -> ChipSpec:
    return replace(BASE, **blocks)


def random_problem(spec: ChipSpec, *, groups=1, rows_out=9, k=40, n=5, weight_groups=1,
                   noise=False, seed=0) -> AcimProblem:
    gen = torch.Generator().manual_seed(seed)
    plan = ConversionPlan(spec)
    bx, signed = spec.input.bits, spec.input.signed
    if signed:
        top = (1 << (bx - 1)) - 1
        x = torch.randint(-top, top + 1, (groups, rows_out, k), generator=gen)
    else:
        x = torch.randint(0, 1 << bx, (groups, rows_out, k), generator=gen)
    top_w = (1 << (spec.weight.bits - 1)) - 1
    w = torch.randint(-top_w, top_w + 1, (weight_groups, k, n), generator=gen)
    rows = spec.array.rows
    tiles = tuple((k0, min(k, k0 + rows)) for k0 in range(0, k, rows))
    keys = None
    if noise:
        stream = torch.randint(-2 ** 62, 2 ** 62, (groups, rows_out), generator=gen)
        offset = torch.arange(groups * rows_out).view(groups, rows_out) * n
        keys = NoiseKeys(stream, offset, 1, groups * rows_out * n)
    cells = static_mismatch(plan, seed, 11, ((0, k),), k, n, torch.device("cpu")).cells
    return AcimProblem(x.float(), w.float(), plan, tiles, keys, cells)


LITERAL_CASES = [
    dict(wbits=4, xbits=4, signed=False, per_cycle=1, rows=16, adc_bits=3),
    dict(wbits=4, xbits=4, signed=False, per_cycle=1, rows=15, adc_bits=4),    # lossless
    dict(wbits=3, xbits=5, signed=False, per_cycle=2, rows=16, adc_bits=5),    # uneven top group
    dict(wbits=4, xbits=6, signed=False, per_cycle=4, rows=20, adc_bits=6),
    dict(wbits=4, xbits=5, signed=True, per_cycle=1, rows=16, adc_bits=4),
    dict(wbits=5, xbits=6, signed=True, per_cycle=2, rows=17, adc_bits=7),     # sign cycle apart
    dict(wbits=4, xbits=4, signed=False, per_cycle=1, rows=16, adc_bits=3, digital_levels=2),
]


@pytest.mark.parametrize("case", LITERAL_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_reference_kernel_equals_the_literal_model(case):
    spec = chip(weight=WeightSpec(case["wbits"]),
                input=InputSpec(case["xbits"], case["signed"], case["per_cycle"]),
                adc=AdcSpec(case["adc_bits"]), array=ArraySpec(rows=case["rows"]),
                hybrid=HybridSpec(case.get("digital_levels", 0)))
    problem = random_problem(spec, rows_out=4, k=37, n=3, seed=3)
    got = reference.run(problem)[0]
    x = problem.x[0].long().tolist()
    w = problem.w[0].long().tolist()
    want = literal_acc(x, w, tiles=list(problem.tiles), **case)
    for r, n in itertools.product(range(4), range(3)):
        assert got[r, n].item() == float(want[r][n]), (r, n)


KERNEL_CHIPS = {
    "bit-serial": chip(),
    "parallel-2": chip(input=InputSpec(8, False, 2)),
    "parallel-3-uneven": chip(input=InputSpec(8, False, 3)),
    "parallel-4": chip(input=InputSpec(8, False, 4), adc=AdcSpec(10)),
    "signed-serial": chip(input=InputSpec(8, True, 1), adc=AdcSpec(6)),
    "signed-parallel-3": chip(input=InputSpec(7, True, 3), adc=AdcSpec(9)),
    "adc-3": chip(adc=AdcSpec(3)),
    "adc-10-rows-16": chip(adc=AdcSpec(10), array=ArraySpec(rows=16)),
    "rows-1152": chip(array=ArraySpec(rows=1152), input=InputSpec(5, False, 5)),
    "hybrid-2": chip(hybrid=HybridSpec(2), noise=NoiseSpec(Quantity(1, "lsb"))),
    "hybrid-3-lossless": chip(hybrid=HybridSpec(3), noise=NoiseSpec(Quantity(0.5, "%"))),
    "voting": chip(voting=VotingSpec(2, 5), noise=NoiseSpec(Quantity(1, "lsb"))),
    "nonlinear": chip(noise=NoiseSpec(Quantity(0.2, "%"), Quantity(2.0, "%")),
                      hybrid=HybridSpec(1)),
    "current": chip(domain=DomainSpec("current", 0.002, Quantity(1.0, "%"))),
    "current-noisy": chip(domain=DomainSpec("current", 0.01, Quantity(0.0, "%")),
                          noise=NoiseSpec(Quantity(1, "lsb"))),
    "current-hybrid": chip(domain=DomainSpec("current", 0.005, Quantity(2.0, "%")),
                           noise=NoiseSpec(Quantity(1, "lsb")), hybrid=HybridSpec(2)),
    "weight-parallel": chip(weight=WeightSpec(4, True), input=InputSpec(4), adc=AdcSpec(8)),
    "weight-parallel-noisy": chip(weight=WeightSpec(4, True), input=InputSpec(4, True),
                                  noise=NoiseSpec(Quantity(1, "lsb"))),
}


@pytest.fixture(params=["native", "torch"])
def backend(request, monkeypatch):
    """Run a test with the native conversion step (when it builds here) and without it."""
    if request.param == "torch":
        monkeypatch.setattr(native, "library", lambda: None)
    elif not native.available() and os.environ.get("ASIMC_NATIVE") != "0":
        pytest.fail("the native kernel does not build on this machine (is a C compiler "
                    "installed?); set ASIMC_NATIVE=0 to test the torch path alone")
    return request.param


@pytest.mark.parametrize("name", KERNEL_CHIPS)
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_fast_kernel_is_bit_identical_to_reference(name, dynamic, backend):
    spec = KERNEL_CHIPS[name]
    plan = ConversionPlan(spec)
    problem = random_problem(spec, groups=3 if dynamic else 1, weight_groups=3 if dynamic else 1,
                             rows_out=21, k=300, n=7, noise=plan.has_noise, seed=1)
    want = reference.run(problem)
    # A tiny memory budget forces many chunks; the result must not depend on it.
    for budget in (1 << 12, 1 << 30):
        assert torch.equal(fast.run(problem, memory_budget=budget), want)


@pytest.mark.parametrize("name", ["current", "current-hybrid"])
def test_native_kernel_converts_cell_mismatch(name, monkeypatch):
    """Cell mismatch (non-integer MACs) runs on the native kernel, not the torch path."""
    spec = KERNEL_CHIPS[name]
    problem = random_problem(spec, groups=2, rows_out=13, k=300, n=45,
                             noise=ConversionPlan(spec).has_noise, seed=2)
    assert problem.cells is not None
    assert_native_gives_the_reference_bits(problem, monkeypatch)


def assert_native_gives_the_reference_bits(problem: AcimProblem, monkeypatch,
                                           budgets=(1 << 12, 1 << 30)) -> None:
    """fast.run gives the reference's bits without the torch path, whatever the budget."""
    if not native.available():
        pytest.fail("the native kernel does not build here (no C compiler?)")
    want = reference.run(problem)

    def no_torch_path(*args, **kwargs):
        raise AssertionError("took the torch path")
    monkeypatch.setattr(torch_path, "run", no_torch_path)
    for budget in budgets:
        assert torch.equal(fast.run(problem, memory_budget=budget), want)


def test_lossless_noiseless_chip_equals_the_integer_product():
    spec = chip(array=ArraySpec(rows=255), adc=AdcSpec(8))     # F = 255 = L: lossless
    problem = random_problem(spec, rows_out=17, k=600, n=9)
    exact = torch.matmul(problem.x.double(), problem.w.double())
    assert torch.equal(reference.run(problem), exact)
    assert torch.equal(fast.run(problem), exact)


def test_lossy_adc_is_not_the_integer_product():
    problem = random_problem(chip(adc=AdcSpec(4)), rows_out=17, k=600, n=9)
    exact = torch.matmul(problem.x.double(), problem.w.double())
    assert not torch.equal(fast.run(problem), exact)


def _conversion_errors(spec: ChipSpec, mac_value: int, draws: int) -> torch.Tensor:
    """Errors (in LSB) of ``draws`` independent conversions of one MAC value M.

    1-bit unsigned input, 2-bit weights equal to 1: only weight bit 0 (level 0) sees the MAC;
    level 1 (the idle MSB plane) is made digital so that it adds no noise.
    """
    spec = replace(spec, weight=WeightSpec(2), input=InputSpec(1), hybrid=HybridSpec(1))
    rows = spec.array.rows
    plan = ConversionPlan(spec)
    # One row tile, one weight bit set, unsigned 1-bit input: M = number of active rows.
    x = torch.zeros(1, draws, rows)
    x[:, :, :mac_value] = 1
    w = torch.zeros(1, rows, 1)
    w[0, :, 0] = 1
    keys = NoiseKeys(torch.full((1, draws), 12345, dtype=torch.int64),
                     torch.arange(draws).view(1, draws), 1, draws)
    problem = AcimProblem(x, w, plan, ((0, rows),), keys)
    acc = fast.run(problem)[0, :, 0]
    lsb = plan.full_scale(plan.cycles[0]) / plan.adc_levels
    return (acc - mac_value) / lsb


def rounded_normal_variance(sigma: float) -> float:
    """Var(round(sigma * z)) for z ~ N(0, 1), the error of a lossless conversion of an integer M."""
    def cdf(v):
        return 0.5 * (1 + math.erf(v / math.sqrt(2)))
    return sum(k * k * (cdf((k + 0.5) / sigma) - cdf((k - 0.5) / sigma))
               for k in range(-60, 61))


@pytest.mark.parametrize("mac_value", [64, 128])
def test_random_noise_error_has_the_model_variance(mac_value):
    # rows 255, adc 8: lossless, so the conversion error is round(z * sigma * L) in LSB with
    # sigma = 1.5 LSB (M is far from the clamps at 0 and full scale).
    spec = chip(adc=AdcSpec(8), array=ArraySpec(rows=255), noise=NoiseSpec(Quantity(1.5, "lsb")))
    errors = _conversion_errors(spec, mac_value, 40000)
    assert abs(errors.mean().item()) < 0.03
    assert errors.var().item() == pytest.approx(rounded_normal_variance(1.5), rel=0.04)


def test_nonlinear_noise_shrinks_with_the_mac_value():
    spec = chip(adc=AdcSpec(8), array=ArraySpec(rows=255),
                noise=NoiseSpec(Quantity(0, "%"), Quantity(2, "%")))
    small = _conversion_errors(spec, 15, 20000).var().item()
    large = _conversion_errors(spec, 200, 20000).var().item()
    # sigma = sigma_nl / sqrt(M_bin + 1) of full scale, times L = 255 to get LSB; M_bin = M here.
    assert small == pytest.approx(rounded_normal_variance(0.02 * 255 / 4), rel=0.06)
    assert large == pytest.approx(rounded_normal_variance(0.02 * 255 / math.sqrt(201)), rel=0.06)


def test_majority_voting_reduces_the_error():
    noisy = chip(array=ArraySpec(rows=255), noise=NoiseSpec(Quantity(0.6, "lsb")))
    voted = replace(noisy, voting=VotingSpec(levels=2, samples=5))
    plain = _conversion_errors(noisy, 100, 20000)
    majority = _conversion_errors(voted, 100, 20000)
    # Codes are 0 or +-1 LSB off: voting keeps the most frequent code, which is the right one.
    assert (majority != 0).double().mean() < 0.6 * (plain != 0).double().mean()


def test_fast_and_reference_agree_in_distribution_with_noise():
    spec = chip(noise=NoiseSpec(Quantity(2, "lsb"), Quantity(1, "%")), input=InputSpec(8, False, 2))
    problem = random_problem(spec, rows_out=64, k=255, n=16, noise=True, seed=4)
    exact = torch.matmul(problem.x.double(), problem.w.double())
    err_fast = fast.run(problem) - exact
    err_ref = reference.run(problem) - exact
    assert err_fast.std().item() == pytest.approx(err_ref.std().item(), rel=0.05)
    assert abs(err_fast.mean().item() - err_ref.mean().item()) < 0.1 * err_ref.std().item()


def test_digital_levels_are_exact_in_the_current_domain():
    """Hybrid levels are computed digitally: no cell mismatch and no gain compression there.
    With every level digital, a lossless current-domain chip equals the integer product."""
    spec = chip(domain=DomainSpec("current", 0.01, Quantity(3.0, "%")), input=InputSpec(1),
                weight=WeightSpec(2), hybrid=HybridSpec(2), array=ArraySpec(rows=255))
    problem = random_problem(spec, rows_out=9, k=200, n=4, seed=5)
    assert problem.cells is not None
    exact = torch.matmul(problem.x.double(), problem.w.double())
    assert torch.equal(reference.run(problem), exact)
    assert torch.equal(fast.run(problem), exact)


def test_torch_sqrt_used_by_the_noise_is_correctly_rounded():
    x = torch.rand(2_000_000, generator=torch.Generator().manual_seed(3)) * 60
    import numpy as np
    assert np.array_equal(rng.sqrt32(x).numpy(), np.sqrt(x.numpy()))


def test_native_and_torch_draw_the_same_normals():
    if not native.available():
        pytest.fail("the native kernel does not build here (no C compiler?)")
    counters = torch.cat([torch.arange(0, 1_000_000 * 7, 7, dtype=torch.int64),
                          torch.randint(-2 ** 63, 2 ** 63 - 1, (100_000,), dtype=torch.int64,
                                        generator=torch.Generator().manual_seed(2))])
    stream = rng.combine(1, 2, 3)
    torch_draws = torch.stack(rng.standard_normal_quad(torch.tensor(stream), counters), dim=-1)
    assert torch.equal(native.standard_normal_quads(stream, counters), torch_draws)


# Random123's known-answer vectors for Philox4x32-10: (key, counter) -> words.
PHILOX_KAT = [
    ((0, 0), (0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF,) * 4, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0xA4093822, 0x299F31D0), (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("key, counter, words", PHILOX_KAT)
def test_philox_matches_the_known_answers(key, counter, words):
    assert rng.philox4x32(key, counter) == words


def test_torch_philox_words_are_the_scalar_philox():
    gen = torch.Generator().manual_seed(8)
    streams = torch.randint(-2 ** 63, 2 ** 63 - 1, (64,), dtype=torch.int64, generator=gen)
    counters = torch.randint(-2 ** 63, 2 ** 63 - 1, (64,), dtype=torch.int64, generator=gen)
    words = torch.stack(rng.random_words(streams, counters), dim=-1)
    for s, c, got in zip(streams.tolist(), counters.tolist(), words.tolist()):
        s, c = s % (1 << 64), c % (1 << 64)
        assert tuple(got) == rng.philox4x32((s & 0xFFFFFFFF, s >> 32), (c & 0xFFFFFFFF, c >> 32,
                                                                       0, 0))


def test_native_kernel_does_not_depend_on_the_thread_count():
    spec = chip(noise=NoiseSpec(Quantity(0.4, "%"), Quantity(0.4, "%")))
    problem = random_problem(spec, rows_out=70, k=300, n=40, noise=True, seed=6)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fast.run(problem)
        torch.set_num_threads(max(2, threads))
        assert torch.equal(fast.run(problem), one)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, reference.run(problem))


def test_native_kernel_checks_its_arguments():
    """Real checks, not asserts: a wrong tensor would be read as raw memory."""
    if not native.available():
        pytest.fail("the native kernel does not build here (no C compiler?)")
    with pytest.raises(ValueError, match="w must be torch.float32"):
        native.pack_weights(torch.zeros(1, 4, 3, dtype=torch.float64), ((0, 4),), 4, 0, 3)
    with pytest.raises(ValueError, match="row tile"):
        native.pack_weights(torch.zeros(1, 4, 3), ((0, 9),), 4, 0, 3)


def test_native_build_failure_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("ASIMC_CACHE_DIR", str(tmp_path))
    native.library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="not available .*slower torch path"):
            assert not native.available()
        assert fast.backend("cpu") == "torch"          # said once: no second warning
        problem = random_problem(chip(noise=NoiseSpec(Quantity(1, "lsb"))), noise=True)
        assert torch.equal(fast.run(problem), reference.run(problem))
    finally:
        native.library.cache_clear()


SIMD_CHIPS = ["nonlinear", "voting", "signed-parallel-3", "current-hybrid", "adc-10-rows-16"]


@pytest.mark.parametrize("simd", native.supported_variants())
def test_every_native_variant_gives_the_same_bits(simd, monkeypatch, tmp_path):
    """ASIMC_NATIVE_SIMD forces each build this CPU runs (avx512, avx2, scalar: the last is what
    a CPU without AVX2 gets): every one must give the reference's bits."""
    monkeypatch.setenv("ASIMC_NATIVE_SIMD", simd)
    monkeypatch.setenv("ASIMC_CACHE_DIR", str(tmp_path))
    native.library.cache_clear()
    try:
        if not native.available():
            pytest.fail("the native kernel does not build here (no C compiler?)")
        assert native.simd_level() == native.SIMD_NAMES[simd]
        for name in SIMD_CHIPS:
            spec = KERNEL_CHIPS[name]
            # 45 columns: full 16- and 8-lane vectors, a partial 32-column block and scalar
            # tails.
            problem = random_problem(spec, rows_out=13, k=300, n=45,
                                     noise=ConversionPlan(spec).has_noise, seed=4)
            assert torch.equal(fast.run(problem), reference.run(problem)), name
        for name in ("used-rows-columns", "columns-voting-hybrid-signed"):
            problem = range_problem(name)
            assert torch.equal(fast.run(problem), reference.run(problem)), name
        from .test_adc_dnl import dnl_problem
        for name in ("noisy-offset-gain", "voting-hybrid-signed", "noiseless-hybrid-offset",
                     "wide-dnl-ranged", "dac-cells-noisy", "dac-current-voting-hybrid"):
            problem = dnl_problem(name, n=45, rows_out=5)         # mismatch { adc_dnl }
            assert torch.equal(fast.run(problem), reference.run(problem)), name
        from .test_driver_mismatch import DAC_CHIPS, dac_problem
        for name in ("voting", "cells-hybrid", "nonlinear-ranged-cells",
                     "current-voting-hybrid-columns"):
            problem = dac_problem(DAC_CHIPS[name], rows_out=5, n=45)   # mismatch { dac }
            assert torch.equal(fast.run(problem), reference.run(problem)), name
        counters = torch.arange(0, 7 * 1000, 7, dtype=torch.int64)
        want = torch.stack(rng.random_words(torch.tensor(77), counters), dim=-1)
        assert torch.equal(native.random_words(77, counters), want)
    finally:
        native.library.cache_clear()


def test_the_widest_variant_is_the_default_and_others_can_be_forced(monkeypatch):
    monkeypatch.delenv("ASIMC_NATIVE_SIMD", raising=False)
    assert native.simd_choice() == native.supported_variants()[0]
    monkeypatch.setenv("ASIMC_NATIVE_SIMD", "scalar")
    assert native.simd_choice() == "scalar"


def test_unknown_simd_choice_warns_and_uses_the_default(monkeypatch):
    monkeypatch.setenv("ASIMC_NATIVE_SIMD", "avx9")
    with pytest.warns(RuntimeWarning, match="ASIMC_NATIVE_SIMD='avx9' is not one of"):
        assert native.simd_choice() == native.supported_variants()[0]


def _pct(v):
    return Quantity(v, "%")


# ADC ranges (per tile: a used_rows range differs between a full and a partial tile) and the
# column ADCs' gain and offset, on their own and with every other feature: all native.
NATIVE_RANGE_CHIPS = {
    "fraction-nonlinear": chip(adc=AdcSpec(8, _pct(12.3)), noise=NoiseSpec(_pct(0.4), _pct(1.0))),
    "used-rows-columns": chip(array=ArraySpec(rows=128), adc=AdcSpec(7, "used_rows"),
                              noise=NoiseSpec(Quantity(1, "lsb")),
                              mismatch=MismatchSpec(Quantity(0.5, "lsb"), _pct(1.0))),
    "columns-noiseless": chip(mismatch=MismatchSpec(Quantity(1, "lsb"), _pct(2.0))),
    "offset-only-parallel": chip(input=InputSpec(8, False, 3), adc=AdcSpec(9, _pct(40.0)),
                                 noise=NoiseSpec(_pct(0.3)),
                                 mismatch=MismatchSpec(Quantity(0.7, "lsb"))),
    "columns-voting-hybrid-signed": chip(
        input=InputSpec(8, True, 2), adc=AdcSpec(6, _pct(40.0)), hybrid=HybridSpec(1),
        voting=VotingSpec(2, 3), noise=NoiseSpec(Quantity(0.8, "lsb")),
        mismatch=MismatchSpec(Quantity(0.5, "lsb"), _pct(1.0))),
    "columns-current": chip(domain=DomainSpec("current", 0.003), noise=NoiseSpec(_pct(0.5)),
                            mismatch=MismatchSpec(_pct(0.2), _pct(1.0))),
}


def range_problem(name: str) -> AcimProblem:
    from asimc.kernels.mismatch import static_mismatch
    spec = NATIVE_RANGE_CHIPS[name]
    plan = ConversionPlan(spec)
    base = random_problem(spec, groups=2, rows_out=11, k=300, n=37, noise=plan.has_noise, seed=7)
    fixed = static_mismatch(plan, 5, 11, base.tiles, 300, 37, torch.device("cpu"))
    assert fixed.cells is None
    # Sparse inputs keep MACs small, so that a range below the rows matters.
    x = base.x * (torch.rand(base.x.shape, generator=torch.Generator().manual_seed(1)) < 0.3)
    return replace(base, x=x, gain=fixed.gain, offset=fixed.offset)


@pytest.mark.parametrize("name", NATIVE_RANGE_CHIPS)
def test_native_kernel_takes_adc_ranges_and_column_errors(name, monkeypatch):
    assert_native_gives_the_reference_bits(range_problem(name), monkeypatch)
