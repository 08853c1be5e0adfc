"""The exact integer product (asimc.kernels.exact) against the float64 product it replaces.

float32 holds integers exactly only up to 2^24: the worst-case problems here make sums of
255 * 127 per step cross it, so a product that split its reduction wrongly (or not at all)
would round and fail these tests.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import asimc
from asimc.chip.spec import AdcSpec, ArraySpec, ChipSpec, InputSpec
from asimc.kernels import exact, fast, reference
from asimc.runtime.im2col import Conv2d

from .test_kernels import chip, random_problem

STEP = 255 * 127          # the largest |x * w| of 8-bit unsigned inputs and 8-bit weights
# The longest reduction whose worst-case sum stays within float32's exact integers.
LONGEST_EXACT = (1 << 24) // STEP                     # 518


def integers(shape, low, high, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(low, high + 1, shape, generator=gen).float()


def old_product(x, w):
    """What int mode computed before: one float64 matrix product."""
    return torch.matmul(x.double(), w.double())


def old_conv(padded, w, conv):
    """What int mode computed for a convolution before: im2col rows, one float64 matrix product,
    in torch's convolution layout (B, G*N, oh, ow)."""
    groups, k, n = w.shape
    out_hw = conv.output_size(padded)
    positions = out_hw[0] * out_hw[1]
    rows = old_product(conv.rows(padded, groups, k, positions), w)
    return rows.view(groups, padded.shape[0], positions, n).permute(1, 0, 3, 2) \
        .reshape(padded.shape[0], groups * n, *out_hw)


@pytest.mark.parametrize("groups,weight_groups,rows,k,n,x_range,w_range", [
    (1, 1, 37, 300, 11, (0, 255), (-127, 127)),
    (3, 3, 20, 1500, 7, (-127, 127), (-127, 127)),       # run-time operand: one per group
    (2, 1, 9, 4099, 5, (0, 255), (-127, 127)),           # K past 2^24 / (255 * 127): split
    (1, 1, 5, 700, 3, (0, 65535), (-32767, 32767)),      # 16-bit: no chunk is exact: float64
    (1, 1, 4, 0, 3, (0, 255), (-127, 127)),              # empty reduction
])
def test_matmul_equals_the_float64_product_on_random_problems(groups, weight_groups, rows, k, n,
                                                              x_range, w_range):
    x = integers((groups, rows, k), *x_range, seed=k)
    w = integers((weight_groups, k, n), *w_range, seed=k + 1)
    got = exact.matmul(x, w)
    assert got.dtype == torch.float64
    assert torch.equal(got, old_product(x, w))


@pytest.mark.parametrize("k", [LONGEST_EXACT, LONGEST_EXACT + 1, 1001, 4609])
def test_matmul_is_exact_at_worst_case_magnitudes(k):
    # Every step adds 255 * 127 (odd): past 2^24 the running sums are odd integers that float32
    # cannot hold, so a chunk one step longer than the bound allows comes out wrong.
    x = torch.full((1, 3, k), 255.0)
    w = torch.cat([torch.full((1, k, 2), 127.0), torch.full((1, k, 1), -127.0)], dim=2)
    want = old_product(x, w)
    assert torch.equal(want[0, 0], torch.tensor([k * STEP, k * STEP, -k * STEP],
                                                dtype=torch.float64))
    if k > LONGEST_EXACT and k % 2:
        assert not torch.equal(torch.matmul(x, w).double(), want)     # float32 alone rounds
    assert torch.equal(exact.matmul(x, w), want)


def test_matmul_stays_exact_under_reduced_float32_precision():
    # "medium" lets oneDNN run float32 products in bf16 on CPUs that have it: the exact
    # product must not follow (12-bit operands do not fit bf16's 8 bits).
    x = integers((1, 64, 300), 0, 4095, seed=1)
    w = integers((1, 300, 32), -1000, 1000, seed=2)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        got = exact.matmul(x, w)
    finally:
        torch.set_float32_matmul_precision(before)
    assert torch.equal(got, old_product(x, w))


