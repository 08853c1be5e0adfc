"""QuantizeLinear / DequantizeLinear (per tensor, per axis, blocked) on integer types.

Scales of QDQ models are read by the compiler; these ops let such models also run in float.
Rounding is half to even and the result saturates to the integer type, as ONNX specifies.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..ir import Node
from .common import axis_index, fail, torch_dtype
from .layout import ANY_AXIS
from .registry import op


def _broadcast_param(node: Node, param: Tensor, x: Tensor) -> Tensor:
    """A scale / zero point shaped to broadcast against x: scalar, per axis, or blocked."""
    if param.numel() == 1 and param.dim() <= 1:
        return param.reshape(())
    axis = axis_index(node, node.attr("axis", 1), x.dim())
    block = int(node.attr("block_size", 0) or 0)
    if block > 0:
        return param.repeat_interleave(block, dim=axis).narrow(axis, 0, x.shape[axis])
    if param.dim() != 1 or param.shape[0] != x.shape[axis]:
        raise fail(node, f"parameter of shape {list(param.shape)} does not fit axis {axis} of "
                         f"an input of shape {list(x.shape)}")
    shape = [1] * x.dim()
    shape[axis] = -1
    return param.reshape(shape)


@op("QuantizeLinear", layout=ANY_AXIS)
def quantize_linear(node: Node, x: Tensor, scale: Tensor, zero_point: Tensor | None = None
                    ) -> Tensor:
    if node.attr("output_dtype", 0):
        dtype = torch_dtype(node, node.attr("output_dtype"))
    else:
        dtype = zero_point.dtype if zero_point is not None else torch.uint8
    if dtype.is_floating_point:
        raise fail(node, f"quantizing to {dtype} is not supported")
    info = torch.iinfo(dtype)
    # the division happens in the inputs' (promoted) float type, or in `precision` (opset 28),
    # as the spec's reference does: a double division would round some .5 cases differently
    compute = torch.promote_types(x.dtype, scale.dtype)
    if node.attr("precision", 0):
        compute = torch_dtype(node, node.attr("precision"))
    y = torch.round(x.to(compute) / _broadcast_param(node, scale, x).to(compute)).double()
    if zero_point is not None:
        y = y + _broadcast_param(node, zero_point, x).double()
    return torch.clamp(y, info.min, info.max).to(dtype)


@op("DequantizeLinear", layout=ANY_AXIS)
def dequantize_linear(node: Node, x: Tensor, scale: Tensor, zero_point: Tensor | None = None
                      ) -> Tensor:
    s = _broadcast_param(node, scale, x)
    compute = torch.float64 if scale.dtype == torch.float64 else torch.float32
    y = x.to(compute)
    if zero_point is not None:
        y = y - _broadcast_param(node, zero_point, x).to(compute)
    dtype = torch_dtype(node, node.attr("output_dtype")) if node.attr("output_dtype", 0) \
        else scale.dtype
    return (y * s.to(compute)).to(dtype)
