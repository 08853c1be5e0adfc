"""The compiled graph as a trainable torch module.

The interpreter (asimc.runtime.interpreter) already runs the graph with torch ops; here the
constants bound to trained initializers become extra graph inputs fed from ``nn.Parameter``s,
so the same interpreter run is differentiable. A hook (asimc.finetune.noise) decides what the
on-chip layers compute in the forward pass.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..ir import Graph, TensorInfo
from ..runtime.interpreter import run_graph
from .params import Binding, TrainablePlan


class TrainableGraph(torch.nn.Module):
    def __init__(self, graph: Graph, plan: TrainablePlan):
        super().__init__()
        self.plan = plan
        bound = {b.constant for b in plan.bindings}
        self.graph = graph.with_(
            inputs=graph.inputs + tuple(TensorInfo(name, "float32", tuple(graph.constants[name].shape))
                                        for name in sorted(bound)),
            constants={k: v for k, v in graph.constants.items() if k not in bound})
        self.data_inputs = tuple(t.name for t in graph.inputs)
        self.names = plan.trained
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(plan.initializers[n].copy())) for n in self.names])
        self._fixed = {n: torch.from_numpy(plan.initializers[n].copy()) for n in plan.fixed}

    # -- parameters by initializer name ----------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        if name in self._fixed:
            return self._fixed[name]
        return self.weights[self.names.index(name)]

    def initializer_values(self) -> dict[str, np.ndarray]:
        """The trained initializers, by name, as float32 arrays."""
        return {n: p.detach().cpu().numpy().astype(np.float32).copy()
                for n, p in zip(self.names, self.weights)}

    def _bound(self, b: Binding) -> Tensor:
        if b.kind == "copy":
            return self.tensor(b.sources[0])
        scale, shift, mean, var = (self.tensor(n).double() for n in b.bn)
        factor = scale / torch.sqrt(var + b.epsilon)
        if b.kind == "bn_weight":
            w = self.tensor(b.sources[0]).double() * b.alpha
            shape = [1] * w.dim()
            shape[b.axis] = -1
            return (w * factor.view(shape)).float()
        bias = self.tensor(b.sources[0]).double() * b.beta if b.sources[0] else 0.0
        return (bias * factor + shift - mean * factor).float()

    def constants(self) -> dict[str, Tensor]:
        return {b.constant: self._bound(b) for b in self.plan.bindings}

    def forward(self, feeds: dict[str, Tensor], hook=None) -> Tensor:
        """The graph's first output on ``feeds`` (data inputs by name)."""
        run = run_graph(self.graph, {**feeds, **self.constants()}, hook=hook)
        return next(iter(run.outputs.values()))
