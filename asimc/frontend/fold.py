"""Constant folding and shape folding.

* A node whose inputs are all constants is evaluated once, on the CPU, with the op registry
  (the same code that runs it at inference), and its outputs become constants.
* Shape sub-graphs: ``Shape`` of a tensor whose dims are known becomes a constant. Where only
  some dims are known (a symbolic batch), the known entries are tracked through Gather, Slice,
  Concat, (Un)Squeeze, Cast and integer arithmetic, and whatever ends up fully known (e.g. the
  head count of a Reshape target) becomes a constant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import ops
from ..errors import AsimcError, ModelError
from ..ir import Graph, Node
from ..ops.common import numpy_to_torch, torch_to_numpy
from .editing import GraphEditor
from .prune import prune

# Outputs larger than this, and larger than the node's inputs together, are left to run time
# (folding e.g. a ConstantOfShape into a huge initializer would only bloat the artifact).
MAX_FOLDED_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class PartialValue:
    """A small integer tensor (0-D or 1-D) of which some entries are known (None: unknown)."""

    values: tuple[int | None, ...]
    scalar: bool
    dtype: str = "int64"

    def known(self) -> bool:
        return all(v is not None for v in self.values)

    def array(self) -> np.ndarray:
        a = np.array(self.values, dtype=self.dtype)
        return a.reshape(()) if self.scalar else a


def evaluate(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    tensors = [None if v is None else numpy_to_torch(v, node) for v in inputs]
    try:
        with torch.no_grad():
            outputs = ops.run_op(node, tensors)
    except AsimcError:
        raise
    except Exception as error:  # noqa: BLE001 - a model whose constants do not fit the op
        shapes = ", ".join("-" if v is None else str(list(v.shape)) for v in inputs)
        raise ModelError(f"{node.describe()}: cannot evaluate on its constant inputs "
                         f"(shapes {shapes}): {error}") from None
    return [torch_to_numpy(t) for t in outputs]


def _too_large(node: Node, inputs: list[np.ndarray | None], ed: GraphEditor) -> bool:
    """Guess the output size before evaluating: ops that can blow up small inputs."""
    if node.op_type not in ("ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Pad",
                            "EyeLike"):
        return False
    info = [ed.shape_of(o) for o in node.outputs if o]
    sizes = [math.prod(s) for s in info if s is not None and all(isinstance(d, int) for d in s)]
    if not sizes:
        return node.op_type in ("ConstantOfShape", "Expand", "Tile", "Range")
    total_in = sum(v.size for v in inputs if v is not None)
    return max(sizes) > MAX_FOLDED_ELEMENTS and max(sizes) > total_in


def _partial_of(ed: GraphEditor, partial: dict[str, PartialValue], name: str
                ) -> PartialValue | None:
    if name in partial:
        return partial[name]
    value = ed.constants.get(name)
    if value is not None and value.ndim <= 1 and value.dtype.kind in "iu" and value.size <= 64:
        return PartialValue(tuple(int(v) for v in value.reshape(-1)), value.ndim == 0,
                            str(value.dtype))
    return None


def _int_list(ed: GraphEditor, name: str) -> list[int] | None:
    value = ed.constants.get(name) if name else None
    return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


def _track_shape(ed: GraphEditor, node: Node, partial: dict[str, PartialValue]
                 ) -> PartialValue | None:
    """The partial value of a shape-computing node's (first) output, or None."""
    op = node.op_type
    ins = node.inputs
    if op == "Shape":
        shape = ed.shape_of(ins[0])
        if shape is None:
            return None
        dims = [d if isinstance(d, int) else None for d in shape]
        return PartialValue(tuple(dims[slice(node.attr("start", 0), node.attr("end"))]), False)
    if op == "Size":
        shape = ed.shape_of(ins[0])
        if shape is None or not all(isinstance(d, int) for d in shape):
            return None
        return PartialValue((math.prod(shape),), True)
    first = _partial_of(ed, partial, ins[0]) if ins and ins[0] else None
    if op in ("Identity", "Cast") and first is not None:
        dtype = first.dtype
        if op == "Cast":
            dtype = {6: "int32", 7: "int64"}.get(node.attr("to"))
            if dtype is None:
                return None
        return PartialValue(first.values, first.scalar, dtype)
    if op == "Gather" and first is not None and not first.scalar and node.attr("axis", 0) in (0, -1):
        index = ed.constants.get(ins[1])
        if index is None or index.ndim > 1:
            return None
        n = len(first.values)
        picked = tuple(first.values[int(i) % n] for i in index.reshape(-1))
        return PartialValue(picked, index.ndim == 0, first.dtype)
    if op == "Slice" and first is not None and not first.scalar:
        starts, ends = _int_list(ed, ins[1]), _int_list(ed, ins[2])
        axes = _int_list(ed, ins[3]) if len(ins) > 3 and ins[3] else [0]
        steps = _int_list(ed, ins[4]) if len(ins) > 4 and ins[4] else [1]
        if None in (starts, ends, axes, steps) or axes not in ([0], [-1]) or steps == [0]:
            return None
        return PartialValue(first.values[slice(starts[0], ends[0], steps[0])], False, first.dtype)
    if op == "Concat":
        parts = [_partial_of(ed, partial, n) for n in ins]
        if any(p is None or p.scalar for p in parts):
            return None
        return PartialValue(tuple(v for p in parts for v in p.values), False, parts[0].dtype)
    if op == "Unsqueeze" and first is not None and first.scalar:
        return PartialValue(first.values, False, first.dtype)
    if op == "Squeeze" and first is not None and len(first.values) == 1 and not first.scalar:
        return PartialValue(first.values, True, first.dtype)
    if op in ("Add", "Sub", "Mul", "Div") and len(ins) == 2:
        a, b = (_partial_of(ed, partial, n) for n in ins)
        if a is None or b is None or (len(a.values) != len(b.values) and
                                      1 not in (len(a.values), len(b.values))):
            return None
        n = max(len(a.values), len(b.values))
        av = a.values * n if len(a.values) == 1 else a.values
        bv = b.values * n if len(b.values) == 1 else b.values
        fn = {"Add": lambda x, y: x + y, "Sub": lambda x, y: x - y, "Mul": lambda x, y: x * y,
              "Div": lambda x, y: int(x / y) if y else None}[op]
        values = tuple(None if x is None or y is None else fn(x, y) for x, y in zip(av, bv))
        return PartialValue(values, a.scalar and b.scalar, a.dtype)
    return None


def fold_constants(graph: Graph) -> Graph:
    ed = GraphEditor(graph)
    partial: dict[str, PartialValue] = {}
    kept: list[Node] = []
    for node in ed.nodes:
        names = [n for n in node.inputs if n]
        if all(n in ed.constants for n in names):
            inputs = [ed.constants.get(n) if n else None for n in node.inputs]
            if not _too_large(node, inputs, ed):
                for name, value in zip(node.outputs, evaluate(node, inputs)):
                    if name:
                        ed.constants[name] = value
                continue
        tracked = _track_shape(ed, node, partial)
        if tracked is not None and len(node.outputs) == 1:
            if tracked.known():
                ed.constants[node.outputs[0]] = tracked.array()
                continue
            partial[node.outputs[0]] = tracked
        kept.append(node)
    ed.nodes = kept
    return prune(ed.finish())
