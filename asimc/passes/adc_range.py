"""ADC range calibration (``asimc calibrate``): record every on-chip layer's pre-ADC values on
data with the noise off, choose one ADC range per layer, and express it as chip text.

A layer's conversions are recorded exactly, as histograms of the integer MAC M of every
(weight bit i, input cycle c) over all row tiles: M / F is the pre-ADC value in units of the
rows-based full scale F of the cycle (docs/numeric-model.md, "ADC range and fixed-pattern mismatch"). A weight-parallel layer has
one kind of conversion, the signed product of a whole row tile, recorded as |M| against its
full scale (the signed ADC is symmetric, so a range covers both polarities). A range f is then
chosen

- ``percentile``: the P-th percentile of M / F over all conversions (default 99.99 %): only
  1 - P of the conversions clip;
- ``mse``: the f that minimises the quantisation error of the layer's output, i.e. the sum over
  conversions of (2^(i + b_c) (M - Q_f(M)))^2, Q_f the ADC of range f back in MAC units, since
  a conversion's error reaches the output times its shift-add weight (1 for weight-parallel).

``pow2`` rounds f down to 1 / 2^k. The result is a chip that ``extends`` the input chip with
one ``layer "NODE" { adc { full_scale X% } }`` per layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..chip.conversions import ConversionPlan
from ..chip.spec import ChipSpec, LayerOverride, Setting
from ..kernels import fast
from ..kernels.bitplanes import input_cycle_planes, weight_bit_planes
from ..kernels.problem import AcimProblem

DEFAULT_PERCENTILE = 99.99
METHODS = ("percentile", "mse")
# Candidate ranges of the mse search: 1/256 .. 1 in steps of 2^(1/16).
_MSE_CANDIDATES = 2.0 ** (-np.arange(0, 8 * 16 + 1) / 16.0)


@dataclass(frozen=True)
class Histogram:
    """How often each MAC value occurred in one kind of conversion (sparse: the values that
    occurred, ascending, and their counts), with that kind's rows-based full scale and the
    weight its conversion error has in the output."""

    values: np.ndarray          # int64, ascending, distinct
    counts: np.ndarray          # int64
    full_scale: int
    weight: float

    def merged(self, other: "Histogram") -> "Histogram":
        values, inverse = np.unique(np.concatenate([self.values, other.values]),
                                    return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([self.counts, other.counts]))
        return replace(self, values=values, counts=counts.astype(np.int64))


def _histogram(macs: torch.Tensor, full_scale: int, weight: float) -> Histogram:
    values, counts = torch.unique(macs.flatten().long(), return_counts=True)
    return Histogram(values.numpy(), counts.numpy(), full_scale, weight)


@dataclass(frozen=True)
class LayerConversions:
    """The exact MACs of one layer: ``counts[kind]`` is one ``Histogram`` per kind of
    conversion, ``(i, c)`` for weight bit i in input cycle c, or ``"parallel"``."""

    node: str
    plan: ConversionPlan
    counts: dict

    @property
    def total(self) -> int:
        return int(sum(h.counts.sum() for h in self.counts.values()))


class ConversionRecorder:
    """A kernel for ``Program.run(kernel=...)`` that records each product's MACs, then runs the
    fast kernel. The executor calls ``progress(node)`` after each layer, which files the MACs
    recorded since under that node."""

    def __init__(self):
        self._pending: list[tuple[ConversionPlan, dict]] = []
        self.layers: dict[str, LayerConversions] = {}

    def __call__(self, problem: AcimProblem, memory_budget: int) -> torch.Tensor:
        self._pending.append((problem.plan, _mac_histograms(problem)))
        return fast.run(problem, memory_budget=memory_budget)

    def progress(self, node: str) -> None:
        for plan, counts in self._pending:
            layer = self.layers.get(node)
            if layer is None:
                self.layers[node] = LayerConversions(node, plan, counts)
                continue
            for key, hist in counts.items():
                layer.counts[key] = layer.counts[key].merged(hist)
        self._pending.clear()


def _mac_histograms(problem: AcimProblem) -> dict:
    plan = problem.plan
    if plan.weight_parallel:
        products = [torch.matmul(problem.x[:, :, k0:k1].double(),
                                 problem.w[:, k0:k1, :].double()).abs()
                    for k0, k1 in problem.tiles]
        return {"parallel": _histogram(torch.cat([p.flatten() for p in products]),
                                       plan.parallel_full_scale, 1.0)}
    chip = plan.chip
    inputs = input_cycle_planes(problem.x, chip.input.bits, chip.input.signed, plan.cycles)
    weights = weight_bit_planes(problem.w, plan.weight_bits)
    counts = {}
    for cycle in plan.cycles:
        size = plan.full_scale(cycle) + 1
        for i in range(plan.weight_bits):
            dense = torch.zeros(size, dtype=torch.int64)
            for k0, k1 in problem.tiles:
                mac = torch.matmul(inputs[cycle.index, :, :, k0:k1].double(),
                                   weights[i, :, k0:k1, :].double())
                dense += torch.bincount(mac.flatten().long(), minlength=size)
            values = torch.nonzero(dense).flatten()
            counts[(i, cycle.index)] = Histogram(
                values.numpy(), dense[values].numpy(), plan.full_scale(cycle),
                4.0 ** (i + cycle.low_bit))
    return counts


def choose_fraction(layer: LayerConversions, *, method: str = "percentile",
                    percentile: float = DEFAULT_PERCENTILE, pow2: bool = False) -> float:
    """The layer's ADC range f (a fraction of the rows-based full scale, 0 < f <= 1)."""
    if method == "percentile":
        hists = layer.counts.values()
        v = np.concatenate([h.values / h.full_scale for h in hists])
        w = np.concatenate([h.counts for h in hists]).astype(np.float64)
        order = np.argsort(v, kind="stable")
        v, cumulative = v[order], np.cumsum(w[order])
        index = np.searchsorted(cumulative, percentile / 100.0 * cumulative[-1])
        f = float(v[min(index, len(v) - 1)])
        if f <= 0:           # (almost) every MAC is 0: the smallest non-zero value
            positive = v[v > 0]
            f = float(positive[0]) if len(positive) else 1.0
    else:
        f = float(_MSE_CANDIDATES[np.argmin([_output_error(layer, f)
                                             for f in _MSE_CANDIDATES])])
    f = min(f, 1.0)
    return 2.0 ** math.floor(math.log2(f)) if pow2 else f


