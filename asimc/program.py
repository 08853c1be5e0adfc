"""The compiled program: a graph whose matrix products are mapped onto the chip.

``compile`` (asimc.compiler) produces a ``Program``: the imported graph (digital ops run as they
are), one ``MatrixLayer`` per Conv/Gemm/MatMul saying where and how it runs, the quantised
weights, and the cost report. ``Program.run`` executes it (asimc.runtime.executor);
``Program.save``/``load_program`` write and read the artifact (asimc.artifact).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from .chip.spec import ChipSpec
from .ir import Graph


@dataclass(frozen=True)
class QdqOperand:
    """A run-time operand of a product as a quantised (QDQ) model quantises it, moved onto the
    chip's range (asimc.passes.qdq): the chip takes ``u - shift`` for the model's integer
    ``u``; ``zero_point`` is the model's zero point minus ``shift`` (the value that means 0.0,
    what a Conv pads with)."""

    scale: float
    zero_point: int
    shift: int
    dtype: str


@dataclass(frozen=True)
class QdqLayer:
    """What a QDQ model fixes for one on-chip product; None: asimc quantises that operand.
    ``operand``: the second run-time operand of an activation x activation MatMul."""

    input: QdqOperand | None
    weight_dtype: str | None
    weight_per_channel: bool = False
    operand: QdqOperand | None = None


# LayerCost fields that scale with the output positions of a sample: unknown (None) when the
# model leaves spatial or sequence dimensions symbolic and no input shape was given.
PER_POSITION = ("positions", "macs", "cell_ops", "adc_conversions", "digital_bit_products",
                "accumulations", "cycles", "weight_writes", "energy_j", "latency_s")


@dataclass(frozen=True)
class LayerCost:
    """Per inference (one sample) cost of one matrix product on the chip. The PER_POSITION
    fields are None when the output shape is not known at compile time: a cost is computed from
    real shapes or not at all, never guessed."""

    positions: int            # output positions: conv pixels, or rows (tokens) of a MatMul
    macs: int                 # full-precision multiply-accumulates
    cell_ops: int             # one weight bit x one input cycle on one row
    adc_conversions: int      # analog conversions, votes included
    digital_bit_products: int  # hybrid levels computed digitally
    accumulations: int        # digital additions of partial sums across row tiles
    row_tiles: int
    column_tiles: int
    array_tiles: int          # row tiles x column tiles (x conv groups): macros to hold it
    used_cells: int
    allocated_cells: int
    cycles: int               # clock cycles with the layer's tiles spread over the macros
    weight_writes: int        # cells written at run time (activation x activation MatMuls)
    energy_j: float | None    # where the chip gives energy figures
    latency_s: float | None   # where the chip gives a clock

    @property
    def utilization(self) -> float:
        return self.used_cells / self.allocated_cells if self.allocated_cells else 0.0

    @property
    def known(self) -> bool:
        return self.positions is not None

    def without_positions(self) -> "LayerCost":
        """This cost with every field that depends on the output positions unknown."""
        return replace(self, **{name: None for name in PER_POSITION})


@dataclass(frozen=True)
class ArrayTile:
    """One load of a layer onto a macro: row tile ``row_tile`` of the reduction (rows [r0, r1))
    times the output channels [c0, c1) of one group, on ``macro`` in ``wave`` (a wave after the
    first reloads weights)."""

    group: int
    row_tile: int
    rows: tuple[int, int]
    channels: tuple[int, int]
    macro: int
    wave: int


@dataclass(frozen=True)
class Accumulate:
    """The digital op after the array tiles: every output adds the partial sums of its
    ``row_tiles`` row tiles (``row_tiles - 1`` additions per output)."""

    row_tiles: int
    outputs: int        # outputs per position: groups x output channels


@dataclass(frozen=True)
class MatrixLayer:
    """One Conv/Gemm/MatMul and how it runs.

    kind:      ``static`` (constant weights stored in the array) or ``dynamic`` (both operands
               are activations; the second is written into the array at run time).
    placement: ``acim`` or ``digital`` (float on the host); ``reason`` says why digital.
    k, n:      reduction length and output columns of one group's matrix product.
    groups:    convolution groups (1 for Gemm/MatMul).
    tiles:     row tiles of the reduction as [k0, k1) ranges.
    weight_scale: static weights' quantisation scale(s): one per tensor or one per column.
    input_scale:  static (calibrated) input scale, or None for dynamic scales.
    operand_scale: static scale of a dynamic MatMul's second operand, or None.
    schedule:  the array tiles in the order they run; ``accumulate`` the partial-sum op after.
    qdq:       for a quantised (QDQ) model, the model's input (and attention operand)
               quantisers and whether the weights and ``weight_scale`` are the model's
               integers and scales (per integer step).
    """

    node: str
    op_type: str
    kind: str
    placement: str
    chip: ChipSpec
    k: int
    n: int
    groups: int = 1
    tiles: tuple[tuple[int, int], ...] = ()
    reason: str = ""
    weight_scale: tuple[float, ...] = ()
    input_scale: float | None = None
    operand_scale: float | None = None
    cost: LayerCost | None = None
    schedule: tuple[ArrayTile, ...] = ()
    accumulate: Accumulate | None = None
    qdq: QdqLayer | None = None       # a QDQ model's own scales (asimc.passes.qdq)

    @property
    def on_chip(self) -> bool:
        return self.placement == "acim"


@dataclass(frozen=True, eq=False)
class ModelOrigin:
    """What a program was compiled from, so that it can be compiled again with new weights
    (fine-tuning): the imported ONNX model, the chip and options ``compile`` was given, and for
    a torch module how its forward maps onto the graph. Not saved in the artifact."""

    model: Any                      # onnx.ModelProto (nodes named as in the program)
    chip: ChipSpec
    options: Mapping[str, Any]      # compile's keyword arguments besides the model and chip
    signature: Any = None           # asimc.frontend.torch_export.TorchSignature


@dataclass(frozen=True, eq=False)
class Program:
    """A model compiled for one chip."""

    graph: Graph
    chip: ChipSpec
    layers: Mapping[str, MatrixLayer]            # by node name, in graph order
    quantized_weights: Mapping[str, np.ndarray]  # node name -> (groups, K, N) integer weights
    report: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""                             # the model it came from
    origin: ModelOrigin | None = None            # None for a loaded artifact

    def run(self, inputs, *, mode: str = "acim", seed: int = 0, device: str = "cpu",
            memory_budget: int | None = None, taps: bool = False, kernel: str = "fast",
            progress=None):
        """Execute on ``inputs`` (an array for a single-input model, or a dict by input name).

        mode: ``float`` (no quantisation), ``int`` (quantised, exact integer products) or
        ``acim`` (the bit-level simulation of the chip). ``progress``: called with the node name
        after each on-chip layer. Returns a ``RunResult``.
        """
        from .runtime.executor import execute
        return execute(self, inputs, mode=mode, seed=seed, device=device,
                       memory_budget=memory_budget, taps=taps, kernel=kernel,
                       progress=progress)

    def module(self, mode: str = "acim", seed: int = 0):
        """The program as a ``torch.nn.Module`` (asimc.finetune.module.ChipModule): forward
        takes and returns torch tensors on the input's device (several outputs as the
        original module returns them) and runs ``mode`` bit by bit, equal to ``run``. Its
        parameters are the model's float weights; trained (``module.train()``), the on-chip
        layers' forward pass is the chip's and the backward pass goes straight through."""
        from .finetune.module import ChipModule
        return ChipModule(self, mode=mode, seed=seed)

    def save(self, path) -> str:
        """Write the artifact; returns its content hash."""
        from .artifact import save_program
        return save_program(self, path)
