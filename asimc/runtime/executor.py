"""Executing a Program: digital ops on the host, matrix products on the simulated array.

The graph interpreter runs every node; for each matrix product placed on the array, a hook
quantises the operands (docs/numeric-model.md, "Quantisers"), lowers the product to a
(groups, rows, K) x (groups, K, N) integer product, hands it to a kernel, and dequantises the
result:

* ``float``: no hook, the model in float32 (asimc's own float execution);
* ``int``:   quantised operands, exact integer products (the ideal digital reference);
* ``acim``:  the bit-level simulation of the chip, noise and all.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..chip.conversions import ConversionPlan, input_levels, weight_levels
from ..errors import DeviceError, UsageError
from ..ir import Node
from ..kernels import exact, fast, reference, rng
from ..kernels.mismatch import static_mismatch
from ..kernels.problem import AcimProblem, NoiseKeys
from ..kernels.quantize import quantize_input, quantize_weight
from ..ops.matmul import gemm_epilogue
from ..passes.tile import row_tiles
from ..program import Kernel, LayerKind, MatrixLayer, Mode, Program
from . import quantizer
from .batch import LOST
from .feeds import prepare_feeds
from .im2col import Conv2d, output_first_columns
from .samples import SampleKeys, row_noise_keys

KERNELS = {Kernel.FAST: fast.run,
           Kernel.REFERENCE: lambda problem, memory_budget: reference.run(problem)}


@dataclass
class ArrayStats:
    """Why a layer fails on a chip, summed over a run (golden prints them per layer).

    The input range used is the RMS of the integer inputs over the largest level, ``Lx``: how
    much of the input quantiser's range the layer's values really fill (a transformer's
    outlier channels leave the rest a few percent). The array SQNR (``acim`` mode with taps)
    compares the converted sums with the exact integer products of the same quantised
    operands: the chip's noise and ADC against the layer's own signal, free of the errors
    earlier layers pass on."""

    input_square: float = 0.0      # sum of Xq^2
    inputs: int = 0
    levels: int = 1                # Lx
    signal: float = 0.0            # sum of exact acc^2
    error: float = 0.0             # sum of (converted - exact)^2

    def add(self, other: "ArrayStats") -> "ArrayStats":
        return ArrayStats(self.input_square + other.input_square, self.inputs + other.inputs,
                          max(self.levels, other.levels), self.signal + other.signal,
                          self.error + other.error)

    @property
    def range_used(self) -> float:
        return math.sqrt(self.input_square / self.inputs) / self.levels if self.inputs else 0.0

    @property
    def sqnr_db(self) -> float | None:
        """None where it was not measured (no taps, or not ``acim`` mode)."""
        if not self.signal and not self.error:
            return None
        if not self.error:
            return math.inf
        return 10.0 * math.log10(self.signal / self.error) if self.signal else -math.inf


@dataclass
class RunResult:
    """Outputs by name, and (with ``taps``) every on-chip layer's output by node name."""

    outputs: dict[str, np.ndarray]
    taps: dict[str, np.ndarray] = field(default_factory=dict)
    mode: str = "acim"
    seed: int = 0
    warnings: list[str] = field(default_factory=list)
    # Per on-chip layer: (inputs clipped by the quantiser, inputs) - negative values on an
    # unsigned-input chip, values above a static scale.
    clipped: dict[str, tuple[int, int]] = field(default_factory=dict)
    stats: dict[str, ArrayStats] = field(default_factory=dict)

    @property
    def output(self) -> np.ndarray:
        """The first (usually the only) output."""
        return next(iter(self.outputs.values()))


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}: use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was asked for (--device cuda) but torch sees no CUDA device "
                          f"(torch {torch.__version__}, built "
                          f"{'with' if torch.backends.cuda.is_built() else 'without'} CUDA). "
                          "Use --device cpu.")
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"unknown device {device!r}: use cpu or cuda")
    return dev


