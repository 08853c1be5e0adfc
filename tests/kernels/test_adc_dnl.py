"""`mismatch { adc_dnl }`: every physical column's ADC has its own code thresholds
(docs/numeric-model.md, section 8c). The fast kernels (native C, torch) give the reference's
bits, the transfer of a column steps where the documented draws say, the drawn offsets have the
written sigma, and asimc.compile, Program.run and `asimc golden` simulate it reproducibly."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import asimc
from asimc.chip import parse_chip
from asimc.chip.conversions import ConversionPlan
from asimc.cli import main
from asimc.data import load_dataset
from asimc.errors import ChipError
from asimc.kernels import fast, native, reference, rng, torch_path
from asimc.kernels.mismatch import static_mismatch
from asimc.kernels.problem import AcimProblem, NoiseKeys

from .test_kernels import backend  # noqa: F401  (the fixture: native and torch paths)

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "digits_cnn.onnx"
LAYER_KEY = 11


def chip(body: str):
    return parse_chip(f'chip "dnl" {{ {body} }}')


# 24 columns hold 3 output channels of 8-bit weights, so 7 outputs wrap onto the same physical
# columns; 37 rows cut K = 100 into tiles of 37, 37 and 26.
DNL_CHIPS = {
    "noiseless": "array { rows 37 cols 24 } adc { bits 6 } mismatch { adc_dnl 0.5 lsb }",
    "noisy": "array { rows 37 cols 24 } noise { random 1 lsb } mismatch { adc_dnl 0.4 lsb }",
    "noisy-offset-gain": "array { rows 64 cols 40 } adc { bits 7 } "
                         "noise { random 0.3% nonlinear 1% } "
                         "mismatch { adc_offset 0.5 lsb adc_gain 1% adc_dnl 0.3 lsb }",
    "voting-hybrid-signed": "array { rows 37 cols 24 } input { bits 8 signed parallel 2 } "
                            "adc { bits 6 } noise { random 0.8 lsb } "
                            "voting { levels 2 samples 3 } hybrid { digital_levels 1 } "
                            "mismatch { adc_dnl 0.6 lsb }",
    "noiseless-hybrid-offset": "array { rows 37 cols 256 } hybrid { digital_levels 2 } "
                               "mismatch { adc_offset 0.4 lsb adc_dnl 0.5 lsb }",
    "wide-dnl-ranged": "array { rows 37 cols 24 } adc { bits 5 full_scale 30% pow2 } "
                       "noise { random 0.5 lsb } mismatch { adc_dnl 2 lsb }",
    "adc-1-bit": "array { rows 37 cols 24 } adc { bits 1 } noise { random 0.3 lsb } "
                 "mismatch { adc_dnl 0.4 lsb }",
    "dac-cells-noisy": "array { rows 37 cols 24 } input { parallel 2 } noise { random 1 lsb } "
                       "mismatch { adc_dnl 0.4 lsb dac 1% cell 1% }",
    "dac-current-voting-hybrid": "array { rows 37 cols 24 } input { bits 8 signed parallel 2 } "
                                 "adc { bits 6 } noise { random 0.8 lsb } "
                                 "voting { levels 2 samples 3 } hybrid { digital_levels 1 } "
                                 "domain current { alpha 0.003 cell_variation 1% } "
                                 "mismatch { adc_offset 0.3 lsb adc_gain 1% adc_dnl 0.6 lsb "
                                 "dac 1% }",
}


def dnl_problem(name: str, *, groups=2, rows_out=11, k=100, n=7, seed=3,
                mismatch_seed=5) -> AcimProblem:
    """A random product on a DNL chip, with the chip instance's static errors of a seed."""
    spec = chip(DNL_CHIPS[name])
    plan = ConversionPlan(spec)
    gen = torch.Generator().manual_seed(seed)
    bx, signed = spec.input.bits, spec.input.signed
    low, high = (-(1 << (bx - 1)) + 1, 1 << (bx - 1)) if signed else (0, 1 << bx)
    # Sparse inputs keep MACs small, so that a range below the rows matters.
    x = torch.randint(low, high, (groups, rows_out, k), generator=gen) \
        * (torch.rand(groups, rows_out, k, generator=gen) < 0.4)
    top = (1 << (spec.weight.bits - 1)) - 1
    w = torch.randint(-top, top + 1, (1, k, n), generator=gen)
    tiles = tuple((k0, min(k, k0 + spec.array.rows)) for k0 in range(0, k, spec.array.rows))
    keys = None
    if plan.has_noise:
        stream = torch.randint(-2 ** 62, 2 ** 62, (groups, rows_out), generator=gen)
        offset = torch.arange(groups * rows_out).view(groups, rows_out) * n
        keys = NoiseKeys(stream, offset, 1, groups * rows_out * n)
    fixed = static_mismatch(plan, mismatch_seed, LAYER_KEY, tiles, k, n, torch.device("cpu"))
    assert fixed.thresholds is not None
    return AcimProblem(x.float(), w.float(), plan, tiles, keys, fixed.cells, fixed.gain,
                       fixed.offset, drivers=fixed.drivers, thresholds=fixed.thresholds)


