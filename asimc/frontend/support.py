"""Reject models with ops asimc cannot run: one error listing every unsupported op type, the
nodes that use it, and the supported set."""
from __future__ import annotations

import onnx

from .. import ops
from ..errors import ModelError
from .expand import EXPANDED_OPS
from .normalize import REWRITTEN_OPS

_DEFAULT_DOMAINS = ("", "ai.onnx")
_MAX_NAMES = 8
# Ops whose attributes are sub-graphs: asimc runs straight-line graphs only.
_CONTROL_FLOW = ("If", "Loop", "Scan", "SequenceMap")


def importable_ops() -> list[str]:
    """Every op type the importer accepts: the registry, plus ops it rewrites into those
    (older forms) or expands into their ONNX function bodies."""
    return sorted(set(ops.supported_ops()) | set(REWRITTEN_OPS) | set(EXPANDED_OPS))


def check_supported(graph: onnx.GraphProto) -> None:
    accepted = set(importable_ops())
    missing: dict[str, list[str]] = {}
    for node in graph.node:
        if node.domain in _DEFAULT_DOMAINS and node.op_type in accepted:
            continue
        key = node.op_type if node.domain in _DEFAULT_DOMAINS else \
            f"{node.op_type} (domain '{node.domain}')"
        missing.setdefault(key, []).append(node.name)
    if not missing:
        return
    lines = []
    for op_type, names in sorted(missing.items()):
        shown = ", ".join(f"'{n}'" for n in names[:_MAX_NAMES])
        more = f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else ""
        lines.append(f"  {op_type}: node{'s' if len(names) > 1 else ''} {shown}{more}")
    control = sorted(op for op in missing if op in _CONTROL_FLOW)
    hint = ""
    if control:
        hint = (f"\n{', '.join(control)} {'is' if len(control) == 1 else 'are'} control flow "
                "(sub-graphs), which asimc does not run: export the model with fixed shapes and "
                "the control flow unrolled (e.g. torch.onnx.export of a traced model)")
    raise ModelError(
        f"the model uses {len(missing)} op type{'s' if len(missing) > 1 else ''} that asimc "
        f"does not support:\n" + "\n".join(lines) + hint +
        "\nSupported ops: run `asimc ops`, or see the Supported ops table in the README")
