"""The analytic mode's variance against the bit-level kernel itself, with an ADC range that
follows the rows a tile drives (``full_scale used_rows``): noise given in LSBs is a share of
the tile's range, so a 300-row tile of a 1152-row array is far less noisy in MAC units."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from asimc.chip.conversions import ConversionPlan
from asimc.chip.spec import AdcSpec, ArraySpec, ChipSpec, NoiseSpec, Quantity
from asimc.training.noise import acc_variance
from asimc.kernels import fast
from asimc.kernels.problem import AcimProblem, NoiseKeys


@pytest.mark.parametrize("full_scale", ["rows", "used_rows"])
def test_analytic_variance_matches_the_kernels_noise(full_scale):
    chip = ChipSpec("noise-model", array=ArraySpec(rows=1152),
                    adc=AdcSpec(bits=8, full_scale=full_scale),
                    noise=NoiseSpec(random=Quantity(0.5, "lsb")))
    plan = ConversionPlan(chip)
    gen = torch.Generator().manual_seed(0)
    rows_out, k, n = 400, 300, 16
    x = torch.randint(0, 256, (1, rows_out, k), generator=gen).float()
    w = torch.randint(-127, 128, (1, k, n), generator=gen).float()
    tiles = ((0, k),)
    keys = NoiseKeys(torch.randint(-2 ** 62, 2 ** 62, (1, rows_out), generator=gen),
                     torch.arange(rows_out).view(1, rows_out) * n, 1, rows_out * n)
    noisy = fast.run(AcimProblem(x, w, plan, tiles, keys))
    error = noisy - torch.matmul(x.double(), w.double())
    measured = float(error.var())
    predicted = acc_variance(SimpleNamespace(chip=chip, tiles=tiles), k)
    assert measured == pytest.approx(predicted, rel=0.25)