@pytest.mark.parametrize("name", DNL_CHIPS)
def test_fast_kernel_gives_the_reference_bits(name, backend):
    problem = dnl_problem(name)
    want = reference.run(problem)
    # A tiny budget forces many row chunks and column blocks; the bits must not change.
    for budget in (1 << 12, 1 << 30):
        assert torch.equal(fast.run(problem, memory_budget=budget), want)
    # ... and the thresholds matter: without them the numbers differ.
    assert not torch.equal(reference.run(replace(problem, thresholds=None)), want)


@pytest.mark.parametrize("name", ["noisy-offset-gain", "voting-hybrid-signed", "noiseless",
                                  "dac-cells-noisy", "dac-current-voting-hybrid"])
def test_the_native_path_runs_adc_dnl(name, monkeypatch):
    if not native.available():
        pytest.fail("the native kernel does not build here (no C compiler?)")
    # 45 columns: full 16- and 8-lane vectors, a partial block of 32 and scalar tails.
    problem = dnl_problem(name, n=45, rows_out=5)
    want = reference.run(problem)

    def no_torch_path(*args, **kwargs):
        raise AssertionError("took the torch path")
    monkeypatch.setattr(torch_path, "run", no_torch_path)
    assert torch.equal(fast.run(problem), want)


def test_the_torch_path_gives_the_reference_bits_in_one_call():
    problem = dnl_problem("voting-hybrid-signed", n=45)
    assert torch.equal(torch_path.run(problem, 1 << 30), reference.run(problem))


# ---- the transfer of a column and the drawn thresholds ---------------------------------------

def documented_thresholds(seed: int, layer_key: int, sigma: float, levels: int,
                          columns: int) -> np.ndarray:
    """Section 8c written out in numpy: (columns, L) thresholds in units of the range."""
    stream = torch.tensor(rng.combine(seed, layer_key, 0x74687273))
    counters = torch.arange(columns * levels, dtype=torch.int64)
    z = rng.standard_normal(stream, counters).numpy().reshape(columns, levels)
    d = (z * np.float32(sigma)).astype(np.float32)
    k = np.arange(1, levels + 1, dtype=np.float64)
    theta = (((k - 0.5) + d.astype(np.float64)) / levels).astype(np.float32)
    return np.maximum.accumulate(theta, axis=1)


