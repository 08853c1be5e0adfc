"""Chip-to-chip comparison: one model, one data set, several chips, one table.

Rows: the FP32 model (onnxruntime), the ``int`` baseline of every distinct precision, then one
row per chip with accuracy mean and spread over noise seeds, top-1 agreement and output SQNR
against FP32, and the chip's cost per inference (conversions, cycles, energy, TOPS/W).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path

from .compiler import compile as compile_model
from .compiler import precision
from .errors import UsageError
from .evaluate import (DEFAULT_BATCH, accuracy, agreement, check_batch_size, check_labels,
                       load_eval_data, run_onnxruntime, run_program, sqnr_db)
from .runtime.executor import clipping_warnings

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
    return any(plan.has_noise or plan.has_static_mismatch for plan in plans)


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _std(values):
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else 0.0 if values else None


def compare_chips(model, chips, data, *, seeds: int = 3, limit: int | None = None,
                  batch_size: int = DEFAULT_BATCH, digital=(), mapping=None, calibrate=None,
                  device: str = "cpu", on_step=None, dataset_options=None,
                  input_shape=None) -> list[dict]:
    """The comparison rows (see ROW_FIELDS). ``chips``: ChipSpecs or chip file paths.

    Each ``int`` row lists the chips it is the baseline of (``chips``); each chip row carries
    the warnings its runs raised (``warnings``, e.g. clipped negative inputs, as ``golden``
    prints them). Costs come from real shapes: a model with symbolic dimensions is compiled
    again with the data's sample shape (or ``input_shape``).
    ``on_step(finished, upcoming)`` is called after each of ``steps_for(chips, seeds)`` steps.
    """
    step = on_step or (lambda finished, upcoming: None)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UsageError(f"seeds is the number of noise seeds per chip, >= 1, not {seeds!r}")
    check_batch_size(batch_size)
    if not chips:
        raise UsageError("give at least one chip to compare")

    def build(chip, shape):
        return compile_model(model, chip, digital=digital, mapping=mapping,
                             calibrate=calibrate, input_shape=shape)

    programs = [build(chip, input_shape) for chip in chips]
    eval_data = load_eval_data(programs[0], data, limit=limit, **(dataset_options or {}))
    if not all(p.report["total"].get("costs_known", True) for p in programs):
        shapes = {name: tuple(v.shape[1:]) for name, v in eval_data.inputs.items()}
        programs = [build(chip, shapes) for chip in chips]
    labels = eval_data.labels
    fp32 = run_onnxruntime(model, eval_data, batch_size)
    check_labels(labels, fp32, eval_data.description)
    names = [p.chip.name for p in programs]
    step("compile, data and fp32 onnxruntime", f"{names[0]}: int")
    rows = [{"chip": "fp32", "precision": "float32", "accuracy_mean": accuracy(fp32, labels),
             "accuracy_std": 0.0, "agreement": 1.0, "sqnr_db": math.inf, "seeds": 0,
             "source": "onnxruntime"}]
    int_rows: dict[tuple, dict] = {}
    int_clipped: dict[tuple, dict] = {}
    chip_rows = []
    for index, (chip, program) in enumerate(zip(chips, programs)):
        name = program.chip.name
        key = _quant_key(program)
        if key not in int_rows:
            run = run_program(program, eval_data, mode="int", batch_size=batch_size,
                              device=device)
            ints = run.output
            int_clipped[key] = run.clipped
            int_rows[key] = {"chip": "int", "precision": precision(program.chip),
                             "accuracy_mean": accuracy(ints, labels), "accuracy_std": 0.0,
                             "agreement": agreement(ints, fp32), "sqnr_db": sqnr_db(ints, fp32),
                             "seeds": 0, "source": f"quantised like {name}", "chips": []}
        int_rows[key]["chips"].append(name)
        step(f"{name}: int", f"{name}: seed 0")
        runs = []
        for seed in range(seeds):
            if seed and not _draws_random_numbers(program):
                runs.append(runs[0])         # nothing random on this chip: every seed is seed 0
            else:
                runs.append(run_program(program, eval_data, mode="acim", seed=seed,
                                        batch_size=batch_size, device=device).output)
            upcoming = f"{name}: seed {seed + 1}" if seed + 1 < seeds else \
                (f"{names[index + 1]}: int" if index + 1 < len(names) else None)
            step(f"{name}: seed {seed}", upcoming)
        total = program.report["total"]
        chip_rows.append({
            "chip": name, "precision": precision(program.chip),
            "accuracy_mean": _mean([accuracy(r, labels) for r in runs]),
            "accuracy_std": _std([accuracy(r, labels) for r in runs]),
            "agreement": _mean([agreement(r, fp32) for r in runs]),
            "sqnr_db": _mean([sqnr_db(r, fp32) for r in runs]),
            "adc_conversions": total["adc_conversions"], "cycles": total["cycles"],
            "energy_j": total["energy_j"], "tops_per_w": total.get("tops_per_w"),
            "seeds": seeds,
            "source": str(chip) if isinstance(chip, (str, Path)) else "",
            "energy_figures": program.chip.energy.mac is not None,
            "warnings": [*program.report.get("warnings", ()),
                         *_repeated_chip(index, chips, programs),
                         *clipping_warnings(program, int_clipped[key])],
        })
    return rows + list(int_rows.values()) + chip_rows


def _repeated_chip(index: int, chips, programs) -> list[str]:
    """A chip given twice (the same settings, whatever its file or name) only repeats a row."""
    def settings(program):
        return replace(program.chip, name="", description="", source="")
    for earlier in range(index):
        if settings(programs[earlier]) == settings(programs[index]):
            given = chips[earlier] if isinstance(chips[earlier], (str, Path)) \
                else programs[earlier].chip.name
            return [f"the same chip as {given} (given twice), so the same numbers"]
    return []


def steps_for(chips, seeds: int) -> int:
    """Progress steps compare_chips reports: fp32, then per chip one int and one per seed."""
    return 1 + len(chips) * (1 + seeds)
