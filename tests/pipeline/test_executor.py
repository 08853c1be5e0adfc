"""Program.run end to end: the three modes, the ladder's exactness rungs, reproducibility."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest

import asimc
from asimc.chip.spec import (AdcSpec, ArraySpec, ChipSpec, HybridSpec, InputSpec, NoiseSpec,
                             QuantSpec, Quantity, VotingSpec, WeightSpec)
from asimc.errors import DeviceError, InputDataError

from frontend.torch_models import example, export

IDEAL = ChipSpec("ideal-255")                                      # rows 255, ADC 8: lossless
NOISY = replace(IDEAL, noise=NoiseSpec(Quantity(1, "lsb"), Quantity(0.5, "%")))
MODELS = ["cnn", "mlp", "transformer", "attention"]


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return request.param, export(request.param, dynamo=False)


def onnxruntime_output(onnx_bytes, x):
    session = ort.InferenceSession(onnx_bytes)
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_float_mode_matches_onnxruntime(model):
    name, onnx_bytes = model
    x = example(name, 5)
    got = asimc.compile(onnx_bytes, IDEAL).run(x, mode="float").output
    np.testing.assert_allclose(got, onnxruntime_output(onnx_bytes, x), atol=1e-4, rtol=1e-4)


def test_lossless_noiseless_chip_is_bit_identical_to_int_mode(model):
    name, onnx_bytes = model
    x = example(name, 4)
    program = asimc.compile(onnx_bytes, IDEAL)
    assert any(l.on_chip for l in program.layers.values())
    int_run = program.run(x, mode="int", taps=True)
    acim_run = program.run(x, mode="acim", taps=True)
    assert np.array_equal(int_run.output, acim_run.output)
    for node, value in int_run.taps.items():
        assert np.array_equal(value, acim_run.taps[node]), node


def test_int_mode_is_close_to_float(model):
    name, onnx_bytes = model
    x = example(name, 8)
    # The test inputs are N(0, 1): signed inputs, so that nothing is clipped at zero.
    program = asimc.compile(onnx_bytes, replace(IDEAL, input=InputSpec(8, signed=True)))
    exact = program.run(x, mode="float").output
    quantised = program.run(x, mode="int").output
    error = np.linalg.norm(quantised - exact) / np.linalg.norm(exact)
    assert 0 < error < 0.1


@pytest.mark.parametrize("spec", [
    replace(IDEAL, adc=AdcSpec(5)),
    replace(IDEAL, input=InputSpec(8, False, 3), adc=AdcSpec(7)),
    replace(IDEAL, input=InputSpec(6, True, 2), weight=WeightSpec(5), array=ArraySpec(rows=40)),
    replace(NOISY, hybrid=HybridSpec(2)),
    replace(NOISY, voting=VotingSpec(2, 3)),
], ids=["adc5", "parallel3", "signed-rows40", "hybrid", "voting"])
def test_fast_and_reference_kernels_agree_on_whole_models(spec):
    onnx_bytes = export("cnn", dynamo=False)
    x = example("cnn", 3)
    program = asimc.compile(onnx_bytes, spec)
    fast = program.run(x, seed=3).output
    reference = program.run(x, seed=3, kernel="reference").output
    assert np.array_equal(fast, reference)


def test_noise_is_reproducible_and_depends_on_the_seed():
    onnx_bytes = export("cnn", dynamo=False)
    x = example("cnn", 6)
    program = asimc.compile(onnx_bytes, NOISY)
    a = program.run(x, seed=1).output
    assert np.array_equal(a, program.run(x, seed=1).output)
    assert not np.array_equal(a, program.run(x, seed=2).output)
    assert not np.array_equal(a, program.run(x, mode="int").output)


@pytest.mark.parametrize("name", MODELS)
def test_a_sample_gives_the_same_numbers_alone_or_in_any_batch(name):
    onnx_bytes = export(name, dynamo=False)
    spec = replace(NOISY, quant=QuantSpec(input="per_sample"), adc=AdcSpec(7))
    program = asimc.compile(onnx_bytes, spec)
    x = example(name, 9, seed=4)
    batch = program.run(x, seed=7).output
    alone = program.run(x[5:6], seed=7).output
    seven = program.run(x[2:9], seed=7, memory_budget=1 << 16).output
    assert np.array_equal(alone[0], batch[5])
    assert np.array_equal(seven, batch[2:9])


def test_static_scales_make_samples_batch_independent(tmp_path):
    onnx_bytes = export("mlp", dynamo=False)
    calibration = example("mlp", 32, seed=9)
    program = asimc.compile(onnx_bytes, NOISY, input_scales=calibration)
    assert all(l.input_scale is not None for l in program.layers.values() if l.on_chip)
    x = example("mlp", 7, seed=2)
    batch = program.run(x, seed=0).output
    assert np.array_equal(program.run(x[3:4], seed=0).output[0], batch[3])


def test_artifact_round_trip_runs_identically(tmp_path):
    onnx_bytes = export("transformer", dynamo=False)
    program = asimc.compile(onnx_bytes, NOISY)
    path = tmp_path / "model.asimc"
    program.save(path)
    loaded = asimc.load_program(path)
    x = example("transformer", 3)
    assert np.array_equal(loaded.run(x, seed=5).output, program.run(x, seed=5).output)
    assert loaded.report == program.report


def test_bad_inputs_are_reported_with_expected_and_got():
    program = asimc.compile(export("cnn", dynamo=False), IDEAL)
    with pytest.raises(InputDataError, match=r"expected shape \[batch, 1, 8, 8\], got \(2, 1, 8, 9\)"):
        program.run(np.zeros((2, 1, 8, 9), np.float32))
    with pytest.raises(InputDataError, match="NaN"):
        program.run(np.full((1, 1, 8, 8), np.nan, np.float32))
    with pytest.raises(InputDataError, match="unknown input.*'image'.*x: float32"):
        program.run({"image": np.zeros((1, 1, 8, 8), np.float32)})
    with pytest.raises(InputDataError, match="expected 4 dimensions"):
        program.run(np.zeros((1, 64), np.float32))


def test_cuda_asked_for_but_absent_is_a_clear_error(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    program = asimc.compile(export("mlp", dynamo=False), IDEAL)
    with pytest.raises(DeviceError, match="CUDA"):
        program.run(example("mlp", 1), device="cuda")


def test_lsb_noise_is_one_step_of_the_adc_that_converts():
    from asimc.chip.conversions import ConversionPlan
    serial = replace(IDEAL, adc=AdcSpec(6), noise=NoiseSpec(Quantity(2, "lsb")))
    assert ConversionPlan(serial).noise_sigmas()[0] == pytest.approx(2 / 63)
    parallel = replace(serial, weight=WeightSpec(4, parallel=True), input=InputSpec(4))
    assert ConversionPlan(parallel).noise_sigmas()[0] == pytest.approx(2 / 31)   # signed ADC


def test_per_sample_scales_where_samples_cannot_be_told_apart_is_a_clear_error():
    import io
    import torch
    from torch import nn

    class MixesTheBatch(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x - x.mean(dim=0, keepdim=True))   # every sample sees the others

    buffer = io.BytesIO()
    torch.onnx.export(MixesTheBatch().eval(), (torch.randn(3, 4),), buffer, dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "b"}})
    program = asimc.compile(buffer.getvalue(), replace(IDEAL, quant=QuantSpec(input="per_sample")))
    from asimc.errors import ModelError
    with pytest.raises(ModelError, match="per-sample scales.*cannot be followed"):
        program.run(np.random.rand(3, 4).astype(np.float32))
