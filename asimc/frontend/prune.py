"""Remove nodes whose outputs nobody uses and constants nothing reads."""
from __future__ import annotations

from ..ir import Graph


def prune(graph: Graph) -> Graph:
    needed = {t.name for t in graph.outputs}
    kept = []
    for node in reversed(graph.nodes):
        if any(out in needed for out in node.outputs if out):
            kept.append(node)
            needed.update(v for v in node.inputs if v)
    kept.reverse()
    constants = {k: v for k, v in graph.constants.items() if k in needed}
    if len(kept) == len(graph.nodes) and len(constants) == len(graph.constants):
        return graph
    return graph.with_(nodes=tuple(kept), constants=constants)
