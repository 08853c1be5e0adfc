"""`mismatch { dac }` through the public interfaces: compiled and run on the example CNN (fixed
per seed, the same alone and in a batch, fast equal to reference, nothing changed at 0), and
refused by `asimc chip check` where a perturbed MAC could not be summed exactly in float64."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

import asimc
from asimc.chip import parse_chip
from asimc.cli import main
from asimc.data import load_dataset
from asimc.kernels import native, torch_path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "digits_cnn.onnx"
PARALLEL = ("input { bits 8 parallel 2 } noise { random 0.2% } hybrid { digital_levels 1 } "
            "quant { input per_sample }")


def chip_with(text: str):
    return parse_chip(f'chip "t" {{ {text} }}')


def run_asimc(*args) -> tuple[int, str, str]:
    """`asimc ARGS` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def images():
    return load_dataset("digits").x[:6]


def test_driver_mismatch_is_fixed_per_seed_across_samples_and_batches(images):
    program = asimc.compile(MODEL, chip_with(PARALLEL + " mismatch { dac 3% cell 1% }"))
    whole = program.run(images, seed=7).output
    alone = np.concatenate([program.run(images[i:i + 1], seed=7).output for i in (0, 4)])
    assert np.array_equal(whole[[0, 4]], alone)
    assert np.array_equal(program.run(images, seed=7, memory_budget=1 << 16).output, whole)
    assert not np.array_equal(program.run(images, seed=8).output, whole)
    # The drivers matter: the same chip with ideal drivers differs.
    ideal = asimc.compile(MODEL, chip_with(PARALLEL + " mismatch { cell 1% }"))
    assert not np.array_equal(ideal.run(images, seed=7).output, whole)
    reference = program.run(images[:2], seed=7, kernel="reference").output
    assert np.array_equal(reference, whole[:2])


@pytest.mark.parametrize("body", ["input { signed } noise { random 1 lsb }",
                                  "voting { levels 2 samples 3 } noise { random 1 lsb }"])
def test_signed_and_voted_chips_with_dac_run_fast_as_the_reference(images, body):
    program = asimc.compile(MODEL, chip_with(body + " mismatch { dac 2% }"))
    fast = program.run(images[:2], seed=3).output
    assert np.array_equal(program.run(images[:2], seed=3, kernel="reference").output, fast)


def test_dac_0_is_the_chip_without_it_and_keeps_the_native_kernel(images, monkeypatch):
    plain = asimc.compile(MODEL, chip_with(PARALLEL)).run(images, seed=5).output
    if native.available():
        def no_torch_path(*args, **kwargs):
            raise AssertionError("took the torch path")
        monkeypatch.setattr(torch_path, "run", no_torch_path)
    zero = asimc.compile(MODEL, chip_with(PARALLEL + " mismatch { dac 0% }"))
    assert np.array_equal(zero.run(images, seed=5).output, plain)


def test_chip_check_refuses_a_driver_mismatch_float64_cannot_sum_exactly(tmp_path):
    chip = tmp_path / "big.acim"
    chip.write_text('chip "big" {\n    array { rows 2048 }\n    input { parallel 8 }\n'
                    '    mismatch { dac 1%  cell 0.1% }\n}\n')
    code, out, err = run_asimc("chip", "check", chip)
    assert code == 2 and not out
    assert "`mismatch { dac cell }` with 2048 rows and 8 input bits per cycle" in err
    assert "need 54 bits, float64 has 53" in err
    # Without cell mismatch the levels' products are coarser: the same array is fine.
    chip.write_text('chip "big" {\n    array { rows 2048 }\n    input { parallel 8 }\n'
                    '    mismatch { dac 1% }\n}\n')
    assert run_asimc("chip", "check", chip)[0] == 0


def test_compare_runs_chips_with_driver_mismatch(tmp_path):
    for name, body in (("ideal", "input { parallel 2 }"),
                       ("dac", "input { parallel 2 } mismatch { dac 3% }")):
        (tmp_path / f"{name}.acim").write_text(f'chip "{name}" {{ {body} }}\n')
    code, out, _ = run_asimc("compare", MODEL, "--data", "digits", "--limit", "8", "--seeds",
                             "2", "--chips", tmp_path / "ideal.acim", tmp_path / "dac.acim",
                             "--json")
    assert code == 0
    rows = {row["chip"]: row for row in json.loads(out)}
    # Ideal drivers and no noise: one number; per seed another chip instance: two.
    assert rows["ideal"]["score_std"] == 0.0 and rows["dac"]["seeds"] == 2
    assert rows["ideal"]["sqnr_db"] != rows["dac"]["sqnr_db"]
