"""The digital-op registry: ONNX op type -> torch function.

Each op family module registers its functions with ``@op("Relu", layout=SAME)`` or
``@op("Add", "Sub", layout=BROADCAST)``: the layout rule (``asimc.ops.layout``) says where the
batch goes through the op, and an op cannot be registered without one.
An op function has the signature ``fn(node, *inputs) -> Tensor | tuple[Tensor, ...]``: ``node``
is the IR node (attributes in the one internal opset, see ``asimc.frontend.normalize``), and
``inputs`` are torch tensors on any device, ``None`` for an omitted optional input. Small
shape/axes tensors are read with ``.tolist()``; everything else stays on the input's device.
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor

from ..errors import ModelError
from ..ir import Node
from .layout import LayoutRule

OpFunction = Callable[..., "Tensor | tuple[Tensor, ...] | list[Tensor]"]

_REGISTRY: dict[str, OpFunction] = {}
_LAYOUTS: dict[str, LayoutRule] = {}


def op(*op_types: str, layout: LayoutRule) -> Callable[[OpFunction], OpFunction]:
    """Register the decorated function as the implementation of every op type given, with the
    rule that carries the batch layout through it."""
    if not isinstance(layout, LayoutRule):      # a bug in asimc
        raise TypeError(f"op {', '.join(op_types)}: layout must be a LayoutRule, not {layout!r}")

    def register(fn: OpFunction) -> OpFunction:
        for op_type in op_types:
            if op_type in _REGISTRY:
                raise RuntimeError(f"op {op_type} registered twice")  # a bug in asimc
            _REGISTRY[op_type] = fn
            _LAYOUTS[op_type] = layout
        return fn

    return register


def supported_ops() -> list[str]:
    """Every ONNX op type (default domain) asimc can execute, sorted."""
    return sorted(_REGISTRY)


def is_supported(op_type: str) -> bool:
    return op_type in _REGISTRY


def layout_rule(op_type: str) -> LayoutRule | None:
    """The batch-layout rule ``op_type`` was registered with (None: not an op of asimc)."""
    return _LAYOUTS.get(op_type)


def get(op_type: str, node: Node | None = None) -> OpFunction:
    """The implementation of ``op_type``; a ModelError listing the supported ops if none."""
    try:
        return _REGISTRY[op_type]
    except KeyError:
        where = f"{node.describe()}: " if node is not None else ""
        raise ModelError(f"{where}unsupported op type '{op_type}'. Supported ops: "
                         f"{', '.join(supported_ops())}") from None


def run_op(node: Node, inputs: Sequence[Tensor | None]) -> list[Tensor]:
    """Run one node with the registered implementation; always returns a list of outputs."""
    result = get(node.op_type, node)(node, *inputs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    return outputs
