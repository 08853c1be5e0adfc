"""Resize (opset 19 form): nearest (all nearest_modes), linear and cubic (separable, with
antialias and exclude_outside), every coordinate_transformation_mode, axes,
keep_aspect_ratio_policy. The importer rewrites Upsample and older Resize forms into this one.

Interpolation is separable, so an N-D resize is one 1-D resize per resized axis. The 1-D step
follows the ONNX spec: map each output index to an input coordinate, then combine the input
samples around it with the mode's kernel.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ir import Node
from .common import axes_indices, fail, ints
from .layout import RESIZE
from .registry import op


def source_coordinates(mode: str, out_size: int, in_size: int, scale: float,
                       roi: tuple[float, float], device) -> tuple[Tensor, Tensor | None]:
    """Input coordinate of each output index (float64) and, for tf_crop_and_resize, which
    positions fall outside the input (they take extrapolation_value)."""
    y = torch.arange(out_size, dtype=torch.float64, device=device)
    out_width = scale * in_size               # the real-valued output length
    outside = None
    if mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        x = (y + 0.5) / scale - 0.5 if out_width > 1 else torch.full_like(y, -0.5)
    elif mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / out_width)
        x = offset + (y + 0.5) / scale - 0.5
    elif mode == "align_corners":
        x = y * (in_size - 1) / (out_width - 1) if out_width != 1 else torch.zeros_like(y)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        start, end = roi
        if out_width > 1:
            x = y * (end - start) * (in_size - 1) / (out_width - 1)
        else:
            x = torch.full_like(y, (end - start) * (in_size - 1) / 2)
        x = x + start * (in_size - 1)
        outside = (x < 0) | (x > in_size - 1)
    else:
        raise ValueError(mode)
    return x, outside


def nearest_index(x: Tensor, nearest_mode: str, in_size: int) -> Tensor:
    base = torch.floor(x)
    frac = x - base
    if nearest_mode == "round_prefer_floor":
        idx = base + (frac > 0.5)
    elif nearest_mode == "round_prefer_ceil":
        idx = base + (frac >= 0.5)
    elif nearest_mode == "floor":
        idx = base
    elif nearest_mode == "ceil":
        idx = torch.ceil(x)
    else:
        raise ValueError(nearest_mode)
    return idx.long().clamp(0, in_size - 1)


def _cubic_kernel(d: Tensor, a: float) -> Tensor:
    d = d.abs()
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))


def kernel_taps(x: Tensor, mode: str, scale: float, antialias: bool, cubic_a: float
                ) -> tuple[Tensor, Tensor]:
    """(input indices, weights), each (out_size, taps), for linear or cubic interpolation.

    The window is centred between ``base`` and ``base + 1`` where ``base`` is the sample just
    left of x (for an integer x the one before it, with ratio 1, as the spec's reference does);
    antialiasing (downsampling only) widens the kernel by 1/scale and normalises it.
    """
    radius = 1 if mode == "linear" else 2
    stretch = min(scale, 1.0) if antialias else 1.0
    first = math.floor(-radius / stretch) + 1
    offsets = torch.arange(first, 1 - first + 1, dtype=torch.float64, device=x.device)
    base = torch.floor(x)
    base = torch.where(base == x, base - 1, base)
    ratio = (x - base).unsqueeze(1)
    distance = (offsets.unsqueeze(0) - ratio) * stretch
    if mode == "linear":
        weights = torch.clamp(1 - distance.abs(), min=0)
    else:
        weights = _cubic_kernel(distance, cubic_a)
    if antialias:
        weights = weights / weights.sum(dim=1, keepdim=True)
    return base.long().unsqueeze(1) + offsets.long().unsqueeze(0), weights


def resize_axis(x: Tensor, axis: int, out_size: int, scale: float, roi: tuple[float, float],
                attrs: dict) -> Tensor:
    in_size = x.shape[axis]
    if out_size == 0 or in_size == 0:
        shape = list(x.shape)
        shape[axis] = out_size
        return x.new_zeros(shape)
    coords, outside = source_coordinates(attrs["ctm"], out_size, in_size, scale, roi, x.device)
    if attrs["mode"] == "nearest":
        y = x.index_select(axis, nearest_index(coords, attrs["nearest_mode"], in_size))
    else:
        index, weights = kernel_taps(coords, attrs["mode"], scale, attrs["antialias"],
                                     attrs["cubic_a"])
        if attrs["exclude_outside"]:
            weights = torch.where((index < 0) | (index >= in_size), 0.0, weights)
            total = weights.sum(dim=1, keepdim=True)
            weights = weights / torch.where(total == 0, 1.0, total)
        taps = index.shape[1]
        picked = x.index_select(axis, index.clamp(0, in_size - 1).reshape(-1))
        picked = picked.reshape(*x.shape[:axis], out_size, taps, *x.shape[axis + 1:])
        w = weights.to(attrs["compute"]).reshape(out_size, taps, *[1] * (x.dim() - axis - 1))
        y = (picked.to(attrs["compute"]) * w).sum(dim=axis + 1)
    if outside is not None and bool(outside.any()):
        mask = outside.reshape(out_size, *[1] * (x.dim() - axis - 1))
        y = torch.where(mask, torch.tensor(attrs["extrapolation"], dtype=y.dtype,
                                           device=y.device), y)
    return y


@op("Resize", layout=RESIZE)
def resize(node: Node, x: Tensor, roi: Tensor | None = None, scales: Tensor | None = None,
           sizes: Tensor | None = None) -> Tensor:
    rank = x.dim()
    attrs = {
        "mode": node.attr("mode", "nearest"),
        "ctm": node.attr("coordinate_transformation_mode", "half_pixel"),
        "nearest_mode": node.attr("nearest_mode", "round_prefer_floor"),
        "cubic_a": float(node.attr("cubic_coeff_a", -0.75)),
        "exclude_outside": bool(node.attr("exclude_outside", 0)),
        "extrapolation": float(node.attr("extrapolation_value", 0.0)),
        "antialias": bool(node.attr("antialias", 0)),
        "compute": x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32,
    }
    if attrs["mode"] not in ("nearest", "linear", "cubic"):
        raise fail(node, f"unknown mode {attrs['mode']!r}")
    if attrs["ctm"] not in ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric",
                            "align_corners", "asymmetric", "tf_crop_and_resize"):
        raise fail(node, f"unknown coordinate_transformation_mode {attrs['ctm']!r}")
    if attrs["nearest_mode"] not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        raise fail(node, f"unknown nearest_mode {attrs['nearest_mode']!r}")
    axes_attr = node.attr("axes")
    axes = axes_indices(node, [int(a) for a in axes_attr], rank) if axes_attr else \
        list(range(rank))
    in_sizes = [x.shape[a] for a in axes]
    if sizes is not None and sizes.numel():
        wanted = ints(sizes)
        if len(wanted) != len(axes):
            raise fail(node, f"sizes has {len(wanted)} values for {len(axes)} axes")
        factors = [w / i if i else 1.0 for w, i in zip(wanted, in_sizes)]
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy in ("not_larger", "not_smaller"):
            common = min(factors) if policy == "not_larger" else max(factors)
            factors = [common] * len(axes)
            wanted = [int(common * i + 0.5) for i in in_sizes]
        elif policy != "stretch":
            raise fail(node, f"unknown keep_aspect_ratio_policy {policy!r}")
    elif scales is not None and scales.numel():
        factors = [float(s) for s in scales.reshape(-1).tolist()]
        if len(factors) != len(axes):
            raise fail(node, f"scales has {len(factors)} values for {len(axes)} axes")
        if any(f <= 0 for f in factors):
            raise fail(node, f"scales must be positive, got {factors}")
        wanted = [int(math.floor(i * f)) for i, f in zip(in_sizes, factors)]
    else:
        raise fail(node, "needs either scales or sizes")
    roi_values = roi.reshape(-1).tolist() if roi is not None and roi.numel() else None
    if roi_values is not None and len(roi_values) != 2 * len(axes):
        raise fail(node, f"roi has {len(roi_values)} values for {len(axes)} axes")
    y = x
    for k, axis in enumerate(axes):
        window = (roi_values[k], roi_values[len(axes) + k]) if roi_values else (0.0, 1.0)
        crops = attrs["ctm"] == "tf_crop_and_resize" and window != (0.0, 1.0)
        if wanted[k] == y.shape[axis] and factors[k] == 1.0 and not crops:
            continue
        y = resize_axis(y, axis, wanted[k], factors[k], window, attrs)
    return y.to(x.dtype)      # integer images: interpolated values truncate, as the spec's
    # reference does