def _output_error(layer: LayerConversions, fraction: float) -> float:
    plan = layer.plan
    levels = plan.adc_levels
    error = 0.0
    for hist in layer.counts.values():
        full = plan.ranged_full_scale(hist.full_scale, fraction)
        mac = hist.values.astype(np.float64)
        back = np.round(np.clip(mac / full, 0, 1) * levels) * full / levels
        error += hist.weight * float((hist.counts * (mac - back) ** 2).sum())
    return error


def clipped_share(layer: LayerConversions, fraction: float) -> float:
    """Share of the layer's conversions above the range (they convert to the top code)."""
    above = sum(int(h.counts[h.values > fraction * h.full_scale + 1e-9].sum())
                for h in layer.counts.values())
    return above / max(1, layer.total)


def written_percent(fraction: float, pow2: bool) -> float:
    """f as the percentage written in the chip file: exact for a power of two, else rounded up
    to 4 significant digits (so that the chosen percentile stays inside the range)."""
    percent = 100.0 * fraction
    if pow2:
        return percent
    digits = 3 - math.floor(math.log10(percent))
    return math.ceil(percent * 10 ** digits - 1e-9) / 10 ** digits


def without_calibrated(spec: ChipSpec) -> ChipSpec:
    """``full_scale calibrated`` read as ``rows`` (the range before calibration)."""
    def fix(settings):
        return tuple(replace(s, value="rows") if (s.block, s.field) == ("adc", "full_scale")
                     and s.value == "calibrated" else s for s in settings)
    adc = spec.adc if spec.adc.full_scale != "calibrated" \
        else replace(spec.adc, full_scale="rows")
    return replace(spec, adc=adc, layers=tuple(replace(l, settings=fix(l.settings))
                                               for l in spec.layers))


def node_pattern(node: str, op_types) -> str:
    """A ``layer`` pattern that matches exactly this node name: glob characters escaped, and
    a name equal to an op type (which would match every layer of that type) disguised."""
    escaped = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in node)
    if escaped in op_types:
        escaped = f"[{escaped[0]}]{escaped[1:]}"
    return escaped


def with_ranges(spec: ChipSpec, ranges: dict[str, float], op_types) -> ChipSpec:
    """``spec`` with one ``layer`` override per node setting its range (``{node: percent}``)."""
    from ..chip.units import Quantity
    overrides = tuple(LayerOverride(node_pattern(node, op_types),
                                    (Setting("adc", "full_scale", Quantity(percent, "%")),))
                      for node, percent in ranges.items())
    return replace(spec, layers=spec.layers + overrides)
