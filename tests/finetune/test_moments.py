"""The analytic mode's conversion model against the chip itself: the mean error and the variance
it predicts for an on-chip layer's outputs are what the bit-level kernel produces over many noise
seeds (the first on-chip layer, whose inputs the noise does not touch), on chips with the clamp
at 0, bit-parallel inputs, gain compression, hybrid levels, majority voting and signed inputs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import asimc
from asimc.chip import load_chip
from asimc.chip.conversions import ConversionPlan
from asimc.data import load_dataset
from asimc.finetune.moments import conversion_table
from asimc.finetune.module import TrainableGraph
from asimc.finetune.noise import ChipForward
from asimc.finetune.params import plan_parameters
from asimc.frontend import import_proto

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "examples" / "models" / "digits_mlp.onnx"
NOISY = ROOT / "examples" / "chips" / "noisy-0.5lsb.acim"
BASE = ROOT / "chips" / "asim-bitserial-255.acim"
SEEDS = 48

VARIANTS = {
    "noisy-0.5lsb": "noise { random 0.5 lsb }",
    "bit-parallel-4": "input { parallel 4 }  noise { random 1 lsb }",
    "current": "domain current { alpha 0.004 }  noise { random 0.5 lsb }",
    "hybrid": "noise { random 1 lsb }  hybrid { digital_levels 3 }",
    "voting": "noise { random 1 lsb }  voting { levels 3  samples 5 }",
    "signed": "input { signed }  noise { random 0.7 lsb  nonlinear 0.5 lsb }",
    "used-rows": "adc { full_scale used_rows }  noise { random 0.5 lsb }",
}


def _chip(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.acim"
    path.write_text(f'chip "{name}" extends "{BASE}" {{ {VARIANTS[name]} }}\n')
    return path


def _first_layer(chip: Path):
    """(chip - ideal) of the first on-chip layer over SEEDS noise seeds, and the model's mean
    error and std for it."""
    source = MLP.read_bytes()
    program = asimc.compile(source, chip)
    x = load_dataset("digits").x[:24].reshape(24, -1)
    first = next(l.node for l in program.layers.values() if l.on_chip)
    ideal = program.run(x, mode="int", taps=True).taps[first]
    errors = np.stack([program.run(x, mode="acim", taps=True, seed=s).taps[first] - ideal
                       for s in range(SEEDS)]).astype(np.float64)
    module = TrainableGraph(program.graph, plan_parameters(import_proto(source), program.graph))
    seen = {}

    class Capture(ChipForward):
        def __call__(self, node, inputs, layouts):
            if node.name == first:
                seen["y"], seen["mean"], seen["std"] = self._quantised(
                    self.layers[first], node, inputs, refined=True)
            return super().__call__(node, inputs, layouts)

    with torch.no_grad():
        module({module.data_inputs[0]: torch.from_numpy(x)},
               hook=Capture(program.layers, "analytic", generator=torch.Generator()))
    np.testing.assert_allclose(seen["y"].numpy(), ideal, rtol=1e-5, atol=1e-5)
    mean = np.broadcast_to(np.asarray(seen["mean"], np.float64), ideal.shape)
    return errors, mean, seen["std"].numpy().astype(np.float64)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_mean_error_and_variance_are_the_chips(tmp_path, variant):
    errors, mean, std = _first_layer(_chip(tmp_path, variant))
    measured_mean, measured_var = errors.mean(axis=0), errors.var(axis=0, ddof=1)
    # the variance, on average over the outputs, within 10 %
    assert abs(measured_var.mean() / (std ** 2).mean() - 1) < 0.10, \
        (measured_var.mean(), (std ** 2).mean())
    # per output, the measured mean is the model's within its sampling error: the normalised
    # residual has a mean square near 1 (a wrong mean error would make it far larger)
    z = (measured_mean - mean) / np.sqrt(std ** 2 / SEEDS + 1e-12)
    assert (z ** 2).mean() < 1.3, (z ** 2).mean()


def test_a_mac_of_zero_reads_high_under_noise():
    """0.5 LSB of noise on a lossless 8-bit conversion: the code of M = 0 is
    round(max(z / 2, 0)), whose mean is P(z > 1) + P(z > 3) + ...; mid-range MACs read true,
    with the variance of the rounded noise; a MAC at full scale reads low by as much."""
    plan = ConversionPlan(load_chip(NOISY))
    error, variance = conversion_table(plan, plan.cycles[0], 1.0, plan.rows, False, 1)
    tail = sum(0.5 * math.erfc((2 * k - 1) / math.sqrt(2)) for k in range(1, 8))
    assert error[0] == pytest.approx(tail, rel=1e-6) and tail > 0.15
    assert error[255] == pytest.approx(-tail, rel=1e-6)
    assert abs(float(error[128])) < 1e-9
    def above(k):                    # P(z / 2 >= k - 1/2)
        return 0.5 * math.erfc((2 * k - 1) / math.sqrt(2))
    rounded = sum((2 * k - 1) * 2 * above(k) for k in range(1, 8))
    assert float(variance[128]) == pytest.approx(rounded, rel=1e-6)
    assert rounded > 0.25                # the rounding of the noise adds to its 0.25
    clamped = sum((2 * k - 1) * above(k) for k in range(1, 8)) - tail ** 2
    assert float(variance[0]) == pytest.approx(clamped, rel=1e-6)


def test_dynamic_scales_are_those_of_an_evaluation_batch():
    """Per-tensor dynamic scales are maxima over the batch: training on batches of 8 with a
    window of 24 scales each step's inputs by the maximum over its own and the two steps'
    before, as an evaluation batch of 24 would."""
    from asimc.finetune.noise import ScaleWindow
    window = ScaleWindow(24)
    peaks = torch.tensor([5.0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3,
                          3, 4, 4, 4, 4, 4, 4, 4, 4])
    scales = [float(window.scale("layer", peaks[i:i + 8])) for i in range(0, 32, 8)]
    assert scales == pytest.approx([5, 5, 5, 4], abs=1e-6)
    assert float(window.scale("other", peaks[8:16])) == pytest.approx(2, abs=1e-6)
