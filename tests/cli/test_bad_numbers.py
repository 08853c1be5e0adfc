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