def transfer_problem(spec, *, columns: int, seed: int, noise=False) -> AcimProblem:
    """Every MAC value M = 0..rows of weight bit 0 in ``columns`` output columns: a 1-bit input
    driving the first M rows, 2-bit weights equal to 1 (bit 1, the MSB plane, is 0 and its
    level digital)."""
    rows = spec.array.rows
    plan = ConversionPlan(spec)
    x = (torch.arange(rows).view(1, 1, rows) < torch.arange(rows + 1).view(1, rows + 1, 1))
    w = torch.ones(1, rows, columns)
    fixed = static_mismatch(plan, seed, LAYER_KEY, ((0, rows),), rows, columns,
                            torch.device("cpu"))
    keys = None
    if noise:
        keys = NoiseKeys(torch.full((1, rows + 1), 99, dtype=torch.int64),
                         torch.arange(rows + 1).view(1, -1) * columns, 1, (rows + 1) * columns)
    return AcimProblem(x.float(), w, plan, ((0, rows),), keys, thresholds=fixed.thresholds)


def test_a_column_steps_where_its_drawn_thresholds_say(backend):
    sigma, rows = 0.7, 300
    spec = chip(f"array {{ rows {rows} cols 10 }} weight {{ bits 2 }} input {{ bits 1 }} "
                f"adc {{ bits 4 }} hybrid {{ digital_levels 1 }} "
                f"mismatch {{ adc_dnl {sigma} lsb }}")
    levels, bw, per_tile = 15, 2, 5
    problem = transfer_problem(spec, columns=8, seed=21)
    acc = fast.run(problem)[0].numpy()
    assert torch.equal(torch.from_numpy(acc), reference.run(problem)[0])
    codes = acc * levels / rows                     # the code of each (M, output column)
    assert np.array_equal(codes, np.round(codes))
    theta = documented_thresholds(21, LAYER_KEY, sigma, levels, per_tile * bw)
    m = (np.arange(rows + 1, dtype=np.float32) / np.float32(rows)).astype(np.float32)
    for n in range(8):
        physical = (n % per_tile) * bw + 0            # weight bit 0 of output column n
        want = (m[:, None] >= theta[physical][None, :]).sum(axis=1)
        assert np.array_equal(codes[:, n], want), n
    # Columns 5..7 sit on the physical columns of 0..2 (the next column tile).
    assert np.array_equal(codes[:, 5:8], codes[:, 0:3])
    assert not np.array_equal(codes[:, 0], codes[:, 1])
    # A crossing threshold is a missing code: the transfer never steps down or skips back.
    assert (np.diff(codes, axis=0) >= 0).all()
    ideal = np.round(m * levels)
    assert not np.array_equal(codes[:, 0], ideal)


def test_the_fitted_threshold_offsets_have_the_written_sigma():
    """Over many columns the thresholds read off the transfer (the first MAC reaching each code,
    1/20 LSB apart) are `k - 1/2 + d_k` with std(d) = sigma and mean 0."""
    sigma, rows, columns = 0.25, 300, 600
    spec = chip(f"array {{ rows {rows} cols {2 * columns} }} weight {{ bits 2 }} "
                f"input {{ bits 1 }} adc {{ bits 4 }} hybrid {{ digital_levels 1 }} "
                f"mismatch {{ adc_dnl {sigma} lsb }}")
    levels = 15
    codes = np.round(fast.run(transfer_problem(spec, columns=columns, seed=8))[0].numpy()
                     * levels / rows).astype(int)
    offsets = []
    for k in range(1, levels):                     # the top threshold may lie beyond the range
        first = np.argmax(codes >= k, axis=0)      # the first MAC whose code reaches k
        theta = (first - 0.5) / rows               # the threshold lies in ((M - 1)/F, M/F]
        offsets.append(theta * levels - (k - 0.5))
    offsets = np.concatenate(offsets)
    assert offsets.std() == pytest.approx(sigma, rel=0.06)
    assert abs(offsets.mean()) < 0.02


