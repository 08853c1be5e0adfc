"""Drop nodes that do nothing at inference: Identity, and Dropout (whose mask nobody reads)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import ModelError
from ..ir import Graph, Node
from .editing import GraphEditor


def _is_passthrough(ed: GraphEditor, node: Node, used: set[str]) -> bool:
    if node.op_type == "Identity":
        return True
    if node.op_type != "Dropout":
        return False
    training = node.inputs[2] if len(node.inputs) > 2 else ""
    if training and training not in ed.constants:
        return False          # decided at run time: the op itself refuses training mode
    if training and bool(np.asarray(ed.constants[training]).any()):
        ratio_name = node.inputs[1] if len(node.inputs) > 1 else ""
        ratio = float(np.asarray(ed.constants[ratio_name]).reshape(-1)[0]) \
            if ratio_name in ed.constants else 0.5
        if ratio > 0:
            raise ModelError(f"{node.describe()}: training_mode=true; export the model in eval "
                             "mode (asimc runs inference)")
    mask = node.outputs[1] if len(node.outputs) > 1 else ""
    return not (mask and mask in used)


def drop_passthrough(graph: Graph) -> Graph:
    ed = GraphEditor(graph)
    graph_outputs = {t.name for t in graph.outputs}
    fixed = graph_outputs | {t.name for t in graph.inputs} | set(ed.constants)
    used = {v for n in ed.nodes for v in n.inputs} | graph_outputs
    producers = {out: n for n in ed.nodes for out in n.outputs if out}
    subst: dict[str, str] = {}        # value -> the value that replaces it as an input
    out_rename: dict[str, str] = {}   # value -> new name of that producer output

    def resolve(name: str) -> str:
        seen = set()
        while name in subst and name not in seen:
            seen.add(name)
            name = subst[name]
        return name

    kept: list[Node] = []
    for node in ed.nodes:
        if not _is_passthrough(ed, node, used):
            kept.append(node)
            continue
        source, target = resolve(node.inputs[0]), node.outputs[0]
        if target not in graph_outputs:
            subst[target] = source
        elif source not in fixed and source in producers:
            out_rename[source] = target         # the producer writes the graph output itself
            subst[source] = target
            fixed.add(target)
        else:
            kept.append(replace(node, op_type="Identity", inputs=(source,),
                                outputs=(target,), attrs={}))
    ed.nodes = [replace(n, inputs=tuple(resolve(v) if v else v for v in n.inputs),
                        outputs=tuple(out_rename.get(v, v) for v in n.outputs)) for n in kept]
    return ed.finish()
