"""Noise figures of bundled chips that were derived from a published compute SNR (CSNR):
the chip must reproduce that CSNR under asimc's own model, measured through the public API."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

import asimc
from asimc.resources import chips_folder


def full_scale_mac_csnr(chip_file: str, rows: int = 512, samples: int = 256) -> float:
    """CSNR (dB) of one rows-long 8b x 8b MAC layer on random full-scale signed data."""
    torch.manual_seed(0)
    layer = nn.Linear(rows, 64, bias=False)
    layer.weight.data.uniform_(-1, 1)
    buffer = io.BytesIO()
    torch.onnx.export(layer.eval(), (torch.randn(1, rows),), buffer, dynamo=False,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}})
    program = asimc.compile(buffer.getvalue(), chips_folder() / chip_file)
    x = np.random.default_rng(0).uniform(-1, 1, (samples, rows)).astype(np.float32)
    exact = program.run(x, mode="int").output.astype(np.float64)
    noisy = program.run(x, mode="acim", seed=0).output.astype(np.float64)
    return 10 * math.log10((exact ** 2).mean() / ((noisy - exact) ** 2).mean())


@pytest.mark.parametrize("chip_file", ["yoshioka-jssc2025-transformer.acim",
                                       "yoshioka-arxiv2023-voting.acim"])
def test_chip_reproduces_its_published_csnr(chip_file):
    assert full_scale_mac_csnr(chip_file) == pytest.approx(31.0, abs=1.0)
