"""Issue 9, section 2: bad input that used to be accepted silently, with a misleading result."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from .conftest import cli, cli_json, cli_streams, no_internal_error
from .test_crashes import _rewrite_program_json


@pytest.mark.parametrize("value", ["0", "-1"])
def test_seeds_must_be_positive(files, value):
    code, text = cli("compare", files / "cnn.onnx", "--chips", files / "chip.acim",
                     "--data", files / "data.npz", "--seeds", value)
    assert code == 2 and "--seeds" in text and "noise seed(s)" not in text


@pytest.mark.parametrize("bad_label", [17, 10, -1])
@pytest.mark.parametrize("command", ["golden", "compare"])
def test_labels_out_of_the_models_range_are_refused(files, tmp_path, bad_label, command):
    x = np.load(files / "x.npy")
    y = np.arange(len(x)) % 10
    y[3] = bad_label
    data = tmp_path / "labels.npz"
    np.savez(data, x=x, y=y)
    chip_flag = "--chip" if command == "golden" else "--chips"
    code, text = cli(command, files / "cnn.onnx", chip_flag, files / "chip.acim",
                     "--data", data, "--seeds" if command == "compare" else "--seed", "1")
    no_internal_error(code, text)
    assert code == 2 and "out of range" in text and "10 classes" in text


@pytest.mark.parametrize("value", ["5", "-0.1", "1.01", "nan"])
def test_min_agreement_is_a_fraction(files, value):
    code, text = cli("golden", files / "cnn.onnx", "--chip", files / "chip.acim",
                     "--data", files / "data.npz", "--min-agreement", value)
    assert code == 2 and "--min-agreement" in text


def test_min_agreement_is_checked_in_the_python_api(files):
    import asimc
    from asimc.errors import UsageError
    from asimc.golden import golden_ladder
    program = asimc.compile(files / "cnn.onnx", files / "chip.acim")
    with pytest.raises(UsageError, match="fraction"):
        golden_ladder(files / "cnn.onnx", program, files / "data.npz", min_agreement=5)


def test_artifact_with_an_extra_member_is_refused(files, tmp_path):
    extra = tmp_path / "extra.asimc"
    with zipfile.ZipFile(files / "cnn.asimc") as source, zipfile.ZipFile(extra, "w") as z:
        for member in source.namelist():
            z.writestr(member, source.read(member))
        z.writestr("payload.py", "print('hello')")
    for command in (["inspect", extra], ["run", extra, "--input", files / "x.npy"]):
        code, text = cli(*command)
        assert code == 2 and "unexpected member" in text and "payload.py" in text


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["chip"]["adc"].update(bits=0), "adc bits"),
    (lambda d: d["layers"][0]["chip"]["array"].update(rows=-3), "rows"),
    (lambda d: d["chip"]["voting"].update(samples=4), "voting"),
], ids=["adc-bits-0", "layer-chip-rows", "even-voting-samples"])
def test_artifact_chip_is_checked_again_on_load(files, tmp_path, edit, words):
    edited = _rewrite_program_json(files / "cnn.asimc", tmp_path / "edited.asimc", edit)
    code, text = cli("run", edited, "--input", files / "x.npy")
    no_internal_error(code, text)
    assert code == 2 and "does not check" in text and words in text


# -- one dtype rule for every path that feeds a model -----------------------------------------

FLOAT_INPUTS = {
    "int8": (np.arange(-3, 5).reshape(8, 1) * np.ones((8, 64))).astype(np.int8),
    "uint16": np.full((8, 64), 300, np.uint16),
    "bool": np.eye(8, 64, dtype=bool),
    "float64": np.linspace(0, 1, 8 * 64).reshape(8, 64),
}
REFUSED = {
    "complex64": (np.ones((8, 64)) + 1j).astype(np.complex64),
    "int32-beyond-float32": np.full((8, 64), 2 ** 25 + 1, np.int32),
    "strings": np.full((8, 64), "1"),
}


@pytest.fixture(scope="module")
def mlp(files):
    import asimc
    return asimc.load_program(files / "mlp.asimc")


@pytest.mark.parametrize("name", sorted(FLOAT_INPUTS))
def test_value_preserving_casts_are_done_everywhere_the_same(mlp, files, tmp_path, name):
    from asimc.evaluate import load_eval_data
    values = FLOAT_INPUTS[name]
    expected = mlp.run(values.astype(np.float32), mode="int").output
    assert np.array_equal(mlp.run(values, mode="int").output, expected)
    fed = load_eval_data(mlp, values).inputs
    assert np.array_equal(next(iter(fed.values())), values.astype(np.float32))
    np.save(tmp_path / "x.npy", values)
    code, text = cli("run", files / "mlp.asimc", "--input", tmp_path / "x.npy", "--mode", "int",
                     "-o", tmp_path / "y.npy")
    assert code == 0, text
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_value_changing_casts_are_refused_everywhere_the_same(mlp, files, tmp_path, name):
    from asimc.errors import InputDataError
    from asimc.evaluate import load_eval_data
    values = REFUSED[name]
    with pytest.raises(InputDataError) as run_error:
        mlp.run(values, mode="int")
    with pytest.raises(InputDataError) as data_error:
        load_eval_data(mlp, values)
    first_words = str(run_error.value).split(": ", 1)[1][:30]
    assert first_words == str(data_error.value).split(": ", 1)[1][:30]
    np.save(tmp_path / "x.npy", values)
    code, text = cli("run", files / "mlp.asimc", "--input", tmp_path / "x.npy")
    no_internal_error(code, text)
    assert code == 2 and first_words in text


# -- costs from real shapes only ----------------------------------------------------------------

def _total(files, *args):
    code, report = cli_json("compile", *args, "--chip", files / "chip.acim", "-o",
                            files / "total.asimc", "--json")
    return report["total"]


def test_symbolic_spatial_dims_give_no_guessed_cost(files):
    fixed = _total(files, files / "cnn.onnx")
    symbolic = _total(files, files / "cnn_hw.onnx")
    assert fixed["costs_known"] and fixed["adc_conversions"] > 0
    assert not symbolic["costs_known"]
    for key in ("macs", "adc_conversions", "cycles", "energy_j"):
        assert symbolic[key] is None, key
    assert "--input-shape" in symbolic["costs_unknown_why"]
    code, text = cli("compile", files / "cnn_hw.onnx", "--chip", files / "chip.acim",
                     "-o", files / "total.asimc")
    assert "costs '-'" in text and "--input-shape" in text
    given = _total(files, files / "cnn_hw.onnx", "--input-shape", "1x8x8")
    assert given == fixed


@pytest.mark.parametrize("shape", ["1x8", "2x8x8", "1x0x8", "x=1x8x8", "8by8"])
def test_a_wrong_input_shape_is_refused(files, shape):
    code, text = cli("compile", files / "cnn_hw.onnx", "--chip", files / "chip.acim",
                     "-o", files / "total.asimc", "--input-shape", shape)
    no_internal_error(code, text)
    assert code == 2, text


def test_compare_counts_costs_on_the_datas_shape(files):
    rows = {}
    for model in ("cnn.onnx", "cnn_hw.onnx"):
        code, result = cli_json("compare", files / model, "--chips", files / "chip.acim",
                                "--data", files / "data.npz", "--seeds", "1", "--json")
        rows[model] = [r for r in result if r["chip"] == "cli-small"][0]
    for key in ("adc_conversions", "cycles", "energy_j"):
        assert rows["cnn_hw.onnx"][key] == rows["cnn.onnx"][key] > 0


def test_compare_carries_the_warnings_golden_prints(files):
    """The ViT's LayerNorm outputs are half negative: an unsigned-input chip clips them."""
    args = ["--data", files / "data.npz", "--limit", "4"]
    code, out, err = cli_streams("golden", files / "vit.onnx", "--chip", files / "chip.acim",
                                 *args, "--json")
    golden_warnings = json.loads(out)["warnings"]
    assert golden_warnings and all("clip" in w for w in golden_warnings)
    code, result = cli_json("compare", files / "vit.onnx", "--chips", files / "chip.acim",
                            *args, "--seeds", "1", "--json")
    row = [r for r in result if r["chip"] == "cli-small"][0]
    assert row["warnings"] == golden_warnings
    code, text = cli("compare", files / "vit.onnx", "--chips", files / "chip.acim", *args,
                     "--seeds", "1")
    for warning in golden_warnings:
        assert f"warning: cli-small: {warning}" in text
    code, text = cli("golden", files / "vit.onnx", "--chip", files / "chip.acim", *args)
    for warning in golden_warnings:
        assert f"warning: {warning}" in text