def geometry(kernel, strides=(1, 1), dilations=(1, 1)) -> Conv2d:
    return Conv2d(tuple(kernel), tuple(strides), tuple(dilations), (0, 0), (0, 0), False)


def conv_case(batch, channels, size, groups, n, kernel, x_range, w_range, seed):
    padded = integers((batch, channels, *size), *x_range, seed=seed)
    k = channels // groups * kernel[0] * kernel[1]
    return padded, integers((groups, k, n), *w_range, seed=seed + 1)


@pytest.mark.parametrize("batch,channels,size,groups,n,kernel,strides,dilations,x_range", [
    (2, 16, (9, 9), 1, 8, (3, 3), (1, 1), (1, 1), (0, 255)),
    (3, 12, (10, 7), 3, 5, (3, 2), (2, 1), (1, 2), (-127, 127)),     # grouped, strided, dilated
    (2, 8, (6, 6), 8, 2, (3, 3), (1, 1), (1, 1), (0, 255)),          # depthwise
    (2, 130, (6, 6), 1, 9, (3, 3), (1, 1), (1, 1), (0, 255)),        # K 1170: split channels
    (2, 130, (6, 6), 2, 4, (3, 3), (2, 2), (1, 1), (0, 255)),        # split within groups
    (1, 4, (5, 5), 1, 3, (1, 1), (1, 1), (1, 1), (0, 1 << 20)),      # too large: im2col float64
])
def test_conv2d_equals_the_im2col_float64_product(batch, channels, size, groups, n, kernel,
                                                   strides, dilations, x_range):
    padded, w = conv_case(batch, channels, size, groups, n, kernel, x_range, (-127, 127),
                          seed=channels)
    conv = geometry(kernel, strides, dilations)
    got = exact.conv2d(padded, w, conv)
    assert got.dtype == torch.float64
    assert torch.equal(got, old_conv(padded, w, conv))


def test_conv2d_is_exact_at_worst_case_magnitudes():
    # 65 channels x 3 x 3 = 585 steps of 255 * 127: an odd sum past 2^24 in every output.
    padded = torch.full((2, 65, 5, 5), 255.0)
    w = torch.full((1, 585, 4), 127.0)
    w[..., 1] = -127.0
    conv = geometry((3, 3))
    want = old_conv(padded, w, conv)
    assert torch.equal(want[0, :, 0, 0], torch.tensor([1, -1, 1, 1], dtype=torch.float64)
                       * (585 * STEP))
    assert not torch.equal(F.conv2d(padded, w[0].t().reshape(4, 65, 3, 3)).double(), want)
    assert torch.equal(exact.conv2d(padded, w, conv), want)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_conv2d_is_exact_without_onednn():
    # Without oneDNN, torch picks NNPACK's Winograd convolution for batches of 16, which rounds.
    padded, w = conv_case(16, 16, (10, 10), 1, 8, (3, 3), (0, 255), (-127, 127), seed=5)
    conv = geometry((3, 3))
    want = old_conv(padded, w, conv)
    with torch.backends.mkldnn.flags(enabled=False, allow_tf32=False):
        if torch.backends.nnpack.is_available():
            weight = w[0].t().reshape(8, 16, 3, 3)
            assert not torch.equal(F.conv2d(padded, weight).double(),
                                   F.conv2d(padded.double(), weight.double()))
        assert torch.equal(exact.conv2d(padded, w, conv), want)


def test_all_exact_kernel_product_at_worst_case_magnitudes():
    # Lossless and noiseless: the fast kernel's merged product, against the bit-level reference.
    spec = chip(array=ArraySpec(rows=255), adc=AdcSpec(8))
    problem = random_problem(spec, rows_out=6, k=1001, n=4)
    problem = replace(problem, x=torch.full_like(problem.x, 255.0),
                      w=torch.where(problem.w < 0, -127.0, 127.0))
    want = old_product(problem.x, problem.w)
    assert torch.equal(fast.run(problem), want)
    assert torch.equal(reference.run(problem), want)


