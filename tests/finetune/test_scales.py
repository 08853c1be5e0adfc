"""The analytic modes scale dynamic per-tensor inputs as the evaluation batch will."""
from __future__ import annotations

import pytest
import torch

from asimc.training.noise import ScaleWindow


def test_dynamic_scales_are_those_of_an_evaluation_batch():
    """Per-tensor dynamic scales are maxima over the batch: training on batches of 8 with a
    window of 24 scales each step's inputs by the maximum over its own and the two steps'
    before, as an evaluation batch of 24 would; each layer has its own window."""
    window = ScaleWindow(24)
    peaks = torch.tensor([5.0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3,
                          3, 4, 4, 4, 4, 4, 4, 4, 4])
    scales = [float(window.scale("layer", peaks[i:i + 8])) for i in range(0, 32, 8)]
    assert scales == pytest.approx([5, 5, 5, 4], abs=1e-6)
    assert float(window.scale("other", peaks[8:16])) == pytest.approx(2, abs=1e-6)
