"""`asimc chip measure` and `asimc chip fit`: a table drawn from asimc's own parametric model is
fitted back (the issue's goal: sigmas within 10 %, offsets within 0.1 LSB), the closed form the
fit uses is the simulator's conversion, and a table no parametric chip can produce is flagged."""
from __future__ import annotations

import os
import re
import stat

import numpy as np
import pytest
import torch

from asimc.chip import load_chip, parse_chip
from asimc.cli import main
from asimc.kernels import adc
from asimc.silicon.fit import fit_table
from asimc.silicon.measure import measure_chip
from asimc.silicon.model import code_distributions, conversion_kinds
from asimc.silicon.table import read_table

BENCH = """chip "bench" {
    array { rows 63 cols 8 }
    noise { random 1 lsb  nonlinear 3 lsb }
    mismatch { adc_offset 0.5 lsb  adc_gain 1% }
}
"""


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_the_closed_form_is_the_simulators_conversion():
    """Codes from the kernels' own conversion steps (asimc/kernels/adc.py) follow the closed
    form the fit and `chip measure` use: a chi-square test per MAC value."""
    chip = parse_chip(BENCH)
    kind = conversion_kinds(chip)[0]
    sr, snl, offset, gain = 1.5 / 255, 4.0 / 255, 0.7 / 255, -0.02
    macs = torch.tensor([0.0, 1.0, 5.0, 31.0, 62.0, 63.0])
    generator = torch.Generator().manual_seed(0)
    n = 200_000
    z = torch.randn(n, len(macs), generator=generator)
    m = adc.analog_value(macs.expand(n, -1), kind.full_scale)
    m = adc.add_noise(m, z, adc.noise_sigma(m, sr, snl, kind.rows))
    m = adc.column_errors(m, torch.tensor(1.0 + gain), torch.tensor(offset))
    codes = adc.adc_code(m, kind.levels).long()
    expected = code_distributions(kind, macs.numpy(), sr, snl, offset, gain)
    for j in range(len(macs)):
        observed = np.bincount(codes[:, j].numpy(), minlength=kind.levels + 1)
        keep = expected[j] * n > 5
        e = expected[j][keep] * n
        o = observed[keep]
        chi2 = float(((o - e) ** 2 / e).sum())
        dof = int(keep.sum()) - 1
        assert chi2 < dof + 5 * np.sqrt(2 * dof) + 10, (int(macs[j]), chi2, dof)
        assert observed[~keep].sum() <= max(20, 0.001 * n)


@pytest.mark.slow
def test_a_table_from_the_parametric_model_is_fitted_back(tmp_path, capsys):
    base = tmp_path / "bench.acim"
    base.write_text(BENCH)
    table, fitted, plot = tmp_path / "m.csv", tmp_path / "out" / "fitted.acim", tmp_path / "f.png"
    fitted.parent.mkdir()
    code, out, _ = run(capsys, "chip", "measure", base, "-o", table, "--per-column",
                       "--repeats", 2000, "--seed", 1)
    assert code == 0 and "8 columns" in out
    # Written through a private temporary file, the table still gets a new file's usual mode.
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(table.stat().st_mode) == 0o666 & ~mask
    code, out, _ = run(capsys, "chip", "fit", table, "--chip", base, "-o", fitted,
                       "--per-column", "--plot", plot)
    assert code == 0, out
    spec = load_chip(fitted)                       # extends ../bench.acim, relative to it
    assert spec.noise.random.unit == "lsb" and spec.noise.random.value == pytest.approx(1, rel=0.1)
    assert spec.noise.nonlinear.value == pytest.approx(3, rel=0.1)
    text = fitted.read_text()
    assert 'extends "../bench.acim"' in text and "# Quality: G/dof" in text
    truth = measure_chip(load_chip(base), 2000, 1, per_column=True)
    printed = [float(x) for x in re.findall(r"column \d+: offset ([+-][0-9.]+) lsb", out)]
    assert len(printed) == 8
    assert np.abs(np.array(printed) - truth.offsets).max() < 0.1
    g = float(re.search(r"G/dof ([0-9.]+)", out).group(1))
    assert 0.8 < g < 1.3
    assert re.search(r"^\s+1\s+62\s+16,000\s", out, re.M)      # per MAC: measured and fitted
    assert plot.read_bytes()[:4] == b"\x89PNG"


DNL_BENCH = """chip "dnl-bench" {
    array { rows 255 cols 8 }
    adc { bits 8 }
    noise { random 0.5 lsb  nonlinear 1 lsb }
    mismatch { adc_offset 0.5 lsb  adc_gain 1%%  adc_dnl %s lsb }
}
"""


