"""examples/measured_chip.py end to end, small: a "measured" table for a library chip, the
chip that uses it, the fitted chip and the comparison on the digits CNN."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from asimc.chip import load_chip

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "measured_chip.py"


@pytest.mark.slow
def test_the_measured_chip_example_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("measured_chip", SCRIPT)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--out", str(tmp_path), "--limit", "40", "--seeds", "1", "--repeats", "400"])
    out = capsys.readouterr().out
    measured = load_chip(tmp_path / "measured.acim")
    assert measured.adc.transfer == str((tmp_path / "measured.csv").resolve())
    fitted = load_chip(tmp_path / "fitted.acim")
    assert fitted.noise.random.unit == "lsb" and fitted.noise.random.value > 0.4  # the skew
    assert float(re.search(r"G/dof ([0-9.]+)", out).group(1)) > 3
    assert re.search(r"^noisy-0.4lsb-fitted\s+W8 A8u serial ADC8\s+\d+\.\d+%", out, re.M)
    assert re.search(r"^noisy-0.4lsb\s+W8 A8u serial ADC8\s+\d+\.\d+%", out, re.M)
    assert re.search(r"^noisy-0.4lsb-measured\s+W8 A8u serial ADC8\s+\d+\.\d+%", out, re.M)
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"
