"""``asimc.compile``: ONNX model + chip -> Program.

The pipeline: import (asimc.frontend: load, check, shapes, fold) -> lower (which products run on
the array) -> tile (row and column tiles) -> quantise static weights -> optional calibration of
static input scales -> schedule (cost) -> Program with its report.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np

from .chip.conversions import ConversionPlan
from .chip.spec import ChipSpec
from .errors import UsageError
from .ir import Graph
from .passes.lower import Candidate, lower
from .passes.quantize import quantize_static_weight
from .passes.schedule import layer_cost, schedule
from .passes.tile import Tiling, tile
from .program import MatrixLayer, Program


def _chip(chip: ChipSpec | str | Path) -> ChipSpec:
    if isinstance(chip, ChipSpec):
        return chip
    from .chip import load_chip
    return load_chip(chip)


def _batch_dim(graph: Graph) -> int:
    """The fixed batch size a model was exported with, or 1 for a symbolic batch."""
    for info in graph.inputs:
        if info.shape and isinstance(info.shape[0], int) and info.shape[0] > 1:
            return info.shape[0]
    return 1


def _known(dims: Iterable) -> int:
    """Product of the known dims; symbolic or unknown dims (the batch) count as 1."""
    return math.prod(d for d in dims if isinstance(d, int) and d > 0)


def _positions(graph: Graph, cand: Candidate) -> tuple[int, int]:
    """(output positions per sample, run-time operand groups per sample)."""
    info = graph.info(cand.node.outputs[0])
    shape = info.shape if info is not None and info.shape is not None else ()
    batch = _batch_dim(graph)
    if cand.node.op_type == "Conv":
        return max(1, _known(shape[2:])), 0
    if cand.kind == "dynamic":
        groups = max(1, _known(shape[:-2]) // batch)
        rows = shape[-2] if len(shape) >= 2 and isinstance(shape[-2], int) else 1
        return groups * rows, groups
    return max(1, _known(shape[:-1]) // batch), 0


def precision(chip: ChipSpec) -> str:
    """A short description like ``W8 A8u serial ADC8``."""
    i = chip.input
    encoding = "serial" if i.bits_per_cycle == 1 else f"parallel{i.bits_per_cycle}"
    weights = f"W{chip.weight.bits}" + ("(parallel)" if chip.weight.parallel else "")
    return f"{weights} A{i.bits}{'s' if i.signed else 'u'} {encoding} ADC{chip.adc.bits}"


def _layer(graph: Graph, cand: Candidate, mapping: str | None
           ) -> tuple[MatrixLayer, np.ndarray | None, str]:
    chip = cand.chip
    if mapping is not None:
        chip = replace(chip, array=replace(chip.array, mapping=mapping))
    base = dict(node=cand.node.name, op_type=cand.node.op_type, kind=cand.kind,
                placement=cand.placement, chip=chip, k=cand.k or 0, n=cand.n or 0,
                groups=cand.groups, reason=cand.reason)
    if cand.placement != "acim":
        return MatrixLayer(**base), None, ""
    plan = ConversionPlan(chip)
    note = ""
    tiling: Tiling | None = None
    cost = None
    tiles, accumulate = (), None
    if cand.k is not None:
        tiling = tile(cand.k, cand.n or 1, chip.array.rows, chip.array.cols, chip.weight.bits,
                      cand.kernel_area, chip.array.mapping)
        note = tiling.note
        positions, dynamic_groups = _positions(graph, cand)
        cost = layer_cost(plan, tiling, k=cand.k, n=cand.n or 1, groups=cand.groups,
                          positions=positions, dynamic_groups=dynamic_groups)
        tiles, accumulate = schedule(tiling, n=cand.n or 1, groups=cand.groups,
                                     weight_bits=chip.weight.bits, cols=chip.array.cols,
                                     macros=chip.array.macros)
    weights, scales = None, ()
    if cand.weight is not None:
        weights, scales = quantize_static_weight(cand.weight, chip.weight.bits,
                                                 chip.quant.weight == "per_channel")
    layer = MatrixLayer(**base, tiles=tiling.row_tiles if tiling else (),
                        weight_scale=scales, cost=cost, schedule=tiles, accumulate=accumulate)
    return layer, weights, note


def compile(model, chip: ChipSpec | str | Path, *, digital: Iterable[str] = (),
            mapping: str | None = None, calibrate=None, calibration_limit: int = 256
            ) -> Program:
    """Compile an ONNX model (path, bytes or ModelProto) for ``chip`` (a ChipSpec or a path).

    digital:   node-name globs to keep off the array.
    mapping:   override the chip's convolution mapping (``channels`` or ``flat``).
    calibrate: data (anything ``asimc.data.load_dataset`` takes, or an array) to calibrate
               static input scales; switches the chip's ``quant input`` to ``static``.
    """
    from .frontend import import_model
    if mapping not in (None, "channels", "flat"):
        raise UsageError(f"unknown mapping {mapping!r}: use `channels` or `flat`")
    spec = _chip(chip)
    if calibrate is not None and spec.quant.input != "static":
        spec = replace(spec, quant=replace(spec.quant, input="static"))
    graph = import_model(model)
    layers: dict[str, MatrixLayer] = {}
    weights: dict[str, np.ndarray] = {}
    notes: dict[str, str] = {}
    for cand in lower(graph, spec, tuple(digital)):
        layer, w, note = _layer(graph, cand, mapping)
        layers[layer.node] = layer
        if w is not None:
            weights[layer.node] = w
        if note:
            notes[layer.node] = note
    source = str(model) if isinstance(model, (str, Path)) else ""
    program = Program(graph=graph, chip=spec, layers=layers, quantized_weights=weights,
                      source=source)
    static_inputs = any(l.on_chip and l.chip.quant.input == "static" for l in layers.values())
    if static_inputs:
        if calibrate is None:
            raise UsageError("the chip quantises inputs with static scales (quant { input "
                             "static }): give calibration data with --calibrate DATA")
        from .passes.calibrate import calibrate_program
        program = calibrate_program(program, calibrate, limit=calibration_limit)
    from .report.mapping import mapping_report
    return replace(program, report=mapping_report(program, notes))
