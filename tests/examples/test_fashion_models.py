"""The Fashion-MNIST example networks (examples/train_fashion_resnet.py, train_fashion_vit.py):
their FP32 accuracy on all 10,000 test images (onnxruntime, independent of asimc's executor),
the ResNet's row-filling 3x3 convolutions, the ViT's attention products on the chip, and on a
lossless noiseless chip the bit-level simulation equal to the integer model image for image."""
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

import asimc
from asimc.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
RESNET, VIT = MODELS / "fashion_resnet.onnx", MODELS / "fashion_vit.onnx"
UNSIGNED_CHIP = ROOT / "chips" / "asim-bitserial-255.acim"
SIGNED_CHIP = ROOT / "examples" / "chips" / "asim-signed-255.acim"


@pytest.fixture(scope="module")
def test_split():
    return load_dataset("fashion-mnist")


@pytest.mark.slow
@pytest.mark.parametrize("model, floor", [(RESNET, 0.92), (VIT, 0.88)], ids=["resnet", "vit"])
def test_fp32_accuracy_on_the_10000_test_images(model, floor, test_split):
    assert model.stat().st_size < 4_000_000
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(["logits"], {"input": test_split.x[i:i + 1000]})[0]
                             for i in range(0, 10000, 1000)])
    assert logits.shape == (10000, 10)
    accuracy = float((logits.argmax(1) == test_split.y).mean())
    assert accuracy >= floor, accuracy


def test_resnet_3x3_convolutions_fill_the_rows():
    program = asimc.compile(RESNET, UNSIGNED_CHIP)
    convs = [layer for layer in program.report["layers"]
             if layer["op_type"] == "Conv" and layer["k"] % 9 == 0]
    assert len(convs) == 19                                  # stem + 18 in the 9 blocks
    # 28 channels x 9 taps = 252 of 255 rows in every tile of every 3x3 conv after the stem.
    assert all(set(layer["row_tiles"]) == {252} for layer in convs[1:]), \
        [(layer["node"], layer["row_tiles"]) for layer in convs]


def test_vit_attention_products_run_on_the_chip():
    program = asimc.compile(VIT, SIGNED_CHIP)
    products = [layer["node"] for layer in program.report["layers"]
                if layer["node"].endswith(("/attn/MatMul", "/attn/MatMul_1"))]
    # Q.K^T and A.V (two activations) in each of the four blocks; q, k, v, proj are Linear.
    assert len(products) == 8, products


@pytest.mark.slow
@pytest.mark.parametrize("model, chip", [(RESNET, UNSIGNED_CHIP), (VIT, SIGNED_CHIP)],
                         ids=["resnet", "vit"])
def test_lossless_chip_equals_the_int_model_image_for_image(model, chip, test_split):
    program = asimc.compile(model, chip)
    x = test_split.x[:24]
    acim = program.run(x, mode="acim").output
    exact = program.run(x, mode="int").output
    np.testing.assert_array_equal(acim, exact)
    floats = program.run(x, mode="float").output
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(floats, session.run(["logits"], {"input": x})[0], atol=1e-3)
