"""The graph interpreter: runs an imported Graph node by node with the digital-op registry.

``run_graph(graph, feeds, device=..., hook=..., keep=..., batch_size=...)`` evaluates every node
in order. Before a node runs, ``hook(node, inputs, layouts)`` may take it over (the executor
runs Conv/Gemm/MatMul on the simulated array that way): returning a list of tensors makes those
the node's outputs, returning None lets the registry op run. Constants are moved to the device
once per (graph, device). A value is freed right after its last consumer ran, unless it is a
graph output or listed in ``keep``. Alongside the values, each value's batch layout is tracked
(see ``asimc.runtime.batch``).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .. import ops
from ..errors import AsimcError, InputDataError, ModelError, UsageError
from ..ir import Graph, Node
from ..ops.common import numpy_to_torch
from .batch import LOST, BatchLayout, Layout, lost_reason, propagate

Hook = Callable[[Node, list, list], "list[Tensor] | None"]


@dataclass
class GraphRun:
    """What one run produced.

    outputs: the graph outputs, in the graph's order.
    values:  the values named in ``keep``.
    layouts: the batch layout of every value of the run (inputs, constants: None, node outputs).
    lost:    for each value whose layout is LOST in a batch of several samples, where and why
             the batch axis was lost (the node that lost it, and its rule's reason).
    """

    outputs: dict[str, Tensor]
    values: dict[str, Tensor] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)
    batch_size: int | None = None       # B used for the layouts (None: no batched input)
    lost: dict[str, str] = field(default_factory=dict)


# (graph -> {device: {constant name: tensor}}): constants are copied to a device once.
_CONSTANTS: "weakref.WeakKeyDictionary[Graph, dict[str, dict[str, Tensor]]]" = \
    weakref.WeakKeyDictionary()
_LAST_USE: "weakref.WeakKeyDictionary[Graph, list[list[str]]]" = weakref.WeakKeyDictionary()


def device_constants(graph: Graph, device: torch.device) -> dict[str, Tensor]:
    per_device = _CONSTANTS.setdefault(graph, {})
    key = str(device)
    if key not in per_device:
        per_device[key] = {name: numpy_to_torch(np.array(value), name=name).to(device)
                           for name, value in graph.constants.items()}
    return per_device[key]


def _frees_after(graph: Graph) -> list[list[str]]:
    """For each node index, the values whose last reader it is."""
    if graph not in _LAST_USE:
        last: dict[str, int] = {}
        for i, node in enumerate(graph.nodes):
            for name in node.inputs:
                if name and name not in graph.constants:
                    last[name] = i
        frees: list[list[str]] = [[] for _ in graph.nodes]
        for name, i in last.items():
            frees[i].append(name)
        _LAST_USE[graph] = frees
    return _LAST_USE[graph]


def _input_layouts(graph: Graph, feeds: Mapping[str, Tensor], batch_size: int | None
                   ) -> tuple[dict[str, Layout], int | None]:
    """Model inputs whose first dim is the batch get BatchLayout(0, 1): a symbolic first dim
    (B is then its size in the feeds), or one equal to ``batch_size`` when that is given."""
    layouts: dict[str, Layout] = {}
    batch = batch_size
    for info in graph.inputs:
        value = feeds[info.name]
        dim0 = info.shape[0] if info.shape else None
        symbolic = info.shape is not None and len(info.shape) > 0 and not isinstance(dim0, int)
        layouts[info.name] = None
        if value.dim() == 0:
            continue
        if batch is None and symbolic:
            batch = int(value.shape[0])
        if batch is not None and value.shape[0] == batch and (symbolic or batch_size is not None):
            layouts[info.name] = BatchLayout(0, 1)
    return layouts, batch


def _as_tensor(name: str, value, device: torch.device) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(device)
    try:
        return numpy_to_torch(np.asarray(value), name=name).to(device)
    except AsimcError as error:
        raise InputDataError(f"input '{name}': {error}") from None


def _describe(inputs: Sequence[Tensor | None]) -> str:
    return ", ".join("-" if t is None else f"{list(t.shape)} {str(t.dtype).replace('torch.', '')}"
                     for t in inputs)


def run_graph(graph: Graph, feeds: Mapping[str, Tensor], *, device="cpu",
              hook: Hook | None = None, keep: Iterable[str] = (),
              batch_size: int | None = None) -> GraphRun:
    """Run ``graph`` on ``feeds`` (input name -> tensor or array) on ``device``."""
    device = torch.device(device)
    declared = [t.name for t in graph.inputs]
    missing = [n for n in declared if n not in feeds]
    unknown = [n for n in feeds if n not in declared]
    if missing or unknown:
        problems = (["missing input(s) " + ", ".join(map(repr, missing))] if missing else []) + \
            (["unknown input(s) " + ", ".join(map(repr, unknown))] if unknown else [])
        raise InputDataError(f"{'; '.join(problems)}; the model's inputs are: "
                             f"{', '.join(t.describe() for t in graph.inputs)}")
    keep = set(keep)
    known_names = set(declared) | set(graph.constants) | \
        {o for n in graph.nodes for o in n.outputs if o}
    absent = sorted(keep - known_names)
    if absent:
        raise UsageError(f"cannot keep {', '.join(map(repr, absent))}: no such value in the graph")
    constants = device_constants(graph, device)
    values: dict[str, Tensor] = {name: _as_tensor(name, feeds[name], device) for name in declared}
    layouts, batch = _input_layouts(graph, values, batch_size)
    layouts.update((name, None) for name in graph.constants)
    pinned = keep | {t.name for t in graph.outputs}
    frees = _frees_after(graph)
    lost: dict[str, str] = {}

    def lookup(name: str) -> Tensor | None:
        if not name:
            return None
        if name in values:
            return values[name]
        return constants[name]

    for index, node in enumerate(graph.nodes):
        inputs = [lookup(name) for name in node.inputs]
        in_layouts = [layouts.get(name) if name else None for name in node.inputs]
        outputs = hook(node, inputs, in_layouts) if hook is not None else None
        if outputs is None:
            outputs = _run_node(node, inputs)
        needed = max((i + 1 for i, name in enumerate(node.outputs) if name), default=0)
        if len(outputs) < needed:
            raise ModelError(f"{node.describe()}: produced {len(outputs)} outputs, the model "
                             f"expects {needed}")
        outputs = list(outputs)[:len(node.outputs)]
        out_layouts = propagate(node, inputs, outputs, in_layouts, batch)
        if batch is not None and batch > 1 and LOST in out_layouts:
            inherited = next((lost[n] for n, l in zip(node.inputs, in_layouts)
                              if l is LOST and n in lost), None)
            for name, layout in zip(node.outputs, out_layouts):
                if name and layout is LOST:
                    lost[name] = inherited or lost_reason(node)
        for name, out, layout in zip(node.outputs, outputs, out_layouts):
            if name:
                values[name] = out
                layouts[name] = layout
        for name in frees[index]:
            if name not in pinned:
                values.pop(name, None)
    result = {t.name: lookup(t.name) for t in graph.outputs}
    kept = {name: lookup(name) for name in keep}
    return GraphRun(result, kept, layouts, batch, lost)


# What torch and numpy raise when the tensors a model feeds an op do not fit it (shapes that do
# not broadcast, an index out of range, a reshape to the wrong size): the model's fault. Any
# other exception (TypeError, AttributeError, KeyError, AssertionError, ...) is a bug in the
# op's code and must reach the user as an internal error, not as a bad model.
_MODEL_FAULTS = (RuntimeError, IndexError, ValueError)


def _run_node(node: Node, inputs: list[Tensor | None]) -> list[Tensor]:
    try:
        return ops.run_op(node, inputs)
    except ModelError as error:       # the op's own message names the node; add the inputs
        raise ModelError(f"{error} (inputs: {_describe(inputs)})") from None
    except _MODEL_FAULTS as error:    # the op failing on these inputs: say where
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{node.describe()} failed on inputs ({_describe(inputs)}): "
                         f"{message}") from error