# The float32 weights of each live program's static layers, per device: kept across runs so
# that the fast kernel's packed weight planes (kernels/packing.py, cached per tensor) are too.
_PROGRAM_WEIGHTS: dict[int, dict[str, dict[str, torch.Tensor]]] = {}


def _program_weights(program: Program, device: torch.device) -> dict[str, torch.Tensor]:
    ident = id(program)
    if ident not in _PROGRAM_WEIGHTS:
        _PROGRAM_WEIGHTS[ident] = {}
        weakref.finalize(program, _PROGRAM_WEIGHTS.pop, ident, None)
    return _PROGRAM_WEIGHTS[ident].setdefault(str(device), {})


class _MatrixHook:
    """Runs the on-chip matrix products of one execution."""

    def __init__(self, program: Program, mode: str, seed: int, keys: SampleKeys,
                 kernel: str, memory_budget: int, device: torch.device, progress,
                 measure: bool = False):
        self.program = program
        self.mode = mode
        self.seed = seed
        self.keys = keys
        self.kernel = KERNELS[kernel] if isinstance(kernel, str) else kernel
        self.memory_budget = memory_budget
        self.device = device
        self.progress = progress
        self.clipped: dict[str, tuple[int, int]] = {}
        self.measure = measure            # ArrayStats' array SQNR (one exact product more)
        self.stats: dict[str, ArrayStats] = {}
        self._weights = _program_weights(program, device)
        self._cells: dict[tuple, torch.Tensor | None] = {}
        self._plans: dict[str, ConversionPlan] = {}
        # On-chip layers whose noise had to be keyed on the whole batch: node -> the inputs
        # whose batch axis was lost.
        self.keyed_on_batch: dict[str, list[str]] = {}

    # -- the hook called by the interpreter --------------------------------------------------
    def __call__(self, node: Node, inputs: list, layouts: list):
        layer = self.program.layers.get(node.name)
        if layer is None or not layer.on_chip:
            return None
        if node.op_type == "Conv":
            out = self._conv(layer, node, inputs, layouts)
        elif layer.kind == LayerKind.STATIC:
            out = self._static_matmul(layer, node, inputs, layouts)
        else:
            out = self._dynamic_matmul(layer, node, inputs, layouts)
        if self.progress is not None:
            self.progress(node.name)
        return [out]

    # -- quantisation (asimc.runtime.quantizer) ----------------------------------------------
    def _count_clipped(self, layer: MatrixLayer, x: torch.Tensor) -> None:
        """Count what the quantiser clips: a designer needs to know (a layer after LayerNorm
        needs signed inputs)."""
        if layer.qdq is not None and layer.qdq.input is not None:
            clipped = 0         # the model's own quantiser already ran: nothing more is clipped
        else:
            clipped = quantizer.clipped_count(layer.chip, layer.input_scale, x)
        before = self.clipped.get(layer.node, (0, 0))
        self.clipped[layer.node] = (before[0] + int(clipped), before[1] + x.numel())

    def _record_inputs(self, layer: MatrixLayer, xq: torch.Tensor) -> None:
        chip = layer.chip
        seen = ArrayStats(float(xq.double().square().sum()), xq.numel(),
                          input_levels(chip.input.bits, chip.input.signed))
        self.stats[layer.node] = self.stats.get(layer.node, ArrayStats()).add(seen)

    def _input_scale(self, layer: MatrixLayer, x: torch.Tensor, layout, node: Node,
                     signed: bool, static: float | None, reduce_dim: int | None = -1):
        return quantizer.input_scale(layer.chip, x, layout, self.keys.batch, node.describe(),
                                     signed, static, reduce_dim)

    def _quantized_input(self, layer: MatrixLayer, x: torch.Tensor, layout, node: Node,
                         reduce_dim: int | None = -1):
        """(integer inputs, their scale) by asimc's quantiser or, for a QDQ model, the model's.
        ``reduce_dim`` None: x is a convolution's input, not yet unfolded into rows."""
        qinput = layer.qdq.input if layer.qdq is not None else None
        if qinput is not None:
            scale = torch.tensor(qinput.scale, dtype=torch.float32, device=x.device)
            xq = quantizer.model_integers(x, qinput)
        else:
            signed = layer.chip.input.signed
            scale = self._input_scale(layer, x, layout, node, signed, layer.input_scale,
                                      reduce_dim)
            xq = quantize_input(x, scale, layer.chip.input.bits, signed)
        self._record_inputs(layer, xq)
        return xq, scale

    def _dequantize(self, layer: MatrixLayer, acc: torch.Tensor, w_scale, x_scale,
                    weights: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """asimc's dequantisation, or a QDQ model's: its scales are per integer step, and
        asymmetric zero points come off as exact digital terms (``x``: the rows, needed for
        an attention operand's zero point)."""
        model = layer.qdq
        if model is None:
            return quantizer.dequantize(layer.chip, acc, w_scale, x_scale)
        chip = layer.chip
        w_levels = 1 if model.weight_dtype or model.operand else weight_levels(chip.weight.bits)
        x_levels = 1 if model.input else input_levels(chip.input.bits, chip.input.signed)
        x_zero = model.input.zero_point if model.input else 0
        w_zero = model.operand.zero_point if model.operand else 0
        if x_zero or w_zero:
            acc = quantizer.zero_point_correction(acc, x, weights, x_zero, w_zero)
        scale = (w_scale.double() * x_scale.double()) / (w_levels * x_levels)
        return (acc * scale).to(torch.float32)

    def _plan(self, layer: MatrixLayer) -> ConversionPlan:
        if layer.node not in self._plans:
            self._plans[layer.node] = ConversionPlan(layer.chip)
        return self._plans[layer.node]

    def _static_weight(self, layer: MatrixLayer) -> torch.Tensor:
        w = self._weights.get(layer.node)
        if w is None:
            w = torch.from_numpy(self.program.quantized_weights[layer.node].astype(np.float32))
            self._weights[layer.node] = w = w.to(self.device)
        return w

    def _weight_scale(self, layer: MatrixLayer, groups: int, columns: int) -> torch.Tensor:
        s = torch.tensor(layer.weight_scale, dtype=torch.float32, device=self.device)
        return s.view(groups, 1, columns) if s.numel() > 1 else s

    # -- the integer product, exact or on the array ---------------------------------------------
    def _product(self, layer: MatrixLayer, x: torch.Tensor, w: torch.Tensor,
                 keys: tuple | None, tiles) -> torch.Tensor:
        """(G, R, K) x (Gw, K, N) integer-valued -> (G, R, N) float64."""
        if self.mode == Mode.INT:
            return exact.matmul(x, w)
        plan = self._plan(layer)
        noise = None
        if plan.has_noise and keys is not None:
            stream, offset, col_stride, elements = keys
            noise = NoiseKeys(stream.view(x.shape[0], x.shape[1]),
                              offset.view(x.shape[0], x.shape[1]), col_stride, elements)
        fixed = self._static_mismatch(layer, plan, tiles, w.shape[1], w.shape[2])
        problem = AcimProblem(x, w, plan, tiles, noise, fixed.cells, fixed.gain, fixed.offset,
                              fixed.drivers, fixed.thresholds)
        acc = self.kernel(problem, memory_budget=self.memory_budget)
        if self.measure:
            self._record_error(layer, acc, exact.matmul(x, w))
        return acc

    def _record_error(self, layer: MatrixLayer, acc: torch.Tensor, exact_acc: torch.Tensor
                      ) -> None:
        """The array SQNR's sums: the exact integer product and the converted one's error."""
        seen = ArrayStats(signal=float(exact_acc.square().sum()),
                          error=float((acc - exact_acc).square().sum()))
        self.stats[layer.node] = self.stats.get(layer.node, ArrayStats()).add(seen)

    def _static_mismatch(self, layer: MatrixLayer, plan: ConversionPlan, tiles, k: int, n: int):
        """The chip instance's fixed-pattern errors for this layer (drawn once per run)."""
        key = (layer.node, tuple(tiles), k, n)
        if key not in self._cells:
            self._cells[key] = static_mismatch(plan, self.seed, rng.name_key(layer.node), tiles,
                                               k, n, self.device)
        return self._cells[key]

    def _tiles(self, layer: MatrixLayer, k: int):
        if layer.tiles and layer.tiles[-1][1] == k:
            return layer.tiles
        return row_tiles(k, layer.chip.array.rows)[0]   # run-time K (dynamic operands): flat

    def _noise_keys(self, layer, node, layouts, out_shape, layout, first_flat, col_stride,
                    columns):
        if self.mode != Mode.ACIM or not self._plan(layer).has_noise:
            return None
        if layout is LOST and self.keys.batch > 1:
            self.keyed_on_batch[node.name] = [name for name, l in zip(node.inputs, layouts)
                                              if l is LOST]
        stream, offset, elements = row_noise_keys(
            out_shape, layout, first_flat, col_stride, columns, self.keys, self.seed,
            rng.name_key(layer.node))
        return stream, offset, col_stride, elements

    # -- the three kinds of products -----------------------------------------------------------
    def _conv(self, layer: MatrixLayer, node: Node, inputs: list, layouts: list) -> torch.Tensor:
        x, bias = inputs[0], inputs[2] if len(inputs) > 2 else None
        conv = Conv2d.of(node, x, self.program.graph.constants[node.inputs[1]].shape)
        x = conv.as_2d(x)
        self._count_clipped(layer, x)
        xq, x_scale = self._quantized_input(layer, x, layouts[0], node, reduce_dim=None)
        # Padding is the value 0.0: the integer 0, or a QDQ input's zero point.
        zero = layer.qdq.input.zero_point if layer.qdq and layer.qdq.input else 0
        xq = conv.pad(xq - zero) + zero if zero else conv.pad(xq)
        batch_rows, channels = xq.shape[0], xq.shape[1]
        out_hw = conv.output_size(xq)
        positions = out_hw[0] * out_hw[1]
        groups, k, n = layer.groups, layer.k, layer.n
        w = self._static_weight(layer)                          # (G, K, N)
        row_scale = quantizer.leading_row_scale(x_scale, batch_rows)
        cout = groups * n
        out = torch.empty(batch_rows, cout, positions, dtype=torch.float32, device=x.device)
        exact_product = self.mode == Mode.INT or self._merges_exactly(layer, k, n)
        # Chunk over the batch so that the unfolded input stays within the memory budget.
        per_row_bytes = channels * math.prod(conv.kernel) * positions * 4 * 3
        step = max(1, self.memory_budget // max(1, per_row_bytes))
        for b0 in range(0, batch_rows, step):
            b1 = min(batch_rows, b0 + step)
            if exact_product:
                out[b0:b1] = self._exact_conv(layer, xq[b0:b1], w, conv, row_scale[b0:b1]
                                              if row_scale.dim() > 0 else row_scale)
                continue
            xg = conv.rows(xq[b0:b1], groups, k, positions)
            b_index, first = output_first_columns(b0, b1, positions, groups, n, x.device)
            keys = self._noise_keys(layer, node, layouts, (batch_rows, cout, positions),
                                    layouts[0], first, positions, n)
            acc = self._product(layer, xg, w, keys, self._tiles(layer, k))
            rs = row_scale[b_index].view(1, -1, 1) if row_scale.dim() > 0 else row_scale
            y = self._dequantize(layer, acc, self._weight_scale(layer, groups, n), rs, w)
            out[b0:b1] = y.view(groups, b1 - b0, positions, n).permute(1, 0, 3, 2) \
                .reshape(b1 - b0, cout, positions)
        out = out.view(batch_rows, cout, *out_hw)
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1)
        return conv.back(out)

    def _merges_exactly(self, layer: MatrixLayer, k: int, n: int) -> bool:
        """acim mode with the fast kernel on a layer whose every conversion is lossless and
        noiseless: the kernel would compute one exact integer product, as int mode does."""
        if self.mode != Mode.ACIM or self.kernel is not fast.run:
            return False
        plan, tiles = self._plan(layer), self._tiles(layer, k)
        fixed = self._static_mismatch(layer, plan, tiles, k, n)
        none = torch.empty(0, dtype=torch.int64)
        noise = NoiseKeys(none, none, 1, 0) if plan.has_noise else None
        probe = AcimProblem(torch.empty(layer.groups, 0, k), torch.empty(1, k, n), plan, tiles,
                            noise, fixed.cells, fixed.gain, fixed.offset, fixed.drivers,
                            fixed.thresholds)
        return fast.merges_exactly(probe)

    def _exact_conv(self, layer: MatrixLayer, padded: torch.Tensor, w: torch.Tensor,
                    conv: Conv2d, row_scale: torch.Tensor) -> torch.Tensor:
        """The exact integer product as a convolution (kernels/exact.py: no im2col), dequantised
        in the output's own layout (b, G*N, positions), with no transposing copies."""
        groups, n = layer.groups, layer.n
        acc = exact.conv2d(padded, w, conv)                         # (b, G*N, oh, ow)
        if self.measure:        # a merged acim product: the converted sum is the exact one
            self._record_error(layer, acc, acc)
        b = acc.shape[0]
        # A (G, b, positions, N) view: the scales broadcast as over the (G, rows, N) product.
        acc = acc.view(b, groups, n, -1).permute(1, 0, 3, 2)
        w_scale = self._weight_scale(layer, groups, n)
        y = self._dequantize(layer, acc, w_scale.unsqueeze(1) if w_scale.dim() else w_scale,
                             row_scale.view(1, -1, 1, 1) if row_scale.dim() else row_scale,
                             w.unsqueeze(2))
        return y.permute(1, 0, 3, 2).reshape(b, groups * n, -1)

    def _static_matmul(self, layer: MatrixLayer, node: Node, inputs: list, layouts: list
                       ) -> torch.Tensor:
        x, layout = inputs[0], layouts[0]
        gemm = node.op_type == "Gemm"
        if gemm and node.attr("transA", 0):
            x, layout = x.t(), _transposed(layout)
        squeeze = x.dim() == 1
        if squeeze:
            x = x.unsqueeze(0)
        self._count_clipped(layer, x)
        xq, x_scale = self._quantized_input(layer, x, layout, node)
        rows, row_scale = quantizer.rows_of(xq, x_scale)
        n = layer.n
        out_shape = (*x.shape[:-1], n)
        first = torch.arange(rows.shape[1], device=x.device) * n
        keys = self._noise_keys(layer, node, layouts, out_shape, layout, first, 1, n)
        w = self._static_weight(layer)
        acc = self._product(layer, rows, w, keys, self._tiles(layer, layer.k))
        y = self._dequantize(layer, acc, self._weight_scale(layer, 1, n), row_scale, w)
        y = _gemm_epilogue(node, y.view(out_shape), inputs)
        return y.squeeze(0) if squeeze else y

    def _dynamic_matmul(self, layer: MatrixLayer, node: Node, inputs: list, layouts: list
                        ) -> torch.Tensor:
        chip = layer.chip
        a, b = inputs[0], inputs[1]
        la, lb = layouts[0], layouts[1]
        if node.op_type == "Gemm":
            if node.attr("transA", 0):
                a, la = a.t(), _transposed(la)
            if node.attr("transB", 0):
                b, lb = b.t(), _transposed(lb)
        squeeze_a, squeeze_b = a.dim() == 1, b.dim() == 1
        if squeeze_a:
            a = a.unsqueeze(0)
        if squeeze_b:
            b = b.unsqueeze(1)
        lead = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        self._count_clipped(layer, a)
        aq, a_scale = self._quantized_input(layer, a, la, node)
        model = layer.qdq.operand if layer.qdq is not None else None
        if model is not None:             # a QDQ model's own integers, written as weights
            b_scale = torch.tensor(model.scale, dtype=torch.float32, device=b.device)
            bq = quantizer.model_integers(b, model)
        else:       # quantised like a weight: signed, with its own scale
            b_scale = self._input_scale(layer, b, lb, node, True, layer.operand_scale,
                                        reduce_dim=-2)
            bq = quantize_weight(b, b_scale, chip.weight.bits)
        groups = math.prod(lead)
        xg = aq.expand(*lead, m, k).reshape(groups, m, k)
        wg = bq.expand(*lead, k, n).reshape(groups, k, n)
        out_shape = (*lead, m, n)
        row_scale = a_scale.expand(a.shape).expand(*lead, m, k).reshape(groups, m, k)[..., :1] \
            if a_scale.dim() > 0 and a_scale.numel() > 1 else a_scale
        col_scale = b_scale.expand(b.shape).expand(*lead, k, n).reshape(groups, k, n)[:, :1, :] \
            if b_scale.dim() > 0 and b_scale.numel() > 1 else b_scale
        layout = _output_layout(la, lb, a.dim(), b.dim(), len(out_shape))
        first = torch.arange(groups * m, device=a.device) * n
        keys = self._noise_keys(layer, node, layouts, out_shape, layout, first, 1, n)
        acc = self._product(layer, xg, wg, keys, self._tiles(layer, k))
        if layer.qdq is None:
            y = quantizer.dequantize(chip, acc, col_scale, row_scale)
        else:
            y = self._dequantize(layer, acc, col_scale, row_scale, wg, xg)
        y = _gemm_epilogue(node, y.view(out_shape), inputs)
        if squeeze_a:
            y = y.squeeze(-2)
        if squeeze_b:
            y = y.squeeze(-1)
        return y


def _gemm_epilogue(node: Node, y: torch.Tensor, inputs: list) -> torch.Tensor:
    """Gemm's alpha * (A B) + beta * C in float, after the product (MatMul: unchanged)."""
    if node.op_type != "Gemm":
        return y
    return gemm_epilogue(node, y, inputs[2] if len(inputs) > 2 else None)


def _transposed(layout):
    """The layout of a 2-D tensor after .t()."""
    if layout is None or not hasattr(layout, "axis"):
        return layout
    return replace(layout, axis=1 - layout.axis)


def _output_layout(la, lb, rank_a: int, rank_b: int, rank_out: int):
    """Where the batch sits in a MatMul's output, from either operand's layout."""
    if la is not None and hasattr(la, "axis") and la.axis != rank_a - 1:
        return replace(la, axis=la.axis + rank_out - rank_a)
    if lb is not None and hasattr(lb, "axis") and lb.axis < rank_b - 2:
        return replace(lb, axis=lb.axis + rank_out - rank_b)
    if la is None and lb is None:
        return None
    return la if la is not None else lb


def execute(program: Program, inputs, *, mode: str = "acim", seed: int = 0,
            device: str | torch.device = "cpu", memory_budget: int | None = None,
            taps: bool = False, kernel: str = "fast", progress=None) -> RunResult:
    """Run ``program`` on ``inputs``; see ``Program.run``."""
    from .interpreter import run_graph
    if mode not in Mode.values():
        raise UsageError(f"unknown mode {mode!r}: use one of {', '.join(Mode.values())}")
    if isinstance(kernel, str) and kernel not in KERNELS:     # or a kernel function
        raise UsageError(f"unknown kernel {kernel!r}: use one of {', '.join(KERNELS)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise UsageError(f"the seed must be an integer, not {seed!r}")
    dev = resolve_device(device)
    budget = memory_budget or fast.DEFAULT_MEMORY_BUDGET
    graph = program.graph
    feeds, batch, per_sample = prepare_feeds(graph, inputs)
    if per_sample:                       # a model exported with a fixed batch of 1
        results = [execute(program, {k: v[b:b + 1] for k, v in feeds.items()}, mode=mode,
                           seed=seed, device=dev, memory_budget=budget, taps=taps,
                           kernel=kernel, progress=progress) for b in range(batch)]
        clipped = {k: tuple(map(sum, zip(*[r.clipped[k] for r in results])))
                   for k in results[0].clipped}
        return RunResult(
            outputs={k: np.concatenate([r.outputs[k] for r in results]) for k in
                     results[0].outputs},
            taps={k: np.concatenate([r.taps[k] for r in results]) for k in results[0].taps},
            mode=mode, seed=int(seed), warnings=clipping_warnings(program, clipped),
            clipped=clipped, stats=merge_stats(r.stats for r in results))
    batched = [v for k, v in feeds.items() if _has_batch(graph, k, v, batch)]
    keys = SampleKeys.from_inputs(batched, [v for v in feeds.values()])
    hook = None
    if mode != Mode.FLOAT:
        hook = _MatrixHook(program, mode, int(seed), keys, kernel, budget, dev, progress,
                           measure=taps and mode == Mode.ACIM)
    tapped = [l.node for l in program.layers.values() if l.on_chip] if taps else []
    producer = {n.name: n for n in graph.nodes}
    keep = [producer[name].outputs[0] for name in tapped]
    tensors = {k: torch.from_numpy(v).to(dev) for k, v in feeds.items()}
    with torch.inference_mode():
        run = run_graph(graph, tensors, device=dev, hook=hook, keep=keep, batch_size=batch)
    outputs = {k: v.detach().cpu().numpy() for k, v in run.outputs.items()}
    tap_values = {name: run.values[producer[name].outputs[0]].detach().cpu().numpy()
                  for name in tapped}
    clipped = hook.clipped if hook else {}
    warnings = clipping_warnings(program, clipped)
    if hook is not None:
        warnings += lost_batch_warnings(hook.keyed_on_batch, run.lost)
    return RunResult(outputs, tap_values, mode, int(seed), warnings, clipped,
                     hook.stats if hook else {})


def merge_stats(runs) -> dict[str, ArrayStats]:
    """Per layer, the ArrayStats of several runs (batches) summed."""
    merged: dict[str, ArrayStats] = {}
    for stats in runs:
        for name, seen in stats.items():
            merged[name] = merged[name].add(seen) if name in merged else seen
    return merged


def clipping_warnings(program: Program, clipped: dict[str, tuple[int, int]],
                      threshold: float = 0.01) -> list[str]:
    """One warning per cause of clipping (not one per layer), naming every layer whose
    quantiser clips more than ``threshold`` of its inputs, with its share."""
    unsigned, static = [], []
    for node, (count, total) in clipped.items():
        if total and count / total > threshold:
            named = f"{node} ({100 * count / total:.1f}%)"
            (static if program.layers[node].chip.input.signed else unsigned).append(named)
    warnings = []
    if unsigned:
        warnings.append(f"{_layers(unsigned)}: negative inputs clip to 0 on this "
                        "unsigned-input chip; a `layer` override with `input { signed }` keeps "
                        "them")
    if static:
        warnings.append(f"{_layers(static)}: they exceed the calibrated static scale")
    return warnings


def _layers(named: list[str]) -> str:
    return (f"inputs are clipped in {len(named)} layer{'s' if len(named) != 1 else ''} "
            f"({', '.join(named)})")


def lost_batch_warnings(keyed_on_batch: dict[str, list[str]], lost: dict[str, str]
                        ) -> list[str]:
    """One warning per noisy on-chip layer whose noise could not be keyed per sample."""
    warnings = []
    for node, inputs in keyed_on_batch.items():
        why = next((lost[name] for name in inputs if name in lost), "the batch axis was lost")
        warnings.append(f"{node}: per-sample reproducibility is lost: {why}, so this layer's "
                        "noise is drawn for the batch as a whole and a sample's result depends "
                        "on the other samples in its batch")
    return warnings


def _has_batch(graph, name: str, value: np.ndarray, batch: int) -> bool:
    info = next((i for i in graph.inputs if i.name == name), None)
    if info is None or not info.shape or value.ndim == 0:
        return False
    return not isinstance(info.shape[0], int) or (value.shape[0] == batch and batch > 1)
