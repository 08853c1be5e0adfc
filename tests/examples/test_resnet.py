"""The row-filling example network (examples/train_digits_resnet.py): it loads, compiles onto
the reference macro with its 3x3 convolutions filling the rows, and keeps >= 97 % FP32 test
accuracy on digits32 (onnxruntime, independent of asimc's executor)."""
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

import asimc
from asimc.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "digits_resnet.onnx"
CHIP = ROOT / "chips" / "asim-bitserial-255.acim"


def test_digits32_is_digits_upscaled_to_three_channels():
    small, large = load_dataset("digits:test"), load_dataset("digits32:test")
    assert large.x.shape == (450, 3, 32, 32) and np.array_equal(small.y, large.y)
    assert np.array_equal(large.x[:, 0], large.x[:, 2])
    assert 0.0 <= large.x.min() and large.x.max() <= 1.0
    # Bilinear resizing keeps the mean of each image (half-pixel centres, clamped edges).
    np.testing.assert_allclose(large.x.mean(axis=(1, 2, 3)), small.x.mean(axis=(1, 2, 3)),
                               atol=0.02)


def test_fp32_accuracy_on_the_digits32_test_split():
    data = load_dataset("digits32:test")
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": data.x})[0]
    assert logits.shape == (450, 10)
    accuracy = float((logits.argmax(1) == data.y).mean())
    assert accuracy >= 0.97, accuracy


def test_small_resnet20_layout_that_fills_the_rows():
    model = onnx.load(MODEL)
    assert MODEL.stat().st_size < 4_000_000
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Add") == 9 and ops.count("BatchNormalization") >= 19
    program = asimc.compile(MODEL, CHIP)
    layers = program.report["layers"]
    convs = [l for l in layers if l["op_type"] == "Conv" and l["k"] % 9 == 0]
    assert len(convs) == 19                                  # stem + 18 in the 9 blocks
    # Every 3x3 conv after the stem: 28 channels x 9 taps = 252 of 255 rows in every tile.
    assert all(set(l["row_tiles"]) == {252} for l in convs[1:]), \
        [(l["node"], l["row_tiles"]) for l in convs]
    x = load_dataset("digits32:test", limit=8).x
    floats = program.run(x, mode="float").output
    reference = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"]) \
        .run(["logits"], {"input": x})[0]
    np.testing.assert_allclose(floats, reference, atol=1e-3)