class WorstCase(nn.Module):
    """Constant positive inputs and weights: every quantised operand at its largest value, and
    odd reductions past 2^24 in the convolution (65 x 3 x 3) and the linear layer (1001)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(65, 3, 3, bias=False)
        self.fc = nn.Linear(1001, 2, bias=False)
        nn.init.constant_(self.conv.weight, 0.25)
        nn.init.constant_(self.fc.weight, 0.5)

    def forward(self, x):
        return self.conv(x), self.fc(x.flatten(1)[:, :1001])


def test_int_mode_equals_the_ideal_chip_and_the_reference_kernel_at_worst_case_magnitudes(
        tmp_path):
    path = tmp_path / "worst.onnx"
    torch.onnx.export(WorstCase().eval(), (torch.ones(1, 65, 7, 7),), str(path), dynamo=False,
                      opset_version=17, input_names=["x"], output_names=["conv", "fc"],
                      dynamic_axes={"x": {0: "b"}})
    spec = replace(ChipSpec("ideal-255"), input=InputSpec(8, signed=False))   # lossless
    program = asimc.compile(path, spec)
    x = np.full((2, 65, 7, 7), 3.0, dtype=np.float32)
    int_run = program.run(x, mode="int")
    # Every output is K * 255 * 127 integer-product units, dequantised (0.25, 0.5: the weights'
    # scales; 3: the inputs').
    levels = 255 * 127
    for name, k, w in (("conv", 585, 0.25), ("fc", 1001, 0.5)):
        scale = (np.float64(np.float32(w) + np.float32(1e-7))
                 * np.float64(np.float32(3.0) + np.float32(1e-7))) / levels
        np.testing.assert_array_equal(int_run.outputs[name], np.float32(k * levels * scale))
    for kernel in ("fast", "reference"):
        acim_run = program.run(x, mode="acim", kernel=kernel)
        for name, value in int_run.outputs.items():
            assert np.array_equal(value, acim_run.outputs[name]), (kernel, name)


class Convolutions(nn.Module):
    """A grouped, strided, dilated, asymmetrically padded 2-D convolution and a 1-D one."""

    def __init__(self):
        super().__init__()
        self.grouped = nn.Conv2d(8, 6, 3, stride=2, dilation=2, groups=2, bias=True)
        self.line = nn.Conv1d(8, 4, 5, stride=3, dilation=2, padding=2)

    def forward(self, x):
        y = self.grouped(nn.functional.pad(x, (1, 2, 0, 1)))
        return y, self.line(x.flatten(2))


@pytest.fixture(scope="module")
def convolutions(tmp_path_factory):
    path = tmp_path_factory.mktemp("convs") / "convs.onnx"
    torch.manual_seed(0)
    torch.onnx.export(Convolutions().eval(), (torch.randn(1, 8, 11, 11),), str(path),
                      dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["grouped", "line"], dynamic_axes={"x": {0: "b"}})
    spec = replace(ChipSpec("ideal-255"), input=InputSpec(8, signed=True))    # lossless
    x = np.random.default_rng(1).standard_normal((3, 8, 11, 11)).astype(np.float32)
    return asimc.compile(path, spec), x


def test_int_and_ideal_convolutions_equal_the_reference_kernel(convolutions):
    program, x = convolutions
    want = program.run(x, mode="acim", kernel="reference").outputs     # bit-level planes
    for mode in ("int", "acim"):
        got = program.run(x, mode=mode).outputs
        for name in want:
            assert np.array_equal(got[name], want[name]), (mode, name)


def test_merged_convolutions_still_measure_the_array_sqnr(convolutions):
    # The ideal chip's convolutions skip the kernel (one exact product); golden's per-layer
    # array SQNR must still be measured: exact, as the reference kernel measures it.
    program, x = convolutions
    for kernel in ("fast", "reference"):
        stats = program.run(x, mode="acim", kernel=kernel, taps=True).stats
        assert len(stats) == 2 and all(s.sqnr_db == math.inf for s in stats.values()), kernel
