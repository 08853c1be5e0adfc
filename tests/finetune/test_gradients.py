"""Gradients flow through every on-chip op type in every noise mode, and the exact mode's
forward pass is the chip's own output."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import pytest
import torch

import asimc
from asimc.training.noise import ChipForward

ROOT = Path(__file__).resolve().parents[2]
CHIP = ROOT / "examples" / "chips" / "noisy-0.5lsb.acim"


def _models():
    spec = importlib.util.spec_from_file_location("finetune_models", Path(__file__).with_name("models.py"))
    module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


models = _models()


def _setup(name):
    source = models.export(name)
    program = asimc.compile(source, CHIP)
    return source, program, program.module(mode="acim")


def test_every_matrix_op_runs_on_the_chip():
    ops = set()
    for name in ("conv", "matmul"):
        _, program, _ = _setup(name)
        ops |= {(l.op_type, l.kind) for l in program.layers.values() if l.on_chip}
    assert {("Conv", "static"), ("Gemm", "static"), ("MatMul", "static"),
            ("MatMul", "dynamic")} <= ops


@pytest.mark.parametrize("mode", ["exact", "analytic", "asim"])
@pytest.mark.parametrize("name", ["conv", "matmul"])
def test_gradients_reach_every_trained_initializer(name, mode):
    _, program, module = _setup(name)
    x, y = models.data(name, 16)
    taps = program.run(x, mode="acim", taps=True, seed=3).taps if mode == "exact" else None
    hook = ChipForward(program.layers, mode, taps=taps,
                       generator=torch.Generator().manual_seed(0))
    out = module.graph_outputs({"x": torch.from_numpy(x)}, hook=hook)[0]
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
    loss.backward()
    for param_name, param in zip(module.names, module.weights):
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, param_name
    # BatchNorm's scale and bias are trained through the folded Conv weight and bias
    if name == "conv":
        assert {"bn.weight", "bn.bias", "conv.weight", "conv.bias"} <= set(module.names)
    else:      # the constant MatMul's weight only reaches the loss through h @ h^T
        assert "weight" in module.names


@pytest.mark.parametrize("name", ["conv", "matmul"])
def test_exact_forward_is_the_chip_and_float_forward_is_the_model(name):
    source, program, module = _setup(name)
    x, _ = models.data(name, 8)
    chip = program.run(x, mode="acim", taps=True, seed=7)
    with torch.no_grad():
        ours = module.graph_outputs({"x": torch.from_numpy(x)},
                                    hook=ChipForward(program.layers, "exact",
                                                     taps=chip.taps))[0].numpy()
        plain = module.graph_outputs({"x": torch.from_numpy(x)})[0].numpy()
    np.testing.assert_allclose(ours, chip.output, rtol=1e-5, atol=1e-5)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(plain, session.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)
    assert np.abs(ours - plain).max() > 1e-3        # the chip's noise is really in there


def test_straight_through_gradient_is_the_ideal_products():
    """The exact mode's gradient is that of the float graph evaluated on the chip's
    activations: with the noise off and a lossless chip the two are the same."""
    source, _, module = _setup("conv")
    quiet = asimc.compile(source, ROOT / "chips" / "asim-bitserial-255.acim")
    x, y = models.data("conv", 8)
    taps = quiet.run(x, mode="acim", taps=True).taps
    grads = []
    for hook in (ChipForward(quiet.layers, "exact", taps=taps), None):
        module.zero_grad()
        out = module.graph_outputs({"x": torch.from_numpy(x)}, hook=hook)[0]
        torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in module.weights]))
    # W8A8 quantisation moves the activations a little, not the gradient's direction
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.99


def test_freeze_bn_keeps_batchnorm_scale_and_bias_out_of_training():
    from asimc.training import finetune
    source = models.export("conv")
    x, y = models.data("conv", 32)
    frozen = finetune(source, CHIP, (x, y), epochs=1, batch_size=16, eval_seeds=1,
                      freeze_bn=True)
    assert "conv.weight" in frozen.trained
    assert not {"bn.weight", "bn.bias"} & set(frozen.trained)
    written = {i.name: onnx.numpy_helper.to_array(i) for i in frozen.model.graph.initializer}
    original = {i.name: onnx.numpy_helper.to_array(i)
                for i in onnx.load_from_string(source).graph.initializer}
    for name in ("bn.weight", "bn.bias"):
        np.testing.assert_array_equal(written[name], original[name])
