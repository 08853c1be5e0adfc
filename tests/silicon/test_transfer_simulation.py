"""Chips simulated as measured: `adc { transfer }` drives the kernels through the per-MAC code
tables (asimc/kernels/conversion_model.py), on every path bit-identical to the reference, with
the table's distribution, and a table from the parametric model behaves as the parametric chip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import asimc
import asimc.errors
from asimc.chip import load_chip, parse_chip
from asimc.chip.conversions import ConversionPlan
from asimc.data import load_dataset
from asimc.kernels import conversion_model, fast, native, reference
from asimc.kernels.problem import AcimProblem, NoiseKeys
from asimc.silicon.measure import measure_chip

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _bimodal(path, rows: int, levels: int, bits=(1,)) -> None:
    """Every conversion reads 2 codes low (1 in 4) or 1 code high (3 in 4): no Gaussian."""
    lines = ["mac,code,count,bits"]
    for b in bits:
        full = ((1 << b) - 1) * rows
        for m in range(full + 1):
            ideal = round(m * levels / full)
            lines += [f"{m},{max(ideal - 2, 0)},1,{b}", f"{m},{min(ideal + 1, levels)},3,{b}"]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def measured(tmp_path):
    _bimodal(tmp_path / "bimodal.csv", 20, 31)
    text = ('chip "m" { array { rows 20 cols 16 } weight { bits 4 } input { bits 4 } '
            'adc { bits 5  transfer "bimodal.csv" } hybrid { digital_levels 1 } }')
    return parse_chip(text, base_dir=tmp_path)


def _problem(spec, rows_out=13, k=47, n=6, seed=0) -> AcimProblem:
    gen = torch.Generator().manual_seed(seed)
    if spec.input.signed:
        top_x = (1 << (spec.input.bits - 1)) - 1
        x = torch.randint(-top_x, top_x + 1, (1, rows_out, k), generator=gen).float()
    else:
        x = torch.randint(0, 1 << spec.input.bits, (1, rows_out, k), generator=gen).float()
    top = (1 << (spec.weight.bits - 1)) - 1
    w = torch.randint(-top, top + 1, (1, k, n), generator=gen).float()
    tiles = tuple((k0, min(k, k0 + spec.array.rows)) for k0 in range(0, k, spec.array.rows))
    stream = torch.randint(-2 ** 62, 2 ** 62, (1, rows_out), generator=gen)
    keys = NoiseKeys(stream, torch.arange(rows_out).view(1, rows_out) * n, 1, rows_out * n)
    return AcimProblem(x, w, ConversionPlan(spec), tiles, keys, None)


def _grouped_and_voted(tmp_path):
    """Signed 5-bit inputs two bits per cycle (2-bit groups and a 1-bit sign cycle), voting."""
    _bimodal(tmp_path / "grouped.csv", 20, 31, bits=(1, 2))
    text = ('chip "g" { array { rows 20 cols 16 } weight { bits 4 } '
            'input { bits 5 signed parallel 2 } adc { bits 5  transfer "grouped.csv" } '
            'voting { levels 2 samples 3 } }')
    return parse_chip(text, base_dir=tmp_path)


@pytest.mark.parametrize("path", ["native", "torch"])
@pytest.mark.parametrize("variant", ["hybrid", "grouped-voted"])
def test_every_path_draws_the_references_codes_from_the_table(measured, tmp_path, variant, path,
                                                             monkeypatch):
    if path == "torch":
        monkeypatch.setattr(native, "library", lambda: None)
    spec = measured if variant == "hybrid" else _grouped_and_voted(tmp_path)
    problem = _problem(spec)
    want = reference.run(problem)
    assert torch.equal(fast.run(problem, memory_budget=1 << 12), want)
    assert torch.equal(fast.run(problem), want)


def test_the_drawn_codes_follow_the_measured_distribution(measured):
    """A non-Gaussian (bimodal) table is reproduced: the code drawn for each MAC value has the
    table's distribution (chi-square over 200,000 words per MAC value)."""
    problem = _problem(measured)
    tables = conversion_model.tables(problem)
    row = tables.base[0][0]
    words = torch.randint(0, 1 << 32, (200_000,), generator=torch.Generator().manual_seed(1))
    for mac in (0, 3, 10, 20):
        codes = conversion_model.draw(tables, torch.full_like(words, row + mac), words)
        counts = np.bincount(codes.long().numpy(), minlength=32)
        ideal = round(mac * 31 / 20)
        expected = np.zeros(32)
        expected[max(ideal - 2, 0)] += 0.25 * len(words)
        expected[min(ideal + 1, 31)] += 0.75 * len(words)
        assert counts.sum() == len(words) and (counts[expected == 0] == 0).all()
        seen = expected > 0
        chi2 = ((counts[seen] - expected[seen]) ** 2 / expected[seen]).sum()
        assert chi2 < 15, (mac, counts[seen], expected[seen])


@pytest.mark.slow
def test_a_table_from_the_parametric_model_behaves_as_the_parametric_chip(tmp_path):
    """The issue's goal: the same noise statistics per layer within sampling error."""
    parametric = load_chip(ROOT / "examples" / "chips" / "noisy-0.4lsb.acim")
    (tmp_path / "model.csv").write_text(measure_chip(parametric, repeats=20_000, seed=0).text)
    (tmp_path / "measured.acim").write_text(
        f'chip "measured" extends "{ROOT / "chips" / "asim-bitserial-255.acim"}" '
        '{ adc { transfer "model.csv" } }')
    measured = load_chip(tmp_path / "measured.acim")
    model = ROOT / "examples" / "models" / "digits_mlp.onnx"
    x = load_dataset("digits", limit=64).x.reshape(64, -1)
    exact = asimc.compile(model, parametric).run(x, mode="int").outputs
    errors = {}
    for chip in (parametric, measured):
        program = asimc.compile(model, chip)
        out = np.concatenate([program.run(x, mode="acim", seed=s).outputs["logits"]
                              for s in range(4)])
        errors[chip.name] = float(np.std(out - np.tile(exact["logits"], (4, 1))))
    a, b = errors.values()
    assert abs(a - b) / a < 0.05, errors


def test_an_artifact_keeps_the_tables_identity(measured, tmp_path):
    program = asimc.compile(ROOT / "examples" / "models" / "digits_mlp.onnx", measured)
    program.save(tmp_path / "m.asimc")
    assert asimc.load_program(tmp_path / "m.asimc").chip == measured
    table = tmp_path / "bimodal.csv"
    table.write_text(table.read_text().replace("0,0,1", "0,0,2", 1))
    with pytest.raises(asimc.errors.ArtifactError, match="has changed"):
        asimc.load_program(tmp_path / "m.asimc")


def test_finetune_with_a_table_needs_the_exact_noise(measured, tmp_path, capsys):
    from asimc.cli import main
    from asimc.chip import format_chip
    chip = tmp_path / "m.acim"
    chip.write_text(format_chip(measured))
    digits = load_dataset("digits", limit=16)
    np.savez(tmp_path / "d.npz", x=digits.x.reshape(16, -1), y=digits.y)
    code = main(["finetune", str(ROOT / "examples" / "models" / "digits_mlp.onnx"), "--chip",
                 str(chip), "--data", str(tmp_path / "d.npz"), "-o", str(tmp_path / "o.onnx"),
                 "--epochs", "1", "--noise", "analytic"])
    err = capsys.readouterr().err
    assert code == 2 and "train with --noise exact" in err
    assert not (tmp_path / "o.onnx").exists()
