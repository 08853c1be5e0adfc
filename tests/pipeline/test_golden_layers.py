"""golden's per-layer "why": the input range each layer uses and the array's own SQNR."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import asimc
from asimc.chip.spec import ChipSpec, NoiseSpec, Quantity
from asimc.golden import golden_ladder

from frontend.torch_models import export

IDEAL = ChipSpec("ideal-255")                       # rows 255, 8-bit ADC: lossless
NOISY = replace(IDEAL, noise=NoiseSpec(Quantity(0.5, "lsb"), Quantity(0, "%")))


@pytest.mark.slow
def test_input_range_used_and_array_sqnr_per_layer():
    onnx_bytes = export("mlp", dynamo=False)
    x = np.random.default_rng(0).uniform(0, 1, size=(40, 64)).astype(np.float32)
    x[:, :8] *= 0.1                                   # some quiet inputs
    result = golden_ladder(onnx_bytes, asimc.compile(onnx_bytes, NOISY), x)
    layers = result.layers
    assert len(layers) == 3
    # the first layer's inputs are the data: RMS of the integer inputs over Lx = 255, by hand
    scale = np.float32(x.max()) + np.float32(1e-7)
    xq = np.round(np.clip(x / scale, 0, 1) * 255)
    expected = np.sqrt((xq.astype(np.float64) ** 2).mean()) / 255
    assert abs(layers[0].input_range_used - expected) < 1e-9
    for layer in layers:
        assert 0 < layer.input_range_used <= 1
        # the lossless array is exact on its own inputs; the noise is what costs
        assert layer.ideal_array_sqnr_db == float("inf")
        assert 0 < layer.array_sqnr_db < 60
    # the first layer sees the same inputs on a chip with a fifth of the noise: its array SQNR
    # rises by about 20 log10(5) = 14 dB
    quiet = replace(IDEAL, noise=NoiseSpec(Quantity(0.1, "lsb"), Quantity(0, "%")))
    again = golden_ladder(onnx_bytes, asimc.compile(onnx_bytes, quiet), x).layers[0]
    assert again.input_range_used == layers[0].input_range_used
    assert again.array_sqnr_db > layers[0].array_sqnr_db + 8
