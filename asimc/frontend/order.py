"""Topological order of nodes, for the ONNX proto (the checker insists on it) and the IR.

Nodes already in order keep their order; a node moves only as far as its inputs require.
A value that nothing produces is reported with the node that wants it.
"""
from __future__ import annotations

import heapq
from typing import Iterable, Sequence

import onnx

from ..errors import ModelError
from ..ir import Graph


def topological_order(nodes: Sequence[tuple[str, str, Sequence[str], Sequence[str]]],
                      available: Iterable[str]) -> list[int]:
    """Indices of ``nodes`` (name, op_type, inputs, outputs) in a valid execution order."""
    ready_values = set(available) | {""}
    producer = {}
    for i, (_, _, _, outputs) in enumerate(nodes):
        for out in outputs:
            if out:
                producer.setdefault(out, i)
    waiting = [0] * len(nodes)
    users: dict[str, list[int]] = {}
    for i, (name, op_type, inputs, _) in enumerate(nodes):
        for value in set(inputs):
            if value in ready_values:
                continue
            if value not in producer:
                raise ModelError(f"node '{name}' ({op_type}) uses '{value}', which is not a "
                                 "graph input, an initializer or the output of any node")
            waiting[i] += 1
            users.setdefault(value, []).append(i)
    heap = [i for i in range(len(nodes)) if waiting[i] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        i = heapq.heappop(heap)
        order.append(i)
        for out in nodes[i][3]:
            if out and producer.get(out) == i:
                for user in users.pop(out, []):
                    waiting[user] -= 1
                    if waiting[user] == 0:
                        heapq.heappush(heap, user)
    if len(order) != len(nodes):
        stuck = [nodes[i] for i in range(len(nodes)) if waiting[i]]
        names = ", ".join(f"'{n[0]}' ({n[1]})" for n in stuck[:5])
        raise ModelError(f"the graph has a cycle through node(s) {names}")
    return order


def sort_proto(graph: onnx.GraphProto) -> None:
    """Sort the nodes of an ONNX graph in place (if they are not sorted already)."""
    available = [i.name for i in graph.input] + [t.name for t in graph.initializer] + \
        [s.values.name for s in graph.sparse_initializer]
    nodes = [(n.name, n.op_type, list(n.input), list(n.output)) for n in graph.node]
    order = topological_order(nodes, available)
    if order != sorted(order):
        sorted_nodes = [onnx.NodeProto() for _ in order]
        for target, i in zip(sorted_nodes, order):
            target.CopyFrom(graph.node[i])
        del graph.node[:]
        graph.node.extend(sorted_nodes)


def sort_graph(graph: Graph) -> Graph:
    available = [t.name for t in graph.inputs] + list(graph.constants)
    nodes = [(n.name, n.op_type, n.inputs, n.outputs) for n in graph.nodes]
    order = topological_order(nodes, available)
    if order == sorted(order):
        return graph
    return graph.with_(nodes=tuple(graph.nodes[i] for i in order))
