"""The Triton kernel against the reference kernel, bit for bit, under TRITON_INTERPRET=1.

The interpreter runs the very kernel a GPU compiles (same Philox, same float32 steps) on CPU
tensors, slowly: the chips here are small (4-bit weights, 2-6 bit inputs, short tiles) but cover
the configuration space of the kernel: unsigned and signed inputs, serial and parallel encodings
with an uneven top group, hybrid levels, voting, the current domain's gain compression, every
kind of noise (lsb and %, random and non-linear), lossy and lossless ADC widths, ADC ranges
(used_rows, a fraction), static and run-time (per-group) weights, and several row tiles. Needs ``asimc[gpu]`` (Triton).
"""
from __future__ import annotations

import os
from dataclasses import replace

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

pytest.importorskip("triton", reason="Triton is the asimc[gpu] extra: pip install -e .[gpu]")

from asimc.chip.conversions import ConversionPlan                      # noqa: E402
from asimc.chip.spec import (AdcSpec, ArraySpec, DomainSpec, HybridSpec, InputSpec,  # noqa: E402
                             NoiseSpec, Quantity, VotingSpec, WeightSpec)
from asimc.kernels import reference, triton_kernel                    # noqa: E402

from .test_kernels import chip, random_problem                         # noqa: E402

SMALL = dict(weight=WeightSpec(4), input=InputSpec(4), array=ArraySpec(rows=24),
             adc=AdcSpec(4), noise=NoiseSpec(Quantity(1, "lsb")))


def small(**blocks):
    return chip(**{**SMALL, **blocks})


TRITON_CHIPS = {
    "serial-lsb": small(),
    "serial-noiseless-adc3": small(adc=AdcSpec(3), noise=NoiseSpec(Quantity(0, "lsb"))),
    "parallel-3-uneven-adc6": small(input=InputSpec(5, False, 3), adc=AdcSpec(6)),
    "signed-parallel-2": small(input=InputSpec(6, True, 2), adc=AdcSpec(5),
                               noise=NoiseSpec(Quantity(0.4, "%"), Quantity(0.4, "%"))),
    "weights-5-adc8-lossless-rows-16": small(weight=WeightSpec(5), array=ArraySpec(rows=16),
                                             input=InputSpec(2), adc=AdcSpec(8)),
    "hybrid-2": small(hybrid=HybridSpec(2)),
    "voting": small(voting=VotingSpec(2, 3), noise=NoiseSpec(Quantity(0.8, "lsb"))),
    "nonlinear-percent": small(noise=NoiseSpec(Quantity(0, "%"), Quantity(2.0, "%")),
                               hybrid=HybridSpec(1)),
    "current-alpha-hybrid": small(domain=DomainSpec("current", 0.01, Quantity(0.0, "%")),
                                  hybrid=HybridSpec(1)),
    # ADC ranges: per tile (used_rows: the partial last tile has its own), and a fraction.
    "used-rows-nonlinear": small(adc=AdcSpec(5, "used_rows"),
                                 noise=NoiseSpec(Quantity(0.5, "%"), Quantity(1.0, "%"))),
    "range-fraction-voting": small(adc=AdcSpec(6, Quantity(40.0, "%")),
                                   voting=VotingSpec(1, 3)),
}


@pytest.mark.parametrize("name", TRITON_CHIPS)
def test_triton_kernel_is_bit_identical_to_reference(name):
    spec = TRITON_CHIPS[name]
    plan = ConversionPlan(spec)
    dynamic = name in ("serial-lsb", "signed-parallel-2")
    problem = random_problem(spec, groups=2 if dynamic else 1,
                             weight_groups=2 if dynamic else 1, rows_out=9, k=40, n=5,
                             noise=plan.has_noise, seed=2)
    assert triton_kernel.usable(problem)
    got = triton_kernel.run(problem, block_rows=16, block_columns=16)
    want = reference.run(problem)
    assert torch.equal(got, want), f"{(got != want).sum().item()} outputs differ"


def test_triton_kernel_refuses_what_it_does_not_run():
    spec = chip(domain=DomainSpec("current", 0.002, Quantity(1.0, "%")))   # cell mismatch
    problem = random_problem(spec, rows_out=4, k=20, n=3)
    assert not triton_kernel.usable(problem)
    with pytest.raises(ValueError, match="Triton kernel needs"):
        triton_kernel.run(problem)
    columns = replace(random_problem(small(), rows_out=4, k=20, n=3, noise=True),
                      offset=torch.zeros(1, 4, 3))                       # column ADC errors
    assert not triton_kernel.usable(columns)
