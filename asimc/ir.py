"""The graph IR: what the ONNX importer hands to the passes.

A ``Graph`` is a topologically sorted list of ``Node``s over named values. Constant values
(initializers and everything folded from them) live in ``constants`` as numpy arrays; every other
value is computed at run time. The IR keeps ONNX op types and attribute names (one internal
opset, see ``asimc.frontend``), so each op module can be read next to the ONNX operator spec.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

Dim = int | str | None          # a known size, a symbolic name ("batch"), or unknown


@dataclass(frozen=True)
class TensorInfo:
    """Name, element type (a numpy dtype name such as ``float32`` or ``int64``) and shape."""

    name: str
    dtype: str
    shape: tuple[Dim, ...] | None = None     # None: rank unknown

    def describe(self) -> str:
        dims = "?" if self.shape is None else \
            "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
        return f"{self.name}: {self.dtype}{dims}"


@dataclass(frozen=True, eq=False)
class Node:
    """One operation. ``inputs`` may hold ``""`` for an omitted optional input.

    attrs: attribute values as plain Python (int, float, str, bytes, lists of those) or numpy
           arrays (tensor attributes).
    """

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def describe(self) -> str:
        return f"node '{self.name}' ({self.op_type})"


@dataclass(frozen=True, eq=False)
class Graph:
    """A whole model after import: inputs, outputs, nodes in topological order, constants."""

    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    nodes: tuple[Node, ...]
    constants: Mapping[str, np.ndarray]
    value_info: Mapping[str, TensorInfo] = field(default_factory=dict)
    opset: int = 17

    def __post_init__(self) -> None:
        object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))
        object.__setattr__(self, "value_info", MappingProxyType(dict(self.value_info)))

    def with_(self, **changes: Any) -> "Graph":
        return replace(self, **changes)

    def producers(self) -> dict[str, Node]:
        return {out: n for n in self.nodes for out in n.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for name in n.inputs:
                if name:
                    users.setdefault(name, []).append(n)
        return users

    def info(self, name: str) -> TensorInfo | None:
        for t in (*self.inputs, *self.outputs):
            if t.name == name:
                return t
        if name in self.value_info:
            return self.value_info[name]
        if name in self.constants:
            c = self.constants[name]
            return TensorInfo(name, str(c.dtype), tuple(c.shape))
        return None
