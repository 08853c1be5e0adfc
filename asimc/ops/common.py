"""Small helpers shared by the op modules: attribute/axis handling, dtypes, errors."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import ModelError
from ..ir import Node

# ONNX TensorProto.DataType codes -> torch dtypes (the ones torch can hold).
ONNX_TO_TORCH: dict[int, torch.dtype] = {
    1: torch.float32, 2: torch.uint8, 3: torch.int8, 4: torch.uint16, 5: torch.int16,
    6: torch.int32, 7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64,
    12: torch.uint32, 13: torch.uint64, 14: torch.complex64, 15: torch.complex128,
    16: torch.bfloat16,
}
ONNX_TYPE_NAMES = {
    0: "undefined", 1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
    7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32",
    13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn",
    18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
    23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
}


def fail(node: Node, message: str) -> ModelError:
    """A ModelError that names the node and its op (raise the returned error)."""
    return ModelError(f"{node.describe()}: {message}")


def torch_dtype(node: Node, onnx_type: int) -> torch.dtype:
    try:
        return ONNX_TO_TORCH[int(onnx_type)]
    except KeyError:
        name = ONNX_TYPE_NAMES.get(int(onnx_type), str(onnx_type))
        raise fail(node, f"element type {name} is not supported") from None


def ints(t: Tensor | None) -> list[int]:
    """A small integer tensor (shape, axes, pads...) as a Python list."""
    if t is None:
        return []
    return [int(v) for v in t.reshape(-1).tolist()]


def scalar(t: Tensor) -> float | int | bool:
    return t.reshape(-1)[0].item()


def axis_index(node: Node, axis: int, rank: int) -> int:
    """Normalise a possibly negative axis; ModelError when out of range."""
    if not -rank <= axis < max(rank, 1):
        raise fail(node, f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank if rank else 0


def axes_indices(node: Node, axes: Sequence[int], rank: int) -> list[int]:
    return [axis_index(node, a, rank) for a in axes]


def is_float(t: Tensor) -> bool:
    return t.dtype.is_floating_point


def spatial_attr(node: Node, name: str, n: int, default: int) -> list[int]:
    """A per-spatial-axis int attribute (strides, dilations), defaulting to ``default``."""
    value = node.attr(name)
    if value is None or len(value) == 0:
        return [default] * n
    value = [int(v) for v in value]
    if len(value) != n:
        raise fail(node, f"attribute '{name}' has {len(value)} values for {n} spatial axes")
    return value


def numpy_to_torch(array, node: Node | None = None, name: str = "") -> Tensor:
    """A numpy array (a constant, an input) as a torch tensor on the CPU; bfloat16 arrays
    (ml_dtypes) are supported, strings and 8/4-bit floats are not."""
    import numpy as np

    array = np.asarray(array)
    kind = array.dtype.name
    if kind == "bfloat16":
        return torch.from_numpy(array.view(np.uint16).copy()).view(torch.bfloat16)
    if array.dtype.kind in "OSU" or kind.startswith(("float8", "float4", "int4", "uint4")):
        what = f"tensor '{name}'" if name else "a tensor"
        message = f"{what} has element type {kind}, which asimc does not support"
        raise fail(node, message) if node is not None else ModelError(message)
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C", copy=True)   # (ascontiguousarray makes 0-D 1-D)
    return torch.from_numpy(array)


def torch_to_numpy(t: Tensor):
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
    return t.resolve_conj().numpy()


_NARROW_UNSIGNED = (torch.uint16, torch.uint32)
_INT64_SIGN = -(2 ** 63)


def unsigned_safe(kind: str):
    """Decorate a binary/variadic op so that it also works on uint16/32/64, which torch holds
    but barely computes on. uint16/uint32 are computed exactly in int64. uint64 is reinterpreted
    as int64: bit-exact for "wrap" ops (add, sub, mul); for "order" ops (comparisons, max/min)
    the sign bit is flipped so that signed order is unsigned order; "div" ops need values below
    2**63."""

    def decorate(fn):
        def wrapper(node: Node, *inputs):
            present = [t for t in inputs if t is not None]
            dtype = present[0].dtype if present else None
            if dtype in _NARROW_UNSIGNED:
                out = fn(node, *(None if t is None else t.to(torch.int64) for t in inputs))
                return out if out.dtype == torch.bool else out.to(dtype)
            if dtype != torch.uint64:
                return fn(node, *inputs)
            signed = [None if t is None else t.view(torch.int64) for t in inputs]
            if kind == "order":
                flipped = [None if t is None else t ^ _INT64_SIGN for t in signed]
                out = fn(node, *flipped)
                return out if out.dtype == torch.bool else (out ^ _INT64_SIGN).view(torch.uint64)
            if kind == "div" and any(t is not None and bool((t < 0).any()) for t in signed):
                raise fail(node, "uint64 values of 2**63 and above are not supported")
            return fn(node, *signed).view(torch.uint64)
        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return decorate
