"""Chip-to-chip comparison: one model, one data set, several chips, one table.

Rows: the FP32 model (onnxruntime), the ``int`` baseline of every distinct precision, then one
row per chip with accuracy mean and spread over noise seeds, top-1 agreement and output SQNR
against FP32, and the chip's cost per inference (conversions, cycles, energy, TOPS/W).
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

from .compiler import compile as compile_model
from .compiler import precision
from .evaluate import (DEFAULT_BATCH, accuracy, agreement, load_eval_data, run_onnxruntime,
                       run_program, sqnr_db)

ROW_FIELDS = ("chip", "precision", "accuracy_mean", "accuracy_std", "agreement", "sqnr_db",
              "adc_conversions", "cycles", "energy_j", "tops_per_w", "seeds", "source")


def _quant_key(program) -> tuple:
    """What the int baseline depends on: each on-chip layer's bits, signedness, scales."""
    return tuple((name, l.chip.weight.bits, l.chip.input.bits, l.chip.input.signed,
                  l.chip.quant.weight, l.chip.quant.input)
                 for name, l in program.layers.items() if l.on_chip)


def _draws_random_numbers(program) -> bool:
    """Whether the seed changes anything: noise or cell mismatch on some on-chip layer."""
    from .chip.conversions import ConversionPlan
    plans = [ConversionPlan(l.chip) for l in program.layers.values() if l.on_chip]
    return any(plan.has_noise or plan.cell_sigma > 0 for plan in plans)


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _std(values):
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else 0.0 if values else None


def compare_chips(model, chips, data, *, seeds: int = 3, limit: int | None = None,
                  batch_size: int = DEFAULT_BATCH, digital=(), mapping=None, calibrate=None,
                  device: str = "cpu", on_step=None, dataset_options=None) -> list[dict]:
    """The comparison rows (see ROW_FIELDS). ``chips``: ChipSpecs or chip file paths."""
    step = on_step or (lambda: None)
    programs = [compile_model(model, chip, digital=digital, mapping=mapping,
                              calibrate=calibrate) for chip in chips]
    eval_data = load_eval_data(programs[0], data, limit=limit, **(dataset_options or {}))
    labels = eval_data.labels
    fp32 = run_onnxruntime(model, eval_data, batch_size)
    step()
    rows = [{"chip": "fp32", "precision": "float32", "accuracy_mean": accuracy(fp32, labels),
             "accuracy_std": 0.0, "agreement": 1.0, "sqnr_db": math.inf, "seeds": 0,
             "source": "onnxruntime"}]
    int_rows: dict[tuple, dict] = {}
    chip_rows = []
    for chip, program in zip(chips, programs):
        key = _quant_key(program)
        if key not in int_rows:
            ints = run_program(program, eval_data, mode="int", batch_size=batch_size,
                               device=device).output
            int_rows[key] = {"chip": "int", "precision": precision(program.chip),
                             "accuracy_mean": accuracy(ints, labels), "accuracy_std": 0.0,
                             "agreement": agreement(ints, fp32), "sqnr_db": sqnr_db(ints, fp32),
                             "seeds": 0, "source": f"quantised like {program.chip.name}"}
        step()
        runs = []
        for seed in range(seeds):
            if seed and not _draws_random_numbers(program):
                runs.append(runs[0])         # nothing random on this chip: every seed is seed 0
            else:
                runs.append(run_program(program, eval_data, mode="acim", seed=seed,
                                        batch_size=batch_size, device=device).output)
            step()
        total = program.report["total"]
        chip_rows.append({
            "chip": program.chip.name, "precision": precision(program.chip),
            "accuracy_mean": _mean([accuracy(r, labels) for r in runs]),
            "accuracy_std": _std([accuracy(r, labels) for r in runs]),
            "agreement": _mean([agreement(r, fp32) for r in runs]),
            "sqnr_db": _mean([sqnr_db(r, fp32) for r in runs]),
            "adc_conversions": total["adc_conversions"], "cycles": total["cycles"],
            "energy_j": total["energy_j"], "tops_per_w": total.get("tops_per_w"),
            "seeds": seeds,
            "source": str(chip) if isinstance(chip, (str, Path)) else "",
        })
    return rows + list(int_rows.values()) + chip_rows


def steps_for(chips, seeds: int) -> int:
    """Progress steps compare_chips reports: fp32, then per chip one int and one per seed."""
    return 1 + len(chips) * (1 + seeds)
