"""``asimc.compile``: ONNX model + chip -> Program.

The pipeline: import (asimc.frontend: load, check, shapes, fold) -> optional smoothing of the
on-chip products on data (asimc.passes.smooth) -> lower (which products run on the array) ->
tile (row and column tiles) -> quantise static weights -> optional static input scales measured
on data (asimc.passes.input_scales) -> schedule (cost) -> Program with its report. A quantised
(QDQ) model's own weight integers and scales replace asimc's quantisers (asimc.passes.qdq).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np

from .chip.conversions import ConversionPlan, precision  # noqa: F401 - precision: public here
from .chip.fields import ConvMapping, InputScale, WeightScale
from .chip.spec import ChipSpec
from .errors import AsimcError, UsageError
from .ir import Graph
from .frontend.qdq import QdqPattern, pattern_matches_weights
from .passes.lower import Candidate, lower, unmatched_glob_warnings
from .passes.qdq import layer_for_chip
from .passes.quantize import quantize_static_weight
from .passes.smooth import DEFAULT_ALPHA, check_alpha
from .passes.smooth import smooth as smooth_products
from .passes.schedule import layer_cost, schedule
from .passes.tile import Tiling, tile
from .program import LayerKind, MatrixLayer, ModelOrigin, Placement, Program
from .report.mapping import mapping_report


def _chip(chip: ChipSpec | str | Path) -> ChipSpec:
    from .chip import load_chip
    return chip if isinstance(chip, ChipSpec) else load_chip(chip)


def _batch_dim(graph: Graph) -> int:
    """The fixed batch size a model was exported with, or 1 for a symbolic batch."""
    for info in graph.inputs:
        if info.shape and isinstance(info.shape[0], int) and info.shape[0] > 1:
            return info.shape[0]
    return 1


def _is_int(dim) -> bool:
    return isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0


def _positions(graph: Graph, cand: Candidate, shape: tuple | None = None
               ) -> tuple[int, int] | None:
    """(output positions per sample, run-time operand groups per sample), or None when the
    output shape has a symbolic or unknown dimension besides the batch (then the cost would be
    a guess: give the input shape). ``shape``: the output's shape measured by a float run,
    where static shape inference left it symbolic."""
    if shape is None:
        info = graph.info(cand.node.outputs[0])
        if info is None or info.shape is None or not info.shape:
            return None
        shape = tuple(info.shape)
    batch = _batch_dim(graph)
    if not all(_is_int(d) for d in shape[1:]):
        return None
    if len(shape) == 1:                                  # a vector times a matrix
        return (1, 0) if cand.kind != LayerKind.DYNAMIC else None
    lead = shape[0] if _is_int(shape[0]) else batch     # a symbolic batch: per sample
    if cand.node.op_type == "Conv":
        return max(1, math.prod(shape[2:])), 0
    if cand.kind == LayerKind.DYNAMIC:
        if len(shape) < 2:
            return None
        groups = max(1, lead * math.prod(shape[1:-2]) // batch) if len(shape) > 2 else 1
        return groups * shape[-2], groups
    return max(1, lead * math.prod(shape[1:-1]) // batch), 0


def _run_shapes(graph: Graph, candidates: list[Candidate]) -> dict[str, tuple[int, ...]]:
    """Output shapes of the on-chip products whose shape static inference left symbolic
    (a packed attention in-projection reshaped by Shape/Gather chains), from one float run on
    zeros of the inputs' per-sample shapes (a batch of one). Empty when an input's per-sample
    shape is not known (give ``input_shape``) or the run fails: those costs stay unknown."""
    missing = [c for c in candidates if c.placement == Placement.ACIM and c.k is not None
               and _positions(graph, c) is None]
    if not missing:
        return {}
    import torch
    from .runtime.interpreter import run_graph
    feeds = {}
    for info in graph.inputs:
        if info.shape is None or not info.shape or not all(_is_int(d) for d in info.shape[1:]):
            return {}
        batch = info.shape[0] if _is_int(info.shape[0]) else 1
        feeds[info.name] = torch.from_numpy(np.zeros((batch, *info.shape[1:]),
                                                     dtype=info.dtype or "float32"))
    try:
        with torch.inference_mode():
            run = run_graph(graph, feeds, keep=[c.node.outputs[0] for c in missing])
    except (AsimcError, RuntimeError, ValueError):   # the model refuses zeros: costs unknown
        return {}
    return {c.node.name: tuple(run.values[c.node.outputs[0]].shape) for c in missing}


def _layer(graph: Graph, cand: Candidate, mapping: str | None, pattern: QdqPattern | None,
           shape: tuple | None = None) -> tuple[MatrixLayer, np.ndarray | None, str]:
    chip = cand.chip
    if mapping is not None:
        chip = replace(chip, array=replace(chip.array, mapping=mapping))
    base = dict(node=cand.node.name, op_type=cand.node.op_type, kind=cand.kind,
                placement=cand.placement, chip=chip, k=cand.k or 0, n=cand.n or 0,
                groups=cand.groups, reason=cand.reason)
    if cand.placement != Placement.ACIM:
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
        known = _positions(graph, cand, shape)
        positions, dynamic_groups = known or (1, 1 if cand.kind == LayerKind.DYNAMIC else 0)
        cost = layer_cost(plan, tiling, k=cand.k, n=cand.n or 1, groups=cand.groups,
                          positions=positions, dynamic_groups=dynamic_groups)
        if known is None:
            cost = cost.without_positions()
        tiles, accumulate = schedule(tiling, n=cand.n or 1, groups=cand.groups,
                                     weight_bits=chip.weight.bits, cols=chip.array.cols,
                                     macros=chip.array.macros)
    weights, scales, qdq = None, (), None
    if cand.weight is not None:
        weights, scales = quantize_static_weight(cand.weight, chip.weight.bits,
                                                 chip.quant.weight == WeightScale.PER_CHANNEL)
        if pattern is not None and not pattern_matches_weights(pattern, cand.weight):
            # A BatchNormalization right after the product was folded into its weights: the
            # model's integers are no longer what the graph computes.
            note = "; ".join(filter(None, [note, (
                "its QDQ weights were changed by a folded BatchNormalization; asimc "
                "quantises the folded weights itself")]))
            pattern = replace(pattern, weights=None)
        if pattern is not None:           # a QDQ model: its own integers and scales
            qdq, model_weights = layer_for_chip(pattern, chip, cand.node)
            if model_weights is not None:
                weights, scales = model_weights, pattern.weights.scales
    elif pattern is not None:             # attention in a QDQ model: both operands' integers
        qdq, _ = layer_for_chip(pattern, chip, cand.node)
    layer = MatrixLayer(**base, tiles=tiling.row_tiles if tiling else (),
                        weight_scale=scales, cost=cost, schedule=tiles, accumulate=accumulate,
                        qdq=qdq)
    return layer, weights, note


def _with_input_shapes(model, input_shapes):
    """The ONNX model with its inputs' per-sample dimensions fixed (the batch stays as it is),
    so that every layer's cost is computed from real shapes."""
    from .frontend.load import load_model
    proto = load_model(model)
    declared = {i.name: i for i in proto.graph.input}
    initializers = {t.name for t in proto.graph.initializer}
    real = [name for name in declared if name not in initializers]
    if not isinstance(input_shapes, dict):
        if len(real) != 1:
            raise UsageError(f"the model has {len(real)} inputs ({', '.join(real)}): give each "
                             "input's shape by name, NAME=1x8x8")
        input_shapes = {real[0]: input_shapes}
    for name, sample_shape in input_shapes.items():
        if name not in declared:
            raise UsageError(f"--input-shape names input {name!r}, but the model's inputs are "
                             f"{', '.join(real)}")
        dims = declared[name].type.tensor_type.shape.dim
        sample_shape = tuple(int(d) for d in sample_shape)
        if len(dims) != len(sample_shape) + 1:
            raise UsageError(f"input {name!r} has {len(dims)} dimensions (the batch first), so "
                             f"its per-sample shape has {len(dims) - 1}, not "
                             f"{len(sample_shape)} ({'x'.join(map(str, sample_shape))})")
        for axis, (dim, size) in enumerate(zip(list(dims)[1:], sample_shape), start=1):
            if size < 1:
                raise UsageError(f"input {name!r}: dimension {axis} must be >= 1, not {size}")
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise UsageError(f"input {name!r}: dimension {axis} is {dim.dim_value} in the "
                                 f"model, not {size}")
            dim.Clear()
            dim.dim_value = size
    return proto


