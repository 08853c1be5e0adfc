"""The golden-model ladder (README.md, "The golden-model ladder"): each rung proves one step before the next.

1. FP32 ONNX (onnxruntime) vs asimc ``float``: the import and the digital ops are right.
2. ``float`` vs ``int``: what quantisation costs.
3. ``int`` vs ideal ACiM (the chip with its noise off): bit-identical when every conversion is
   lossless, otherwise the measured ADC loss.
4. ideal vs noisy ACiM: what the chip's noise costs.

Rungs 1 and 3-when-lossless must hold (they are exact claims); the others are measurements that
pass when top-1 agreement stays above ``min_agreement``. Then a per-layer table: the SQNR of
every on-chip layer's output against ``int``, ideal and noisy, to show which layer loses most.
"""
from __future__ import annotations

import numpy as np

from .chip.conversions import ConversionPlan
from .errors import UsageError
from .evaluate import (DEFAULT_BATCH, accuracy, agreement, check_batch_size, check_labels,
                       load_eval_data, max_differences, run_onnxruntime, run_program, sqnr_db,
                       without_noise)
from .program import Program
from .runtime.executor import clipping_warnings

FLOAT_TOLERANCE = 1e-4     # |float - onnxruntime| <= tol * (1 + max |onnxruntime|)
# A QDQ model against onnxruntime running its graph as written: both compute the same integers,
# but the float rounding of a sum can tip a value within ~1e-6 of a half step to the other side
# of a QuantizeLinear, moving that activation one step; such flips are rare (about 1e-5 of the
# elements) and move a few logits by a few output steps, so the claim is top-1 agreement.
QDQ_MIN_AGREEMENT = 0.99


def _lossless(program: Program) -> bool:
    for layer in program.layers.values():
        if not layer.on_chip:
            continue
        plan = ConversionPlan(layer.chip)
        if plan.weight_parallel or not all(plan.is_lossless(c) for c in plan.cycles):
            return False
    return True


def _compare(name: str, values, reference, labels, *, must_hold: bool, exact: bool,
             min_agreement: float, reference_name: str) -> dict:
    rung = {
        "name": name, "reference": reference_name, "must_hold": must_hold,
        "sqnr_db": sqnr_db(values, reference), "agreement": agreement(values, reference),
        "accuracy": accuracy(values, labels), "reference_accuracy": accuracy(reference, labels),
    }
    rung["max_abs_diff"], rung["max_rel_diff"] = max_differences(values, reference)
    rung["bit_identical"] = bool(np.array_equal(values, reference))
    if exact:
        rung["passed"] = rung["bit_identical"]
        rung["criterion"] = "bit-identical"
    else:
        rung["passed"] = rung["agreement"] >= min_agreement
        rung["criterion"] = f"top-1 agreement >= {min_agreement:g}"
    return rung


def golden_ladder(model, program: Program, data, *, limit: int | None = None, seed: int = 0,
                  batch_size: int = DEFAULT_BATCH, min_agreement: float = 0.9,
                  device: str = "cpu", on_step=None, dataset_options=None) -> dict:
    """Run the ladder for ``program`` (compiled from ``model``) on ``data``."""
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
    int8_kernels = run_onnxruntime(model, eval_data, batch_size) if quantised else None
    check_labels(labels, fp32, eval_data.description)
    step("fp32 onnxruntime", "float")
    floats = run_program(program, eval_data, mode="float", batch_size=batch_size,
                         device=device).output
    step("float", "int")
    int_run = run_program(program, eval_data, mode="int", batch_size=batch_size, taps=True,
                          device=device)
    ints, int_taps = int_run.output, int_run.taps
    step("int", "ideal acim")
    ideal_run = run_program(without_noise(program), eval_data, mode="acim", seed=seed,
                            batch_size=batch_size, taps=True, device=device)
    ideal, ideal_taps = ideal_run.output, ideal_run.taps
    step("ideal acim", "noisy acim")
    noisy_run = run_program(program, eval_data, mode="acim", seed=seed,
                            batch_size=batch_size, taps=True, device=device)
    noisy, noisy_taps = noisy_run.output, noisy_run.taps
    step("noisy acim", None)

    diff, rel = max_differences(floats, fp32)
    tolerance = FLOAT_TOLERANCE * (1.0 + float(np.abs(fp32).max(initial=0.0)))
    first = {"name": "fp32 onnxruntime vs float", "reference": "fp32", "must_hold": True,
             "max_abs_diff": diff, "max_rel_diff": rel, "tolerance": tolerance,
             "agreement": agreement(floats, fp32), "accuracy": accuracy(floats, labels),
             "reference_accuracy": accuracy(fp32, labels), "sqnr_db": sqnr_db(floats, fp32),
             "passed": diff <= tolerance, "criterion": f"max |diff| <= {tolerance:.3g}"}
    lossless = _lossless(program)
    if quantised:
        first = _compare("onnxruntime qdq (as written) vs float", floats, fp32, labels,
                         must_hold=True, exact=False, min_agreement=QDQ_MIN_AGREEMENT,
                         reference_name="onnxruntime qdq")
        second = [
            _compare("onnxruntime qdq (as written) vs int", ints, fp32, labels, must_hold=True,
                     exact=False, min_agreement=QDQ_MIN_AGREEMENT,
                     reference_name="onnxruntime qdq"),
            _compare("onnxruntime int8 kernels vs int", ints, int8_kernels, labels,
                     must_hold=False, exact=False, min_agreement=min_agreement,
                     reference_name="onnxruntime int8")]
    else:
        second = [_compare("float vs int", ints, floats, labels, must_hold=False, exact=False,
                           min_agreement=min_agreement, reference_name="float")]
    rungs = [
        first,
        *second,
        _compare("int vs ideal acim", ideal, ints, labels, must_hold=lossless, exact=lossless,
                 min_agreement=min_agreement, reference_name="int"),
        _compare("ideal vs noisy acim", noisy, ideal, labels, must_hold=False, exact=False,
                 min_agreement=min_agreement, reference_name="ideal acim"),
    ]
    rungs[-2]["lossless_adc"] = lossless
    layers = []
    for name, reference in int_taps.items():
        count, total = int_run.clipped.get(name, (0, 0))
        layers.append({"name": name, "op_type": program.layers[name].op_type,
                       "sqnr_db": sqnr_db(noisy_taps[name], reference),
                       "ideal_sqnr_db": sqnr_db(ideal_taps[name], reference),
                       "clipped_inputs": count / total if total else 0.0})
    return {
        "model": str(model) if not isinstance(model, bytes) else "(bytes)",
        "chip": program.chip.name, "data": eval_data.description, "samples": eval_data.size,
        "seed": seed, "batch_size": batch_size,
        "passed": all(r["passed"] for r in rungs if r["must_hold"]),
        "rungs": rungs, "layers": layers,
        "fp32_accuracy": accuracy(fp32, labels),
        "quantised_model": quantised,
        "warnings": clipping_warnings(program, int_run.clipped),
    }
