"""Chip-to-chip comparison: one model, one data set, several chips, one table.

Rows: the FP32 model (onnxruntime), the ``int`` baseline of every distinct quantisation, then
one row per chip with its metric's mean and spread over noise seeds (and accuracy, top-1
agreement and output SQNR against FP32), and the chip's cost per inference (conversions,
cycles, energy, TOPS/W). Each row is an ``asimc.evaluation.ChipResult``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .compiler import compile as compile_model
from .errors import UsageError
from .passes.smooth import DEFAULT_ALPHA
from .evaluate import DEFAULT_BATCH, check_batch_size, load_eval_data, run_onnxruntime
from .evaluation import (ChipResult, CostTotals, RowKind, evaluate_chip, quantisation_key, reference_result,
                         resolve_metric)
from .metrics import get_metric

ROW_FIELDS = ("chip", "precision", "metric", "score_mean", "score_std", "accuracy_mean",
              "accuracy_std", "agreement", "sqnr_db", "adc_conversions", "cycles", "energy_j",
              "tops_per_w", "seeds", "source")


@dataclass(frozen=True)
class Comparison:
    """The rows of a comparison: ``fp32``, the ``int`` baselines, the chips (in order)."""

    metric: str
    fp32: ChipResult
    baselines: tuple[ChipResult, ...]
    chips: tuple[ChipResult, ...]
    samples: int
    data: str

    @property
    def rows(self) -> tuple[ChipResult, ...]:
        return (self.fp32, *self.baselines, *self.chips)

    def baseline(self, chip: str) -> ChipResult | None:
        """The ``int`` row that is the baseline of ``chip``."""
        return next((b for b in self.baselines if chip in b.baseline_of), None)

    def warnings(self) -> list[str]:
        """Each warning once, with the chips that raised it: ``chip-a, chip-b: warning``."""
        chips: dict[str, list[str]] = {}
        for row in self.chips:
            for warning in row.warnings:
                chips.setdefault(warning, []).append(row.name)
        return [f"{', '.join(names)}: {warning}" for warning, names in chips.items()]


def compare_chips(model, chips, data, *, seeds: int = 3, limit: int | None = None,
                  batch_size: int = DEFAULT_BATCH, digital=(), mapping=None, input_scales=None,
                  smooth=None, smooth_alpha: float = DEFAULT_ALPHA, device: str = "cpu",
                  on_step=None, dataset_options=None, input_shape=None,
                  metric: str | None = None) -> Comparison:
    """Compare ``chips`` (ChipSpecs or chip file paths) on ``model`` and ``data``.

    Each ``int`` row names the chips it is the baseline of; each chip row carries the warnings
    its runs raised (e.g. clipped negative inputs, as ``golden`` prints them). Costs come from
    real shapes: a model with symbolic dimensions is compiled again with the data's sample
    shape (or ``input_shape``). ``metric``: a name of ``asimc.metrics.METRICS`` (default: top1
    for labelled class scores, else cosine).
    ``digital`` ... ``smooth_alpha``: as ``asimc.compile`` takes them.
    ``on_step(finished, upcoming)`` is called after each of ``steps_for(chips, seeds)`` steps.
    """
    step = on_step or (lambda finished, upcoming: None)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UsageError(f"seeds is the number of noise seeds per chip, >= 1, not {seeds!r}")
    check_batch_size(batch_size)
    if metric is not None:
        get_metric(metric)
    if not chips:
        raise UsageError("give at least one chip to compare")

    def build(chip, shape):
        return compile_model(model, chip, digital=digital, mapping=mapping,
                             input_scales=input_scales, smooth=smooth,
                             smooth_alpha=smooth_alpha, input_shape=shape)

    programs = [build(chip, input_shape) for chip in chips]
    eval_data = load_eval_data(programs[0], data, limit=limit, **(dataset_options or {}))
    if not all(CostTotals.of(p).known for p in programs):
        shapes = {name: tuple(v.shape[1:]) for name, v in eval_data.inputs.items()}
        programs = [build(chip, shapes) for chip in chips]
    fp32 = run_onnxruntime(model, eval_data, batch_size)
    metric = resolve_metric(metric, fp32, eval_data)
    names = [p.chip.name for p in programs]
    step("compile, data and fp32 onnxruntime", f"{names[0]}: int")
    baselines: dict[tuple, ChipResult] = {}
    int_runs: dict[tuple, ChipResult] = {}   # their clipping warnings go to the chips' rows
    rows = []
    for index, (chip, program) in enumerate(zip(chips, programs)):
        name = program.chip.name
        key = quantisation_key(program)
        if key not in baselines:
            int_runs[key] = evaluate_chip(program, eval_data, reference=fp32, mode="int",
                                          metric=metric, batch_size=batch_size, device=device,
                                          name="int", kind=RowKind.INT)
            baselines[key] = replace(int_runs[key], costs=None, warnings=(),
                                     source=f"quantised like {name}")
        baselines[key] = replace(baselines[key],
                                 baseline_of=baselines[key].baseline_of + (name,))
        step(f"{name}: int", f"{name}: seed 0")

        def seed_done(seed, ran, index=index, name=name):
            upcoming = f"{name}: seed {seed + 1}" if seed + 1 < seeds else \
                (f"{names[index + 1]}: int" if index + 1 < len(names) else None)
            step(f"{name}: seed {seed}", upcoming)

        result = evaluate_chip(program, eval_data, reference=fp32, seeds=seeds, metric=metric,
                               batch_size=batch_size, device=device, on_seed=seed_done)
        # The clipping happens in the quantiser, the same in every mode: the int run's.
        warnings = (*program.report.get("warnings", ()), *_repeated_chip(index, chips, programs),
                    *int_runs[key].warnings)
        rows.append(replace(result, source=str(chip) if isinstance(chip, (str, Path)) else "",
                            warnings=warnings, clipped=int_runs[key].clipped))
    return Comparison(metric, reference_result(fp32, eval_data.labels, metric),
                      tuple(baselines.values()), tuple(rows), eval_data.size,
                      eval_data.description)


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
