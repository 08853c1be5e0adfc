"""examples/measured_chip.py end to end, small: a per-column "measured" table for a library chip
with column mismatch and ADC threshold mismatch, the chip that uses it, the chip fitted to it
column by column and the three compared on the Fashion-MNIST ResNet."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from asimc.chip import load_chip
from asimc.silicon.table import read_table

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "measured_chip.py"


@pytest.mark.slow
def test_the_measured_chip_example_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("measured_chip", SCRIPT)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--out", str(tmp_path), "--limit", "4", "--seeds", "1", "--repeats", "200"])
    out = capsys.readouterr().out
    measured = load_chip(tmp_path / "measured.acim")
    assert measured.adc.transfer == str((tmp_path / "measured.csv").resolve())
    assert read_table(tmp_path / "measured.csv").columns == tuple(range(256))
    fitted = load_chip(tmp_path / "fitted.acim")
    assert fitted.noise.random.unit == "lsb" and fitted.noise.random.value > 0.21  # the skew
    assert 0.05 < fitted.mismatch.adc_dnl.value < 0.15                           # 0.1 drawn
    assert 0.05 < fitted.mismatch.adc_offset.value < 0.15                        # 0.1 drawn
    assert float(re.search(r"G/dof ([0-9.]+)", out).group(1)) > 2            # about 1 without
    for name in ("resnet-macro", "resnet-macro-measured", "resnet-macro-fitted"):
        assert re.search(rf"^{name}\s+W8 A8u serial ADC8\s+\d+\.\d+%", out, re.M), name
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"
