"""Bad numbers in a model or its data are refused where they enter, with a message that names
them: labels in an .npz named after the model's inputs, NaN/Inf weights."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from .conftest import cli, no_internal_error


@pytest.mark.parametrize("labels, expected", [
    (np.full(12, 1.5), "expected integer class labels"),
    (np.full(12, np.nan), "expected integer class labels"),
    (np.zeros(5, dtype=np.int64), "y has 5 labels but x has 12 samples"),
], ids=["fractional", "nan", "count"])
def test_labels_of_an_npz_named_after_the_inputs_are_checked(files, tmp_path, labels, expected):
    x = np.load(files / "x.npy")
    data = tmp_path / "named.npz"
    np.savez(data, input=x, y=labels)           # `input` is the digits CNN's input name
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no numpy "invalid value encountered in cast"
        code, text = cli("compare", files / "cnn.onnx", "--chips", files / "chip.acim",
                         "--data", data, "--seeds", "1")
    no_internal_error(code, text)
    assert code == 2 and expected in text and str(data) in text, text
    assert "-9223372036854775808" not in text


def test_integer_labels_of_an_npz_named_after_the_inputs_still_work(files, tmp_path):
    x = np.load(files / "x.npy")
    y = np.load(files / "data.npz")["y"]
    data = tmp_path / "named.npz"
    np.savez(data, input=x, y=y.astype(np.int32))
    code, text = cli("compare", files / "cnn.onnx", "--chips", files / "chip.acim",
                     "--data", data, "--seeds", "1")
    assert code == 0, text


def _with_weight(source, target, value, *, initializer=None):
    """The model with one value of a weight initializer (the first Conv's, by default)
    replaced: (the file, the initializer's name, the node using it)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(source)
    node = next(n for n in model.graph.node if n.op_type == "Conv")
    name = initializer or node.input[1]
    tensor = next(t for t in model.graph.initializer if t.name == name)
    array = numpy_helper.to_array(tensor).copy()
    array.flat[3] = value
    tensor.CopyFrom(numpy_helper.from_array(array, name))
    onnx.save(model, target)
    return target, name, node.name


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_nonfinite_weights_are_refused_at_compile_time(files, tmp_path, value):
    model, initializer, node = _with_weight(files / "cnn.onnx", tmp_path / "bad.onnx", value)
    out = tmp_path / "bad.asimc"
    code, text = cli("compile", model, "--chip", files / "chip.acim", "-o", out)
    no_internal_error(code, text)
    assert code == 2 and text.startswith("asimc: error: "), text
    assert f"initializer '{initializer}'" in text and f"node '{node}'" in text, text
    assert not out.exists()


def test_globs_that_match_nothing_are_named_with_what_they_could_have_meant(files, tmp_path):
    chip = tmp_path / "globs.acim"
    chip.write_text(f'chip "globs" extends "{files / "chip.acim"}" {{\n'
                    '    layer "/stem/conv/Conf" { adc { bits 5 } }\n'
                    '    layer "/head/*" { adc { bits 7 } }\n}\n')
    code, text = cli("compile", files / "cnn.onnx", "--chip", chip, "--digital", "/nothing/*",
                     "--digital", "/down/*", "-o", tmp_path / "out.asimc")
    assert code == 0, text
    warnings = [line for line in text.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, text                 # the two patterns that match something: none
    assert "layer \"/stem/conv/Conf\"" in warnings[0] and "'/stem/conv/Conv'" in warnings[0]
    assert "--digital '/nothing/*'" in warnings[1] and "matches no matrix product" in warnings[1]
    code, text = cli("inspect", tmp_path / "out.asimc")   # kept in the artifact's report
    assert code == 0 and "layer \"/stem/conv/Conf\"" in text


def test_the_same_chip_given_twice_to_compare_gets_a_word(files):
    code, text = cli("compare", files / "mlp.onnx", "--chips", files / "chip.acim",
                     files / "chip.acim", "--data", files / "data.npz", "--seeds", "1")
    assert code == 0, text
    assert f"the same chip as {files / 'chip.acim'} (given twice)" in text, text


def test_golden_names_a_digital_glob_that_matches_nothing(files):
    code, text = cli("golden", files / "mlp.onnx", "--chip", files / "chip.acim", "--data",
                     files / "data.npz", "--digital", "/fc9/*")
    assert code in (0, 1), text
    assert "warning: --digital '/fc9/*' matches no matrix product" in text, text
