"""What an on-chip layer computes in the training forward pass: the three noise modes.

Every mode keeps the backward pass straight through the ideal float product of the layer (the
op as the digital registry computes it), so gradients never see rounding or noise:

* ``exact``:    the layer's output *is* the chip's: the bit-level kernel run by
                ``Program.run(mode="acim", taps=True)`` on the same batch (ADC, noise, hybrid
                levels, voting, current domain, mismatch), ``y + (chip - y).detach()``;
* ``analytic``: the chip's quantisers (straight-through), then a Gaussian at the output whose
                variance is that of the chip's conversions (``acc_variance``);
* ``asim``:     ASiM's noise-aware training, ``y += N(0,1) * trim * y`` on the quantised
                output, with ``trim`` the layer's relative noise under the analytic model.

The analytic and asim modes scale dynamic per-tensor inputs over a window of the evaluation
batch's size (``ScaleWindow``).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import ops
from ..chip.conversions import ConversionPlan
from ..chip.fields import InputScale, WeightScale
from ..choice import Choice
from ..kernels.quantize import (EPSILON, input_levels, quantize_input, quantize_weight,
                                scale_of, weight_levels)
from ..program import LayerKind, MatrixLayer


class NoiseModel(Choice):
    """The noise modes of the module docstring (``--noise``)."""
    EXACT = "exact"
    ANALYTIC = "analytic"
    ASIM = "asim"


def acc_variance(layer: MatrixLayer, k: int) -> float:
    """Variance, in integer-MAC units, that the conversions add to one output element.

    Sum over row tiles and (weight bit i, input cycle c) of 4^(i + b_c) times the analog
    noise (sigma f F)^2 (majority voting over S samples: the median's pi / (2 S) of it) plus,
    for lossy conversions, the ADC's rounding (f F / L)^2 / 12, with f F the tile's ADC range
    (``adc { full_scale }``). Gain compression, mismatch and the clamp at 0 and f F are not
    modelled (the exact mode has them)."""
    if layer.chip.adc.transfer:
        from ..errors import UsageError
        raise UsageError(f"layer {layer.node}: the analytic and asim noise modes model the "
                         "parametric noise, but the chip draws its codes from a measured "
                         "transfer table: train with --noise exact (or on the chip `asimc chip "
                         "fit` derives from the table)")
    plan = ConversionPlan(layer.chip)
    tiles = layer.tiles if layer.tiles and layer.tiles[-1][1] == k else \
        [(k0, min(k, k0 + plan.rows)) for k0 in range(0, k, plan.rows)]
    total = 0.0
    for k0, k1 in tiles:
        f = plan.range_fraction(k1 - k0)
        sigma_random, sigma_nonlinear = plan.noise_sigmas(f)
        sigma2 = sigma_random ** 2 + sigma_nonlinear ** 2
        if plan.weight_parallel:
            full = f * plan.parallel_full_scale
            total += sigma2 * full ** 2 + (full / plan.adc_levels) ** 2 / 12
            continue
        for cycle, i in plan.pairs:
            full = f * plan.full_scale(cycle)
            votes = plan.conversions(i, cycle)
            term = sigma2 * full ** 2 * (math.pi / (2 * votes) if votes > 1 else votes)
            if not plan.is_lossless(cycle, k1 - k0):
                term += (full / plan.adc_levels) ** 2 / 12
            total += 4.0 ** (i + cycle.low_bit) * term
    return total


def _ste(x: Tensor, q: Tensor) -> Tensor:
    return x + (q - x).detach()


def _channel_shape(rank: int, axis: int) -> list[int]:
    shape = [1] * rank
    shape[axis] = -1
    return shape


class ScaleWindow:
    """Dynamic per-tensor scales as the evaluation will see them.

    A chip with ``quant { input per_tensor }`` scales each product's inputs by their maximum
    over the whole batch, so a model measured on batches of 256 sees larger scales (coarser
    steps, relatively more noise) than a training step on 64. The window keeps each layer's
    per-sample peaks of the last ``size`` training samples (this step's and the steps' before,
    detached) and scales by their maximum, as a batch of ``size`` would."""

    def __init__(self, size: int):
        self.size = size
        self._peaks: dict[str, Tensor] = {}

    def scale(self, key: str, peaks: Tensor) -> Tensor:
        seen = torch.cat([self._peaks.get(key, peaks[:0]), peaks])
        self._peaks[key] = seen[-max(0, self.size - len(peaks)):] if self.size > len(peaks) \
            else peaks[:0]
        return seen.amax().to(torch.float32) + EPSILON


class ChipForward:
    """The interpreter hook for one training step (see the module docstring)."""

    def __init__(self, layers: dict[str, MatrixLayer], mode: str, *, taps=None,
                 generator: torch.Generator | None = None, window: ScaleWindow | None = None,
                 batch: int | None = None):
        self.layers = {k: l for k, l in layers.items() if l.on_chip}
        self.mode = mode
        self.taps = taps or {}
        self.generator = generator
        self.window = window
        self.batch = batch
        self._variance: dict[tuple[str, int], float] = {}

    def __call__(self, node, inputs, layouts):
        layer = self.layers.get(node.name)
        if layer is None:
            return None
        if self.mode == NoiseModel.EXACT:
            y = ops.run_op(node, inputs)[0]
            chip = torch.as_tensor(self.taps[node.name], dtype=y.dtype, device=y.device)
            return [y + (chip - y).detach()]
        y, std = self._quantised(layer, node, inputs)
        noise = torch.randn(y.shape, generator=self.generator, dtype=y.dtype).to(y.device)
        if self.mode == NoiseModel.ANALYTIC:
            return [y + noise * std]
        power = (y.detach() ** 2).mean()
        trim = torch.sqrt((std ** 2).expand_as(y).mean() / power) if power > 0 else 0.0
        return [y + noise * trim * y]

    # -- the chip's quantisers, straight through ------------------------------------------------
    def _input(self, layer: MatrixLayer, x: Tensor, static, rows: bool):
        """``rows``: x's last axis is the product's reduction (not a convolution's input)."""
        chip = layer.chip
        signed, bits = chip.input.signed, chip.input.bits
        d = x.detach()
        if chip.quant.input == InputScale.STATIC and static is not None:
            s = torch.tensor(static, dtype=torch.float32, device=x.device)
        elif chip.quant.input == InputScale.PER_TOKEN and rows and x.dim() > 1:
            s = (d.abs() if signed else d).amax(dim=-1, keepdim=True) + EPSILON
        elif chip.quant.input in (InputScale.PER_SAMPLE, InputScale.PER_TOKEN) and x.dim() > 1:
            peak = d.abs() if signed else d
            s = peak.reshape(len(d), -1).amax(dim=1).view(-1, *[1] * (d.dim() - 1)) + EPSILON
        else:
            s = self._dynamic_scale(layer.node, d, signed)
        q = quantize_input(d, s, bits, signed) * s / input_levels(bits, signed)
        return _ste(x, q), s

    def _dynamic_scale(self, key: str, d: Tensor, signed: bool) -> Tensor:
        """max over the tensor (+ eps), or over the window's samples where the tensor's first
        axis is this step's batch."""
        if self.window is None or d.dim() < 2 or len(d) != self.batch:
            return scale_of(d, signed)
        peaks = (d.abs() if signed else d).reshape(len(d), -1).amax(dim=1)
        return self.window.scale(key, peaks)

    def _weight(self, layer: MatrixLayer, w: Tensor, axis: int | None):
        bits = layer.chip.weight.bits
        d = w.detach()
        if layer.chip.quant.weight == WeightScale.PER_CHANNEL and axis is not None \
                and d.dim() > 1:
            dims = [i for i in range(d.dim()) if i != axis % d.dim()]
            s = d.abs().amax(dim=dims, keepdim=True) + EPSILON
        else:
            s = d.abs().amax() + EPSILON
        q = quantize_weight(d, s, bits) * s / weight_levels(bits)
        return _ste(w, q), s

    def _quantised(self, layer: MatrixLayer, node, inputs: list) -> tuple[Tensor, Tensor]:
        """The layer's output with quantised operands, and the noise std of each element."""
        x, w = inputs[0], inputs[1]
        op = node.op_type
        if op == "Conv":
            w_axis, y_axis, k = 0, 1, w[0].numel()
        elif op == "Gemm":
            w_axis = 0 if node.attr("transB", 0) else 1
            y_axis, k = -1, w.shape[1 - w_axis] if w.dim() == 2 else w.shape[0]
        else:
            w_axis, y_axis, k = -1, -1, w.shape[-2] if w.dim() > 1 else w.shape[0]
        transposed = op == "Gemm" and node.attr("transA", 0)
        rows = op != "Conv" and not transposed
        per_token = rows and layer.chip.quant.input == InputScale.PER_TOKEN
        xq, sx = self._input(layer, x, layer.input_scale, rows)
        if layer.kind == LayerKind.DYNAMIC:       # the second operand is quantised like a weight
            d = w.detach()
            if layer.operand_scale is not None:
                sw = torch.tensor(layer.operand_scale, dtype=torch.float32)
            elif per_token and d.dim() > 1:   # one scale per column, as the executor takes it
                sw = d.abs().amax(dim=-2, keepdim=True) + EPSILON
            else:
                sw = self._dynamic_scale(layer.node + "/operand", d, True)
            bits = layer.chip.weight.bits
            wq = _ste(w, quantize_weight(d, sw, bits) * sw / weight_levels(bits))
        else:
            wq, sw = self._weight(layer, w, w_axis)
        y = ops.run_op(node, [xq, wq, *inputs[2:]])[0]
        key = (layer.node, int(k))
        if key not in self._variance:
            self._variance[key] = acc_variance(layer, int(k))
        chip = layer.chip
        unit = math.sqrt(self._variance[key]) / (weight_levels(chip.weight.bits) *
                                                  input_levels(chip.input.bits,
                                                               chip.input.signed))
        # per-token scales already broadcast: (..., M, 1) along y's rows, (..., 1, N) along its
        # columns
        if sw.numel() > 1 and not (per_token and layer.kind == LayerKind.DYNAMIC):
            sw = sw.reshape(-1).view(_channel_shape(y.dim(), y_axis))   # per-channel weights
        if sx.numel() > 1 and not per_token:  # per-sample input scales: along the batch
            sx = sx.reshape(-1).view(-1, *[1] * (y.dim() - 1))
        if op == "Gemm" and node.attr("alpha", 1.0) != 1.0:
            unit *= abs(node.attr("alpha", 1.0))
        return y, (sw * sx * unit).to(y.dtype)
