"""The one torch form of a compiled program: ``Program.module()``, ``asimc.on_chip`` and
fine-tuning all use ``ChipModule``.

In evaluation (``module.eval()``, the default, or under ``torch.no_grad()``) forward is
``Program.run`` on the module's current weights, bit for bit, taking and returning torch tensors
on the input's device. Trained (``module.train()`` with gradients on), the interpreter
(asimc.runtime.interpreter) runs the graph with torch ops, the constants bound to trained
initializers fed from ``nn.Parameter``s, so the run is differentiable; a hook
(asimc.training.noise) makes every on-chip layer's forward pass the chip's, its backward pass
straight through the ideal product.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import ModelError, UsageError
from ..ir import TensorInfo
from ..program import Mode
from ..runtime.interpreter import run_graph
from .noise import ChipForward, NoiseModel
from .params import Binding, plan_parameters, write_initializers

# Training steps draw the chip's noise from seeds starting here, far from the evaluation seeds
# 0, 1, 2, ... (a model must not be trained on the noise it is then measured with).
TRAIN_SEED_BASE = 1 << 20


class ChipModule(torch.nn.Module):
    """A Program as a torch module (see the module docstring). ``mode``: ``acim`` (the chip
    bit by bit), ``int`` or ``float``; ``seed``: the chip's noise seed in evaluation (training
    step ``i`` uses ``TRAIN_SEED_BASE + seed + i``); ``freeze_bn``: keep BatchNormalization's
    scale and bias fixed (asimc.training.params)."""

    def __init__(self, program, *, mode: str = "acim", seed: int = 0, freeze_bn: bool = False):
        super().__init__()
        if mode not in Mode.values():
            raise UsageError(f"unknown mode {mode!r}: use one of {', '.join(Mode.values())}")
        self.mode, self.seed = mode, int(seed)
        self._program = program
        origin = program.origin
        self.signature = origin.signature if origin is not None else None
        self.input_names = self.signature.inputs if self.signature is not None else \
            tuple(t.name for t in program.graph.inputs)
        self.plan, self._untrainable = None, ""
        if origin is None:
            self._untrainable = "a program loaded from an artifact keeps no float weights"
        else:
            from ..frontend import import_proto
            try:
                self.plan = plan_parameters(import_proto(origin.model), program.graph,
                                            freeze_bn=freeze_bn)
            except ModelError as error:
                self._untrainable = str(error)
        graph, trained, fixed = program.graph, (), {}
        if self.plan is not None:
            bound = {b.constant for b in self.plan.bindings}
            graph = graph.with_(
                inputs=graph.inputs + tuple(TensorInfo(name, "float32",
                                                       tuple(graph.constants[name].shape))
                                            for name in sorted(bound)),
                constants={k: v for k, v in graph.constants.items() if k not in bound})
            trained, fixed = self.plan.trained, self.plan.fixed
        self.graph = graph
        self.names = tuple(trained)
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(self.plan.initializers[n].copy()))
             for n in self.names])
        self._fixed_index = {n: i for i, n in enumerate(fixed)}
        for i, name in enumerate(fixed):       # buffers, so that .to(device) moves them
            self.register_buffer(f"fixed_{i}",
                                 torch.from_numpy(self.plan.initializers[name].copy()),
                                 persistent=False)
        self._compiled_for = self._snapshot()
        self.training_steps = 0
        self.eval()

    # -- parameters by initializer name ----------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        if name in self._fixed_index:
            return getattr(self, f"fixed_{self._fixed_index[name]}")
        return self.weights[self.names.index(name)]

    def initializer_values(self) -> dict[str, np.ndarray]:
        """The trained initializers, by name, as float32 arrays."""
        return {n: p.detach().cpu().numpy().astype(np.float32).copy()
                for n, p in zip(self.names, self.weights)}

    def load_initializer_values(self, values: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for name, p in zip(self.names, self.weights):
                p.copy_(torch.from_numpy(values[name]).to(p.device))

    def trainable(self) -> None:
        """Raise ModelError when nothing of this program can be trained."""
        if self.plan is None:
            raise ModelError(self._untrainable)

    def _bound(self, b: Binding) -> Tensor:
        if b.kind == "copy":
            value = self.tensor(b.sources[0])
            return value.permute(b.perm) if b.perm else value
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
        return {b.constant: self._bound(b) for b in self.plan.bindings} if self.plan else {}

    # -- the program on the current weights -----------------------------------------------------
    def _snapshot(self) -> list[Tensor]:
        return [p.detach().clone() for p in self.weights]

    def program(self):
        """The Program for the module's current weights (compiled again once they change,
        however they were changed)."""
        if any(not torch.equal(p.detach(), q.to(p.device))
               for p, q in zip(self.weights, self._compiled_for)):
            key = self._snapshot()
            origin = self._program.origin
            model = write_initializers(origin.model, self.initializer_values())
            self._program = origin.compile(model, origin.chip, **origin.options)
            self._program = _with_origin(self._program, origin)
            self._compiled_for = key
        return self._program

    # -- running ----------------------------------------------------------------------------------
    def feeds(self, args: tuple, kwargs: dict) -> dict[str, Tensor]:
        """forward's arguments by graph input name."""
        if len(args) > len(self.input_names):
            raise UsageError(f"the module takes {len(self.input_names)} input(s) "
                             f"({', '.join(self.input_names)}), not {len(args)}")
        feeds = dict(zip(self.input_names, args))
        for name, value in kwargs.items():
            if name not in self.input_names or name in feeds:
                raise UsageError(f"unexpected input {name!r}: the module's inputs are "
                                 f"{', '.join(self.input_names)}")
            feeds[name] = value
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise UsageError(f"missing input(s) {', '.join(missing)}")
        return {k: v if isinstance(v, Tensor) else torch.as_tensor(np.asarray(v))
                for k, v in feeds.items()}

    def graph_outputs(self, feeds: dict[str, Tensor], hook=None) -> list[Tensor]:
        """The graph's outputs on ``feeds``, differentiable in the weights (``hook``: what the
        on-chip layers compute; None: the float model)."""
        device = next(iter(feeds.values())).device
        run = run_graph(self.graph, {**feeds, **self.constants()}, device=device, hook=hook)
        return list(run.outputs.values())

    def run(self, feeds: dict[str, Tensor], *, seed: int | None = None, taps: bool = False):
        """``Program.run`` on the current weights (a RunResult)."""
        device = next(iter(feeds.values())).device
        arrays = {k: v.detach().cpu().numpy() for k, v in feeds.items()}
        return self.program().run(arrays, mode=self.mode,
                                  seed=self.seed if seed is None else seed,
                                  device=device, taps=taps)

    def forward(self, *args, **kwargs):
        feeds = self.feeds(args, kwargs)
        device = next(iter(feeds.values())).device
        if self.training and torch.is_grad_enabled() and len(self.weights):
            hook = None
            if self.mode != Mode.FLOAT:       # each training step draws new noise
                taps = self.run(feeds, taps=True,
                                seed=TRAIN_SEED_BASE + self.seed + self.training_steps).taps
                self.training_steps += 1
                hook = ChipForward(self.program().layers, NoiseModel.EXACT, taps=taps)
            outputs = self.graph_outputs(feeds, hook)
        else:
            result = self.run(feeds)
            outputs = [torch.from_numpy(v).to(device) for v in result.outputs.values()]
        return self._pack(outputs)

    def _pack(self, outputs: list[Tensor]):
        if self.signature is not None:
            from torch.utils._pytree import tree_unflatten
            return tree_unflatten(outputs, self.signature.output_spec)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _with_origin(program, origin):
    from dataclasses import replace
    return replace(program, origin=origin)