def test_noise_on_the_thresholds_gives_the_reference_bits_and_differs_from_no_dnl():
    spec = chip("array { rows 60 cols 16 } weight { bits 2 } input { bits 1 } adc { bits 4 } "
                "hybrid { digital_levels 1 } noise { random 0.5 lsb } "
                "mismatch { adc_dnl 0.5 lsb }")
    problem = transfer_problem(spec, columns=8, seed=2, noise=True)
    want = reference.run(problem)
    assert torch.equal(fast.run(problem), want)
    assert not torch.equal(want, reference.run(replace(problem, thresholds=None)))


# ---- the chip language and the compiler ------------------------------------------------------

def test_adc_dnl_of_more_thresholds_than_a_layer_holds_is_refused():
    with pytest.raises(ChipError, match="adc_dnl` draws every code threshold"):
        chip("array { cols 2048 } adc { bits 16 } mismatch { adc_dnl 0.3 lsb }")
    chip("array { cols 1024 } adc { bits 16 } mismatch { adc_dnl 0.3 lsb }")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=6).x


def _run(spec, x, **kwargs):
    return asimc.compile(MODEL, spec).run(x, **kwargs).outputs


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["", "noise { random 0.5 lsb }"])
def test_compile_and_run_are_reproducible_per_seed(noise, digits):
    # Per-sample input scales: a sample's numbers do not depend on its batch (section 2).
    base = f"array {{ rows 64 cols 64 }} adc {{ bits 6 }} quant {{ input per_sample }} {noise}"
    dnl = parse_chip(f'chip "d" {{ {base} mismatch {{ adc_offset 0.3 lsb  adc_dnl 0.5 lsb }} }}')
    program = asimc.compile(MODEL, dnl)
    first = program.run(digits, seed=1).outputs
    again = program.run(digits, seed=1).outputs
    other = program.run(digits, seed=2).outputs
    for name in first:
        assert np.array_equal(first[name], again[name])
        assert not np.array_equal(first[name], other[name])
    # Per sample: the same numbers alone and in a batch of 6, and in small chunks.
    alone = [program.run(digits[i:i + 1], seed=1).outputs for i in (0, 5)]
    chunked = program.run(digits, seed=1, memory_budget=1 << 18).outputs
    for name in first:
        assert np.array_equal(alone[0][name][0], first[name][0])
        assert np.array_equal(alone[1][name][0], first[name][5])
        assert np.array_equal(chunked[name], first[name])
    # The reference kernel gives the same bits.
    reference_out = program.run(digits[:1], seed=1, kernel="reference").outputs
    for name in first:
        assert np.array_equal(reference_out[name][0], first[name][0])
    # Without DNL the numbers differ; at 0 they are today's, bit for bit.
    without = parse_chip(f'chip "d" {{ {base} mismatch {{ adc_offset 0.3 lsb }} }}')
    zero = parse_chip(f'chip "d" {{ {base} mismatch {{ adc_offset 0.3 lsb  adc_dnl 0 lsb }} }}')
    plain, zeroed = _run(without, digits, seed=1), _run(zero, digits, seed=1)
    for name in first:
        assert np.array_equal(plain[name], zeroed[name])
        assert not np.array_equal(plain[name], first[name])


def test_golden_measures_what_adc_dnl_costs(tmp_path, capsys):
    results = {}
    for name, mismatch in (("plain", ""), ("dnl", "mismatch { adc_dnl 0.5 lsb }")):
        path = tmp_path / f"{name}.acim"
        path.write_text(f'chip "{name}" {{ array {{ rows 64 cols 64 }} adc {{ bits 6 }} '
                        f'{mismatch} }}\n')
        code = main(["golden", str(MODEL), "--chip", str(path), "--data", "digits",
                     "--limit", "16", "--json"])
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err, err
        results[name] = json.loads(out)
    # A noiseless chip: its ideal and "noisy" runs agree unless the thresholds move.
    noise_rung = {name: r["rungs"][-1] for name, r in results.items()}
    assert noise_rung["plain"]["bit_identical"]
    assert not noise_rung["dnl"]["bit_identical"]
    assert noise_rung["dnl"]["sqnr_db"] < 60
