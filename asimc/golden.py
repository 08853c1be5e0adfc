"""The golden-model ladder (README.md, "The golden-model ladder"): each rung proves one step before the next.

1. FP32 ONNX (onnxruntime) vs asimc ``float``: the import and the digital ops are right.
2. ``float`` vs ``int``: what quantisation costs.
3. ``int`` vs ideal ACiM (the chip with its noise off): bit-identical when every conversion is
   lossless, otherwise the measured ADC loss.
4. ideal vs noisy ACiM: what the chip's noise costs.

Rungs 1 and 3-when-lossless must hold (they are exact claims); the others are measurements that
pass when top-1 agreement (the mean cosine, with a metric other than top1 or agreement) stays
above ``min_agreement``. Then a per-layer table: the SQNR of
every on-chip layer's output against ``int``, ideal and noisy, to show which layer loses most.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import Enum

import numpy as np

from .chip.conversions import ConversionPlan
from .errors import UsageError
from .evaluate import (DEFAULT_BATCH, check_batch_size, load_eval_data, max_differences,
                       run_onnxruntime, without_noise)
from .evaluation import ChipRun, resolve_metric, run_chip, score_run
from .metrics import sqnr_db
from .program import Program
from .runtime.executor import clipping_warnings

FLOAT_TOLERANCE = 1e-4     # |float - onnxruntime| <= tol * (1 + max |onnxruntime|)
# A QDQ model against onnxruntime running its graph as written: both compute the same integers,
# but the float rounding of a sum can tip a value within ~1e-6 of a half step to the other side
# of a QuantizeLinear, moving that activation one step; such flips are rare (about 1e-5 of the
# elements) and move a few logits by a few output steps, so the claim is top-1 agreement.
QDQ_MIN_AGREEMENT = 0.99


class RungKind(str, Enum):
    """Which step of the ladder a rung checks."""

    IMPORT = "import"                 # FP32 onnxruntime vs asimc float
    QDQ_FLOAT = "qdq float"           # onnxruntime running a QDQ graph as written vs float
    QUANTISATION = "quantisation"     # float vs int
    QDQ_INT = "qdq int"               # onnxruntime running a QDQ graph as written vs int
    INT8_KERNELS = "int8 kernels"     # onnxruntime's own int8 kernels vs int (a measurement)
    ADC = "adc"                       # int vs ideal ACiM
    NOISE = "noise"                   # ideal vs noisy ACiM


@dataclass(frozen=True)
class Rung:
    """One rung: ``values`` against ``reference``, with every metric and the verdict."""

    kind: RungKind
    name: str
    reference: str
    must_hold: bool
    passed: bool
    criterion: str
    metric: str
    score: float | None
    score_worst: float | None
    sqnr_db: float
    agreement: float
    cosine: float
    accuracy: float | None
    reference_accuracy: float | None
    max_abs_diff: float
    max_rel_diff: float
    bit_identical: bool
    tolerance: float | None = None
    lossless_adc: bool | None = None

    def as_dict(self) -> dict:
        out = asdict(self)
        out["kind"] = self.kind.value
        for name in ("tolerance", "lossless_adc"):
            if out[name] is None:
                del out[name]
        return out


@dataclass(frozen=True)
class LayerSqnr:
    """One on-chip layer's output against ``int``: noisy and ideal SQNR, inputs clipped; and
    why it fails (asimc.runtime.executor.ArrayStats): the input range it uses and the array's
    own SQNR on its inputs (noisy and ideal)."""

    name: str
    op_type: str
    sqnr_db: float
    ideal_sqnr_db: float
    clipped_inputs: float
    input_range_used: float | None = None
    array_sqnr_db: float | None = None
    ideal_array_sqnr_db: float | None = None


@dataclass(frozen=True)
class GoldenResult:
    model: str
    chip: str
    data: str
    samples: int
    seed: int
    batch_size: int
    metric: str
    passed: bool
    rungs: tuple[Rung, ...]
    layers: tuple[LayerSqnr, ...]
    fp32_accuracy: float | None
    quantised_model: bool
    warnings: tuple[str, ...]

    def rung(self, kind: RungKind) -> Rung:
        return next(r for r in self.rungs if r.kind is kind)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rungs"] = [r.as_dict() for r in self.rungs]
        out["layers"] = [asdict(l) for l in self.layers]
        out["warnings"] = list(self.warnings)
        return out


def _lossless(program: Program) -> bool:
    for layer in program.layers.values():
        if not layer.on_chip:
            continue
        plan = ConversionPlan(layer.chip)
        if plan.weight_parallel or not all(plan.is_lossless(c) for c in plan.cycles):
            return False
    return True


def _rung(kind: RungKind, name: str, values, reference, labels, *, must_hold: bool,
          exact: bool, min_agreement: float, reference_name: str, metric: str,
          tolerance: float | None = None) -> Rung:
    """``values`` against ``reference``: pass when bit-identical (``exact``), within
    ``tolerance``, or when the outputs agree at ``min_agreement`` or more: in top-1 for a
    top-1 metric (top1, agreement), else in the mean cosine."""
    top1_metric = metric in ("top1", "agreement")
    values_scores, = score_run(ChipRun((0,), (values,), {}), reference, labels)
    reference_scores, = score_run(ChipRun((0,), (reference,), {}), reference, labels)
    diff, rel = max_differences(values, reference)
    identical = bool(np.array_equal(values, reference))
    if exact:
        passed, criterion = identical, "bit-identical"
    elif tolerance is not None:
        passed, criterion = diff <= tolerance, f"max |diff| <= {tolerance:.3g}"
    elif top1_metric:
        passed = values_scores.agreement >= min_agreement
        criterion = f"top-1 agreement >= {min_agreement:g}"
    else:
        passed = values_scores.cosine >= min_agreement
        criterion = f"cosine >= {min_agreement:g}"
    return Rung(kind, name, reference_name, must_hold, passed, criterion, metric,
                values_scores.value(metric),
                values_scores.cosine_worst if metric == "cosine" else None,
                values_scores.sqnr_db, values_scores.agreement, values_scores.cosine,
                values_scores.accuracy, reference_scores.accuracy, diff, rel, identical,
                tolerance)


def golden_ladder(model, program: Program, data, *, limit: int | None = None, seed: int = 0,
                  batch_size: int = DEFAULT_BATCH, min_agreement: float = 0.9,
                  device: str = "cpu", on_step=None, dataset_options=None,
                  metric: str | None = None) -> GoldenResult:
    """Run the ladder for ``program`` (compiled from ``model``) on ``data``. ``metric``: the
    score printed for every rung (a name of ``asimc.metrics.METRICS``; default top1 for
    labelled class scores, else cosine)."""
    step = on_step or (lambda finished, upcoming: None)
    check_batch_size(batch_size)
    if isinstance(min_agreement, bool) or not isinstance(min_agreement, (int, float)) \
            or not 0.0 <= min_agreement <= 1.0:
        raise UsageError(f"min_agreement is a fraction from 0 to 1, not {min_agreement!r}")
    eval_data = load_eval_data(program, data, limit=limit, **(dataset_options or {}))
    labels = eval_data.labels
    quantised = any(layer.qdq is not None for layer in program.layers.values())
    # A QDQ model's reference is its graph as written (QuantizeLinear/DequantizeLinear in
    # float, as ONNX defines them); onnxruntime's int8 kernels are a measured extra rung.
    fp32 = run_onnxruntime(model, eval_data, batch_size, optimize=not quantised)
    metric = resolve_metric(metric, fp32, eval_data)
    int8_kernels = run_onnxruntime(model, eval_data, batch_size) if quantised else None
    step("fp32 onnxruntime", "float")

    def run(target, mode, finished, upcoming):
        result = run_chip(target, eval_data, mode=mode, seeds=(seed,), batch_size=batch_size,
                          taps=mode != "float", device=device)
        step(finished, upcoming)
        return result

    floats = run(program, "float", "float", "int").outputs[0]
    int_run = run(program, "int", "int", "ideal acim")
    ideal_run = run(without_noise(program), "acim", "ideal acim", "noisy acim")
    noisy_run = run(program, "acim", "noisy acim", None)
    ints, ideal, noisy = int_run.outputs[0], ideal_run.outputs[0], noisy_run.outputs[0]

    def rung(kind, name, values, reference, reference_name, **how):
        how.setdefault("min_agreement", min_agreement)
        return _rung(kind, name, values, reference, labels, reference_name=reference_name,
                     metric=metric, **how)

    lossless = _lossless(program)
    if quantised:
        first = rung(RungKind.QDQ_FLOAT, "onnxruntime qdq (as written) vs float", floats, fp32,
                     "onnxruntime qdq", must_hold=True, exact=False,
                     min_agreement=QDQ_MIN_AGREEMENT)
        second = [
            rung(RungKind.QDQ_INT, "onnxruntime qdq (as written) vs int", ints, fp32,
                 "onnxruntime qdq", must_hold=True, exact=False,
                 min_agreement=QDQ_MIN_AGREEMENT),
            rung(RungKind.INT8_KERNELS, "onnxruntime int8 kernels vs int", ints, int8_kernels,
                 "onnxruntime int8", must_hold=False, exact=False)]
    else:
        tolerance = FLOAT_TOLERANCE * (1.0 + float(np.abs(fp32).max(initial=0.0)))
        first = rung(RungKind.IMPORT, "fp32 onnxruntime vs float", floats, fp32, "fp32",
                     must_hold=True, exact=False, tolerance=tolerance)
        second = [rung(RungKind.QUANTISATION, "float vs int", ints, floats, "float",
                       must_hold=False, exact=False)]
    adc = rung(RungKind.ADC, "int vs ideal acim", ideal, ints, "int", must_hold=lossless,
               exact=lossless)
    rungs = (first, *second, replace(adc, lossless_adc=lossless),
             rung(RungKind.NOISE, "ideal vs noisy acim", noisy, ideal, "ideal acim",
                  must_hold=False, exact=False))
    layers = []
    for name, reference in int_run.taps[0].items():
        count, total = int_run.clipped.get(name, (0, 0))
        used, array, ideal_array = (run.stats.get(name)
                                    for run in (int_run, noisy_run, ideal_run))
        layers.append(LayerSqnr(name, program.layers[name].op_type,
                                sqnr_db(noisy_run.taps[0][name], reference),
                                sqnr_db(ideal_run.taps[0][name], reference),
                                count / total if total else 0.0,
                                used.range_used if used else None,
                                array.sqnr_db if array else None,
                                ideal_array.sqnr_db if ideal_array else None))
    return GoldenResult(
        model=str(model) if not isinstance(model, bytes) else "(bytes)",
        chip=program.chip.name, data=eval_data.description, samples=eval_data.size,
        seed=seed, batch_size=batch_size, metric=metric,
        passed=all(r.passed for r in rungs if r.must_hold), rungs=rungs, layers=tuple(layers),
        fp32_accuracy=rungs[0].reference_accuracy, quantised_model=quantised,
        warnings=(*program.report.get("warnings", ()),           # globs matching nothing
                  *clipping_warnings(program, int_run.clipped)))
