"""What an on-chip layer computes in the training forward pass: the three noise modes.

Every mode keeps the backward pass straight through the ideal float product of the layer (the
op as the digital registry computes it), so gradients never see rounding or noise:

* ``exact``:    the layer's output *is* the chip's: the bit-level kernel run by
                ``Program.run(mode="acim", taps=True)`` on the same batch (ADC, noise, hybrid
                levels, voting, current domain, mismatch), ``y + (chip - y).detach()``;
* ``analytic``: the chip's quantisers (straight-through), then, per output element, the mean
                error and the variance of the chip's conversions (``ConversionModel``): each
                bit-plane MAC is computed exactly and looked up in a table of the expected
                ADC code and its variance (noise, rounding, the clamp at 0 and full scale,
                gain compression), summed over the conversions with their shift-add weights;
                the output gets that bias and a Gaussian of that variance;
* ``asim``:     ASiM's noise-aware training, ``y += N(0,1) * trim * y`` on the quantised
                output, with ``trim`` the layer's relative noise under the analytic model.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import ops
from ..chip.conversions import ConversionPlan
from ..kernels.quantize import (EPSILON, input_levels, quantize_input, quantize_weight,
                                scale_of, weight_levels)
from ..passes.tile import row_tiles
from ..program import MatrixLayer
from ..runtime.im2col import Conv2d
from .moments import conversion_moments, uniform_variance

MODES = ("exact", "analytic", "asim")


def acc_variance(layer: MatrixLayer, k: int) -> float:
    """The variance, in integer-MAC units, of one output element under the uniform model
    (``moments.uniform_variance``): what the ``asim`` mode's trim and weight-parallel layers
    use."""
    plan = ConversionPlan(layer.chip)
    return uniform_variance(plan, len(_tiles(layer, k)))


def _tiles(layer: MatrixLayer, k: int) -> tuple[tuple[int, int], ...]:
    """The layer's row tiles; a run-time K (dynamic operands) is cut flat, as the executor
    does."""
    if layer.tiles and layer.tiles[-1][1] == k:
        return layer.tiles
    return row_tiles(k, layer.chip.array.rows)[0]


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
        if self.mode == "exact":
            y = ops.run_op(node, inputs)[0]
            chip = torch.as_tensor(self.taps[node.name], dtype=y.dtype, device=y.device)
            return [y + (chip - y).detach()]
        y, mean, std = self._quantised(layer, node, inputs, refined=self.mode == "analytic")
        noise = torch.randn(y.shape, generator=self.generator, dtype=y.dtype).to(y.device)
        if self.mode == "analytic":
            return [y + mean + noise * std]
        power = (y.detach() ** 2).mean()
        trim = torch.sqrt((std ** 2).expand_as(y).mean() / power) if power > 0 else 0.0
        return [y + noise * trim * y]

    # -- the chip's quantisers, straight through ------------------------------------------------
    def _input(self, layer: MatrixLayer, x: Tensor, static):
        """(straight-through quantised input, its scale, the integer codes)."""
        chip = layer.chip
        signed, bits = chip.input.signed, chip.input.bits
        d = x.detach()
        if chip.quant.input == "static" and static is not None:
            s = torch.tensor(static, dtype=torch.float32, device=x.device)
        elif chip.quant.input == "per_sample" and x.dim() > 1:
            peak = d.abs() if signed else d
            s = peak.reshape(len(d), -1).amax(dim=1).view(-1, *[1] * (d.dim() - 1)) + EPSILON
        else:
            s = self._dynamic_scale(layer.node, d, signed)
        codes = quantize_input(d, s, bits, signed)
        return _ste(x, codes * s / input_levels(bits, signed)), s, codes

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
        if layer.chip.quant.weight == "per_channel" and axis is not None and d.dim() > 1:
            dims = [i for i in range(d.dim()) if i != axis % d.dim()]
            s = d.abs().amax(dim=dims, keepdim=True) + EPSILON
        else:
            s = d.abs().amax() + EPSILON
        codes = quantize_weight(d, s, bits)
        return _ste(w, codes * s / weight_levels(bits)), s, codes

    def _quantised(self, layer: MatrixLayer, node, inputs: list, *, refined: bool
                   ) -> tuple[Tensor, Tensor | float, Tensor]:
        """The layer's output with quantised operands, the conversions' mean error and the
        noise std of each element (in output units; the mean error is 0 unless ``refined``)."""
        x, w = inputs[0], inputs[1]
        op = node.op_type
        if op == "Conv":
            w_axis, y_axis, k = 0, 1, w[0].numel()
        elif op == "Gemm":
            w_axis = 0 if node.attr("transB", 0) else 1
            y_axis = -1
            k = x.shape[0] if node.attr("transA", 0) else x.shape[-1]
        else:
            w_axis, y_axis, k = -1, -1, x.shape[-1]
        xq, sx, x_codes = self._input(layer, x, layer.input_scale)
        if layer.kind == "dynamic":       # the second operand is quantised like a weight
            d = w.detach()
            sw = (torch.tensor(layer.operand_scale, dtype=torch.float32)
                  if layer.operand_scale is not None else
                  self._dynamic_scale(layer.node + "/operand", d, True))
            bits = layer.chip.weight.bits
            w_codes = quantize_weight(d, sw, bits)
            wq = _ste(w, w_codes * sw / weight_levels(bits))
        else:
            wq, sw, w_codes = self._weight(layer, w, w_axis)
        y = ops.run_op(node, [xq, wq, *inputs[2:]])[0]
        chip = layer.chip
        unit = 1.0 / (weight_levels(chip.weight.bits) *
                      input_levels(chip.input.bits, chip.input.signed))
        if sw.numel() > 1:                    # per-channel weight scales: along y's channels
            sw = sw.reshape(-1).view(_channel_shape(y.dim(), y_axis))
        if sx.numel() > 1:                    # per-sample input scales: along the batch
            sx = sx.reshape(-1).view(-1, *[1] * (y.dim() - 1))
        if op == "Gemm" and node.attr("alpha", 1.0) != 1.0:
            unit *= abs(node.attr("alpha", 1.0))
        scale = sw * sx * unit
        plan = ConversionPlan(chip)
        if refined and not plan.weight_parallel:
            mean, variance = self._moments(layer, node, plan, x_codes, w_codes, int(k))
            mean = mean.view(y.shape).to(y.dtype)
            variance = variance.view(y.shape).to(y.dtype)
            return y, (mean * scale).to(y.dtype), (torch.sqrt(variance) * scale).to(y.dtype)
        key = (layer.node, int(k))
        if key not in self._variance:
            self._variance[key] = acc_variance(layer, int(k))
        return y, 0.0, (scale * math.sqrt(self._variance[key])).to(y.dtype)

    def _moments(self, layer: MatrixLayer, node, plan: ConversionPlan, x: Tensor, w: Tensor,
                 k: int) -> tuple[Tensor, Tensor]:
        """The conversions' mean error and variance in integer-product units, in the shape of
        the node's output: the product lowered to (G, R, K) x (Gw, K, N) as the executor does."""
        tiles = _tiles(layer, k)
        if node.op_type == "Conv":
            conv = Conv2d.of(node, x, w.shape)
            padded = conv.pad(conv.as_2d(x))
            out_hw = conv.output_size(padded)
            positions = out_hw[0] * out_hw[1]
            groups, batch = layer.groups, padded.shape[0]
            rows = conv.rows(padded, groups, k, positions)
            cout = w.shape[0]
            weights = w.reshape(groups, cout // groups, -1).transpose(1, 2)
            mean, variance = conversion_moments(plan, rows, weights, tiles)

            def back(t):
                t = t.view(groups, batch, positions, cout // groups).permute(1, 0, 3, 2)
                return conv.back(t.reshape(batch, cout, *out_hw))
            return back(mean), back(variance)
        a, b = x, w
        if node.op_type == "Gemm":
            if node.attr("transA", 0):
                a = a.t()
            if node.attr("transB", 0):
                b = b.t()
        if a.dim() == 1:
            a = a.unsqueeze(0)
        if b.dim() == 1:
            b = b.unsqueeze(1)
        if layer.kind == "static" and b.dim() == 2:
            rows, weights = a.reshape(1, -1, a.shape[-1]), b.unsqueeze(0)
        else:
            lead = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            m, n = a.shape[-2], b.shape[-1]
            rows = a.expand(*lead, m, k).reshape(-1, m, k)
            weights = b.expand(*lead, k, n).reshape(-1, k, n)
        return conversion_moments(plan, rows, weights, tiles)