@pytest.mark.slow
@pytest.mark.parametrize("dnl", [0.3, 0])
def test_the_fit_recovers_adc_dnl_per_column(tmp_path, capsys, dnl):
    """8 columns x 255 thresholds: adc_dnl within 10 %, and a table without DNL fits
    `adc_dnl 0` (below the detection limit), the sigmas within 10 % and offsets within 0.1 LSB
    either way."""
    base = tmp_path / "bench.acim"
    base.write_text(DNL_BENCH % dnl)
    table, fitted = tmp_path / "m.csv", tmp_path / "fitted.acim"
    assert run(capsys, "chip", "measure", base, "-o", table, "--per-column", "--repeats", 2000,
               "--seed", 3)[0] == 0
    code, out, _ = run(capsys, "chip", "fit", table, "--chip", base, "-o", fitted,
                       "--per-column")
    assert code == 0, out
    spec = load_chip(fitted)
    assert spec.noise.random.value == pytest.approx(0.5, rel=0.1)
    assert spec.noise.nonlinear.value == pytest.approx(1, rel=0.1)
    assert spec.mismatch.adc_dnl.unit == "lsb"
    if dnl:
        assert spec.mismatch.adc_dnl.value == pytest.approx(dnl, rel=0.1)
        assert re.search(r"ADC thresholds \(adc_dnl\): 0\.[23]\d* lsb, from [\d,]+ "
                         "thresholds", out)
    else:
        assert spec.mismatch.adc_dnl.value == 0
        assert re.search(r"ADC thresholds \(adc_dnl\): not detected \(below 0\.00\d+ lsb", out)
    assert "# ADC thresholds (adc_dnl): " in fitted.read_text()
    truth = measure_chip(load_chip(base), 2000, 3, per_column=True)
    printed = [float(x) for x in re.findall(r"column \d+: offset ([+-][0-9.]+) lsb", out)]
    assert len(printed) == 8 and np.abs(np.array(printed) - truth.offsets).max() < 0.1
    # With the thresholds fitted the model explains the table.
    assert 0.8 < float(re.search(r"G/dof ([0-9.]+)", out).group(1)) < 1.3


def test_a_pooled_fit_over_two_conversion_kinds(tmp_path):
    chip = parse_chip('chip "p" { array { rows 15 } input { bits 3 parallel 2 } '
                      'noise { random 0.8 lsb nonlinear 1.5 lsb } }')
    table = tmp_path / "p.csv"
    table.write_text(measure_chip(chip, repeats=3000, seed=4).text)
    result = fit_table(read_table(table), chip)
    assert result.sigma_random == pytest.approx(0.8, rel=0.1)
    assert result.sigma_nonlinear == pytest.approx(1.5, rel=0.1)
    assert abs(result.offsets[0]) < 0.1 and abs(result.gains[0]) < 0.003
    assert {s.bits for s in result.spreads} == {1, 2}
    # One converter for every column: its thresholds are ideal (not detected), and a table
    # without columns never gives the chip an adc_dnl.
    assert not result.dnl.detected and result.dnl.thresholds > 20 and result.adc_dnl is None


def test_a_bimodal_error_is_flagged_by_the_fits_quality(tmp_path, capsys):
    # Every conversion reads 2 LSB low or 2 LSB high: no Gaussian explains it.
    chip = tmp_path / "c.acim"
    chip.write_text('chip "c" { array { rows 31 } adc { bits 5 } }')
    rows = "\n".join(f"{m},{max(m - 2, 0)},500\n{m},{min(m + 2, 31)},500" for m in range(32))
    (tmp_path / "b.csv").write_text(f"mac,code,count\n{rows}\n")
    code, out, _ = run(capsys, "chip", "fit", tmp_path / "b.csv", "--chip", chip, "-o",
                       tmp_path / "f.acim")
    assert code == 0
    assert float(re.search(r"G/dof ([0-9.]+)", out).group(1)) > 5
    # Without columns the table's thresholds are reported, never written as adc_dnl.
    body = [line for line in (tmp_path / "f.acim").read_text().splitlines()
            if not line.startswith("#")]
    assert "Not written as adc_dnl" in out and not any("adc_dnl" in line for line in body)


def test_fit_refusals_write_nothing(tmp_path, capsys):
    chip = tmp_path / "c.acim"
    chip.write_text('chip "c" { array { rows 31 } adc { bits 5 } }')
    rows = "\n".join(f"{m},{m},5" for m in range(32))
    (tmp_path / "t.csv").write_text(f"mac,code,count\n{rows}\n")
    out_file = tmp_path / "f.acim"
    code, _, err = run(capsys, "chip", "fit", tmp_path / "t.csv", "--chip", chip, "-o", out_file,
                       "--per-column")
    assert code == 2 and "--per-column needs a table with a `column` field" in err
    parallel = tmp_path / "wp.acim"
    parallel.write_text('chip "w" { array { rows 31 } weight { bits 4 parallel } adc { bits 5 } }')
    code, _, err = run(capsys, "chip", "fit", tmp_path / "t.csv", "--chip", parallel, "-o",
                       out_file)
    assert code == 2 and "weight `parallel`" in err
    small = tmp_path / "small.acim"
    small.write_text('chip "s" { array { rows 31 } adc { bits 4 } }')
    code, _, err = run(capsys, "chip", "fit", tmp_path / "t.csv", "--chip", small, "-o", out_file)
    assert code == 2 and "t.csv:" in err and "needs a 5-bit ADC" in err
    assert not out_file.exists() and list(tmp_path.glob("*.tmp")) == []
