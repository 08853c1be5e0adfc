"""A mutable working copy of a Graph for the import passes (the IR itself is immutable)."""
from __future__ import annotations

import itertools

import numpy as np

from ..ir import Graph, Node, TensorInfo


class GraphEditor:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list[Node] = list(graph.nodes)
        self.constants: dict[str, np.ndarray] = dict(graph.constants)
        self.value_info: dict[str, TensorInfo] = dict(graph.value_info)
        self._names = {t.name for t in (*graph.inputs, *graph.outputs)} | set(self.constants)
        self._names |= {n.name for n in self.nodes}
        self._names |= {v for n in self.nodes for v in (*n.inputs, *n.outputs)}

    def fresh(self, base: str) -> str:
        """A value or node name not used anywhere in the graph yet."""
        name = base
        for k in itertools.count(1):
            if name not in self._names:
                break
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def add_constant(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.constants[name] = np.asarray(value)
        return name

    def shape_of(self, name: str) -> tuple | None:
        """The known shape of a value (dims may be symbolic strings or None), or None."""
        if name in self.constants:
            return tuple(self.constants[name].shape)
        info = self.value_info.get(name) or self.graph.info(name)
        return None if info is None else info.shape

    def dtype_of(self, name: str) -> str | None:
        if name in self.constants:
            return str(self.constants[name].dtype)
        info = self.value_info.get(name) or self.graph.info(name)
        return None if info is None else info.dtype

    def finish(self, **changes) -> Graph:
        used = {v for n in self.nodes for v in (*n.inputs, *n.outputs)}
        used |= {t.name for t in (*self.graph.inputs, *self.graph.outputs)}
        value_info = {k: v for k, v in self.value_info.items() if k in used}
        return self.graph.with_(nodes=tuple(self.nodes), constants=self.constants,
                                value_info=value_info, **changes)
