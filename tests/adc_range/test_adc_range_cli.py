"""The ADC range, `asimc calibrate` and fixed-pattern mismatch through the public interfaces
(the CLI as a user types it, and the Python API) on the example CNN."""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

import asimc
from asimc.chip import parse_chip
from asimc.cli import main
from asimc.data import load_dataset
from asimc.errors import ChipError

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "digits_cnn.onnx"

BIG = """chip "big-1152" {
    description "1152-row array with an 8-bit ADC"
    array { rows 1152 cols 256 macros 16 }
    adc { bits 8 }
}
"""


class Done:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_asimc(*args):
    """`asimc ARGS` as typed, in this process (a fresh interpreter per call costs more than
    the work on a busy 2-core machine)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return Done(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrate")
    (folder / "chips").mkdir()
    (folder / "chips" / "big.acim").write_text(BIG)
    out = folder / "out" / "big-calibrated.acim"
    done = run_asimc("calibrate", MODEL, "--chip", folder / "chips" / "big.acim", "--data",
                     "digits:train", "--limit", "60", "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    return folder, out, json.loads(done.stdout)


@pytest.mark.slow
def test_calibrate_gains_clearly_on_a_large_array(calibrated):
    folder, out, result = calibrated
    # One layer override per on-chip layer, in a chip that extends the input chip.
    text = out.read_text()
    assert 'extends "../chips/big.acim"' in text
    assert text.count("layer \"") == len(result["layers"]) == 7
    for layer in result["layers"]:
        assert 0 < layer["full_scale_percent"] < 10        # 9..144 of 1152 rows are used
        assert layer["sqnr_after_db"] > layer["sqnr_before_db"] + 20
        assert layer["clipped"] < 0.001
    assert result["accuracy_after"] > result["accuracy_before"] + 0.5
    # The written file is a chip like any other; on held-out data (the test split) it wins too.
    done = run_asimc("compare", MODEL, "--chips", folder / "chips" / "big.acim", out,
                     "--data", "digits", "--limit", "100", "--seeds", "1", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["chip"]: r for r in json.loads(done.stdout)}
    before, after = rows["big-1152"], rows["big-1152-calibrated"]
    assert after["accuracy_mean"] > before["accuracy_mean"] + 0.5
    assert after["sqnr_db"] > before["sqnr_db"] + 20


@pytest.mark.slow
def test_calibrate_by_least_error_with_power_of_two_ranges(calibrated, tmp_path):
    folder, _, first = calibrated
    out = tmp_path / "pow2.acim"
    done = run_asimc("calibrate", MODEL, "--chip", folder / "chips" / "big.acim", "--data",
                     "digits:train", "--limit", "20", "--method", "mse", "--pow2", "-o", out,
                     "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for layer in result["layers"]:
        exponent = math.log2(layer["full_scale_percent"] / 100)
        assert exponent == int(exponent) and exponent < -3
        assert layer["sqnr_after_db"] > layer["sqnr_before_db"] + 15
    shown = run_asimc("chip", "show", out, "--json")
    assert shown.returncode == 0, shown.stderr
    layers = json.loads(shown.stdout)["facts"]["layers"]
    kinds = layers[0]["conversion_types"][0]
    assert kinds["full_scale"] == kinds["rows_full_scale"] * kinds["range_fraction"]
    assert kinds["lsb_mac"] == pytest.approx(kinds["full_scale"] / 255)


WEIGHT_PARALLEL = """chip "wp-8x8" {
    description "weight-parallel 8b x 8b, one signed conversion per 64-row tile, 8-bit ADC"
    array { rows 64 cols 256 macros 64 }
    weight { bits 8  parallel }
    input { bits 8  parallel 8 }
    adc { bits 8 }
}
"""


def test_calibrate_sets_the_range_of_weight_parallel_conversions(tmp_path):
    """One signed conversion of a whole 8b x 8b tile product: its rows-based full scale
    (255 x 127 x 64) is far above the partial sums, so most of them round to code 0 before
    calibration; a calibrated range resolves them."""
    chip = tmp_path / "wp.acim"
    chip.write_text(WEIGHT_PARALLEL)
    out = tmp_path / "wp-calibrated.acim"
    done = run_asimc("calibrate", MODEL, "--chip", chip, "--data", "digits:train", "--limit",
                     "30", "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result["layers"]) == 7
    for layer in result["layers"]:
        assert 0 < layer["full_scale_percent"] < 50
        assert layer["clipped"] < 0.001
        assert layer["sqnr_after_db"] > layer["sqnr_before_db"] + 6
    assert result["accuracy_after"] > result["accuracy_before"]
    assert run_asimc("chip", "check", out).returncode == 0


def test_calibrate_refuses_bad_flags(tmp_path):
    chip = tmp_path / "c.acim"
    chip.write_text(BIG)
    for flags, words in [(["--percentile", "0"], "--percentile must be in"),
                         (["--method", "mse", "--percentile", "99"], "percentile only"),
                         (["-o", tmp_path / "x.txt"], "must be a chip file")]:
        args = ["calibrate", MODEL, "--chip", chip, "--data", "digits", "--limit", "5"]
        if "-o" not in flags:
            args += ["-o", tmp_path / "o.acim"]
        done = run_asimc(*args, *flags)
        assert done.returncode == 2 and words in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_an_uncalibrated_range_is_refused_with_the_way_out(tmp_path):
    chip = tmp_path / "c.acim"
    chip.write_text('chip "c" { adc { bits 8 full_scale calibrated } }\n')
    done = run_asimc("compile", MODEL, "--chip", chip, "-o", tmp_path / "m.asimc")
    assert done.returncode == 2
    assert "full_scale calibrated" in done.stderr and "asimc calibrate" in done.stderr


def test_chip_show_reports_the_range_per_cycle_type(tmp_path):
    chip = tmp_path / "c.acim"
    chip.write_text('chip "c" { array { rows 1020 } adc { bits 8 full_scale 25% } '
                    'input { bits 8 parallel 4 } noise { random 0.5% } '
                    'layer "Gemm" { adc { full_scale used_rows } } }\n')
    done = run_asimc("chip", "show", chip, "--json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)["facts"]
    kind = facts["conversion_types"][0]
    assert (kind["range"], kind["rows_full_scale"], kind["full_scale"]) == ("25%", 15300, 3825)
    assert kind["lsb_mac"] == 15.0 and kind["lossless"] is False      # clips above 25%
    # % noise is relative to the rows swing: 0.5% of it is 2% of a range four times smaller.
    assert facts["noise"]["random_lsb"] == pytest.approx(0.02 * 255)
    assert facts["layers"][0]["conversion_types"][0]["range"] == "used_rows"
    text = run_asimc("chip", "show", chip).stdout
    assert "ADC range" in text and "25%" in text


# ---- the Python API: ranges per layer, mismatch fixed per chip instance -----------------------

def chip_with(text: str):
    return parse_chip(f'chip "t" {{ {text} }}')


@pytest.fixture(scope="module")
def images():
    return load_dataset("digits").x[:8]


def test_a_layer_range_changes_that_layer_only_and_default_text_is_the_default(images):
    default = asimc.compile(MODEL, chip_with("noise { random 0.3% }"))
    explicit = asimc.compile(MODEL, chip_with("adc { bits 8 full_scale rows } "
                                              "noise { random 0.3% }"))
    a = default.run(images, mode="acim", seed=2, taps=True)
    b = explicit.run(images, mode="acim", seed=2, taps=True)
    assert np.array_equal(a.output, b.output)
    ranged = asimc.compile(MODEL, chip_with('noise { random 0.3% } '
                                            'layer "/head/Gemm" { adc { full_scale 10% } }'))
    c = ranged.run(images, mode="acim", seed=2, taps=True)
    assert not np.array_equal(c.taps["/head/Gemm"], a.taps["/head/Gemm"])
    first = "/stem/conv/Conv"
    assert np.array_equal(c.taps[first], a.taps[first])


MISMATCH = ("array { rows 128 } adc { bits 7 full_scale 50% } noise { random 0.2% } "
            "quant { input per_sample } mismatch { adc_offset 0.5 lsb adc_gain 1% cell 2% }")


def test_mismatch_is_fixed_per_seed_across_samples_and_batches(images):
    program = asimc.compile(MODEL, chip_with(MISMATCH))
    whole = program.run(images, mode="acim", seed=7).output
    alone = np.concatenate([program.run(images[i:i + 1], mode="acim", seed=7).output
                            for i in (0, 5, 7)])
    assert np.array_equal(whole[[0, 5, 7]], alone)
    assert np.array_equal(program.run(images, mode="acim", seed=7).output, whole)
    assert not np.array_equal(program.run(images, mode="acim", seed=8).output, whole)
    # The mismatch matters: the same chip without it differs.
    clean = asimc.compile(MODEL, chip_with(MISMATCH.split(" mismatch")[0]))
    assert not np.array_equal(clean.run(images, mode="acim", seed=7).output, whole)


def test_fast_equals_reference_on_a_model_with_ranges_and_mismatch(images):
    program = asimc.compile(MODEL, chip_with(
        MISMATCH + ' layer "Gemm" { adc { full_scale used_rows pow2 } }'))
    x = images[:3]
    fast = program.run(x, mode="acim", seed=3, kernel="fast")
    ref = program.run(x, mode="acim", seed=3, kernel="reference")
    assert np.array_equal(fast.output, ref.output)


def test_cell_variation_is_the_cell_mismatch_under_its_old_name(images):
    old = asimc.compile(MODEL, chip_with("domain current { alpha 0.001 cell_variation 3% }"))
    new = asimc.compile(MODEL, chip_with("domain current { alpha 0.001 } mismatch { cell 3% }"))
    assert np.array_equal(old.run(images, seed=4).output, new.run(images, seed=4).output)
    with pytest.raises(ChipError, match="both set the per-cell weight error"):
        chip_with("domain current { cell_variation 1% } mismatch { cell 1% }")