def compile(model, chip: ChipSpec | str | Path, *, example_inputs=None,
            exporter: str = "dynamo", digital: Iterable[str] = (), mapping: str | None = None,
            input_scales=None, smooth=None, smooth_alpha: float = DEFAULT_ALPHA,
            calibration_limit: int = 256, input_shape=None) -> Program:
    """Compile a model for ``chip`` (a ChipSpec or a path): an ONNX model (path, bytes or
    ModelProto), or a ``torch.nn.Module`` with ``example_inputs``.

    example_inputs: for a torch module, a tensor, a tuple of tensors or a dict of named
               tensors. The module is exported in memory (``exporter``: ``dynamo``, torch's
               default, or ``torchscript``) with a dynamic batch axis; the other dimensions,
               and so every layer's cost, come from the examples. Nodes are named after module
               paths (``layer1.0.conv1``), so reports, ``digital`` and chip ``layer`` globs
               speak the module's names.
    digital:   node-name globs to keep off the array.
    mapping:   override the chip's convolution mapping (``channels`` or ``flat``).
    input_scales: data (anything ``asimc.data.load_dataset`` takes, an array, or arrays by
               input name) to measure static input scales on; switches the chip's
               ``quant input`` to ``static``.
    smooth:    data to smooth the on-chip MatMul/Gemm products on (SmoothQuant: activation
               outliers moved into the weights, asimc.passes.smooth), with strength
               ``smooth_alpha`` (0: none, 1: all of it into the weights).
    calibration_limit: how many samples of that data are used.
    input_shape: the per-sample shape of the input (e.g. ``(1, 8, 8)``), or a dict of them by
               input name: fixes symbolic dimensions so costs come from real shapes. Without
               it, layers whose output shape is symbolic get no cost (``None``), never a guess.
    """
    from .frontend import import_for_compile
    from .frontend.load import load_model
    from .frontend.torch_export import export_module, is_module
    if mapping is not None and mapping not in ConvMapping.values():
        raise UsageError(f"unknown mapping {mapping!r}: use `channels` or `flat`")
    spec = _chip(chip)
    if smooth is not None:
        smooth_alpha = check_alpha(smooth_alpha)
    options = dict(digital=tuple(digital), mapping=mapping, input_scales=input_scales,
                   smooth=smooth, smooth_alpha=smooth_alpha,
                   calibration_limit=calibration_limit, input_shape=input_shape)
    signature = None
    if is_module(model):
        model, signature = export_module(model, example_inputs, exporter=exporter)
        if input_shape is None:
            input_shape = dict(signature.sample_shapes)
        source = signature.module_name
    elif example_inputs is not None:
        raise UsageError("example_inputs is for torch modules; an ONNX model's per-sample "
                         "input shape is given with input_shape=")
    else:
        source = str(model) if isinstance(model, (str, Path)) else ""
    origin_chip = spec
    if input_scales is not None and spec.quant.input != InputScale.STATIC:
        spec = replace(spec, quant=replace(spec.quant, input=InputScale.STATIC))
    proto = _with_input_shapes(model, input_shape) if input_shape is not None \
        else load_model(model)
    imported = import_for_compile(proto)
    graph, patterns = imported.graph, imported.qdq_patterns
    notes: dict[str, str] = {}
    if smooth is not None:
        if patterns:
            raise UsageError("smoothing rescales a float model's weights and activations; a "
                             "quantised (QDQ) model's integers and scales are its own: compile "
                             "the float model to smooth it")
        on_chip = [c.node.name for c in lower(graph, spec, tuple(digital))
                   if c.placement == Placement.ACIM and c.kind == LayerKind.STATIC]
        graph, notes = smooth_products(graph, on_chip, smooth, alpha=smooth_alpha,
                                       limit=calibration_limit)
    candidates = lower(graph, spec, tuple(digital))
    shapes = _run_shapes(graph, candidates)
    layers: dict[str, MatrixLayer] = {}
    weights: dict[str, np.ndarray] = {}
    for cand in candidates:
        layer, w, note = _layer(graph, cand, mapping, patterns.get(cand.node.name),
                                shapes.get(cand.node.name))
        layers[layer.node] = layer
        if w is not None:
            weights[layer.node] = w
        note = "; ".join(filter(None, [notes.get(layer.node), note]))
        if note:
            notes[layer.node] = note
    uncalibrated = [l.node for l in layers.values()
                    if l.on_chip and l.chip.adc.full_scale == "calibrated"]
    if uncalibrated:
        raise UsageError(
            f"the chip's ADC range is `full_scale calibrated`, but {len(uncalibrated)} on-chip "
            f"layer(s) have no calibrated range ({', '.join(uncalibrated[:3])}"
            f"{', ...' if len(uncalibrated) > 3 else ''}): run `asimc calibrate MODEL --chip "
            "CHIP --data DATA -o CALIBRATED.acim` and use CALIBRATED.acim")
    origin = ModelOrigin(model=proto, chip=origin_chip, options=options, compile=compile,
                         signature=signature)
    program = Program(graph=graph, chip=spec, layers=layers, quantized_weights=weights,
                      source=source, origin=origin)
    static_inputs = any(l.on_chip and l.chip.quant.input == InputScale.STATIC
                        for l in layers.values())
    if static_inputs:
        if input_scales is None:
            raise UsageError("the chip quantises inputs with static scales (quant { input "
                             "static }): give data to measure them on with --input-scales DATA")
        from .passes.input_scales import with_input_scales
        program = with_input_scales(program, input_scales, limit=calibration_limit)
    warnings = unmatched_glob_warnings(graph, spec, tuple(digital))
    return replace(program, report=mapping_report(program, notes, warnings))


def on_chip(model, chip: ChipSpec | str | Path, example_inputs, *, mode: str = "acim",
            seed: int = 0, **options):
    """``model`` (a torch.nn.Module) running on ``chip`` bit by bit, as a torch module:
    ``compile(model, chip, example_inputs=...).module(mode, seed)``. ``options`` go to
    ``compile`` (digital, mapping, exporter, ...)."""
    return compile(model, chip, example_inputs=example_inputs, **options).module(mode=mode,
                                                                                  seed=seed)
