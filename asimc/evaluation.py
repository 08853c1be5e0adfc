"""One way to evaluate a chip: run a program over data for some noise seeds and score it.

``run_chip`` runs (raw outputs per seed, and how many inputs each layer's quantiser clipped);
``score_run`` scores a run with every metric of ``asimc.metrics`` against the labels and the
FP32 outputs; ``evaluate_chip`` does both and returns a ``ChipResult``. ``asimc compare``,
``golden``, ``sweep``, ``finetune`` and ``calibrate`` all evaluate through these, and hand on the
frozen results below; tables and JSON are made from them only at the edges (``asimc/commands``,
the sweep store).

From Python::

    result = asimc.evaluate_chip(program, "digits", seeds=3, metric="cosine")
    result.score_mean, result.score_std, result.score_worst, result.costs.energy_j
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

import numpy as np

from .chip.conversions import ConversionPlan, precision
from .errors import UsageError
from .evaluate import (DEFAULT_BATCH, EvalData, check_batch_size, check_labels, load_eval_data,
                       run_program)
from .metrics import METRICS, choose_metric
from .program import Program


class RowKind(str, Enum):
    """What a row of a comparison is: the FP32 model, an ``int`` baseline or a chip."""

    FP32 = "fp32"
    INT = "int"
    CHIP = "chip"


@dataclass(frozen=True)
class CostTotals:
    """A program's cost per inference (None: not known for this model's shapes, or no energy
    figures in the chip file)."""

    macs: int | None
    adc_conversions: int | None
    cycles: int | None
    energy_j: float | None
    tops_per_w: float | None
    known: bool                   # every on-chip layer's cost is known (real shapes)
    energy_figures: bool          # the chip file gives energy figures

    @classmethod
    def of(cls, program: Program) -> "CostTotals":
        total = program.report.get("total", {})
        return cls(total.get("macs"), total.get("adc_conversions"), total.get("cycles"),
                   total.get("energy_j"), total.get("tops_per_w"),
                   bool(total.get("costs_known", True)), program.chip.energy.mac is not None)


@dataclass(frozen=True)
class Scores:
    """Every metric of one run (one noise seed) of a model on the data."""

    seed: int
    accuracy: float | None        # top1 (None without labels)
    agreement: float              # top-1 agreement with FP32
    sqnr_db: float
    cosine: float                 # mean over samples
    cosine_worst: float
    mse: float

    def value(self, metric: str) -> float | None:
        """The score of ``metric`` (a name of the registry)."""
        return {"top1": self.accuracy, "agreement": self.agreement, "cosine": self.cosine,
                "sqnr": self.sqnr_db, "mse": self.mse}[metric]


@dataclass(frozen=True)
class ChipRun:
    """A program's first output over the data for each seed, before scoring."""

    seeds: tuple[int, ...]
    outputs: tuple[np.ndarray, ...]
    clipped: Mapping[str, tuple[int, int]]        # layer -> (inputs clipped, inputs)
    taps: tuple[Mapping[str, np.ndarray], ...] = ()   # per seed, when asked for
    # layer -> ArrayStats of the first seed's run (input range used; array SQNR with taps)
    stats: Mapping[str, Any] = field(default_factory=dict)


def _mean(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return values[0] if len(set(values)) == 1 else statistics.fmean(values)


def _std(values):
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else 0.0 if values else None


@dataclass(frozen=True)
class ChipResult:
    """A model evaluated on one chip (or a baseline) over noise seeds.

    ``metric`` is the headline metric (``asimc.metrics``); ``runs`` hold every metric per seed.
    ``baseline_of``: for an ``int`` row, the chips it is the baseline of.
    """

    kind: RowKind
    name: str
    precision: str
    metric: str
    runs: tuple[Scores, ...]
    costs: CostTotals | None = None
    source: str = ""
    baseline_of: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    clipped: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def _over_seeds(self, name: str, spread: bool = False):
        values = [getattr(r, name) for r in self.runs]
        return _std(values) if spread else _mean(values)

    @property
    def seeds(self) -> int:
        return len(self.runs) if self.kind is RowKind.CHIP else 0

    @property
    def accuracy_mean(self) -> float | None:
        return self._over_seeds("accuracy")

    @property
    def accuracy_std(self) -> float | None:
        return self._over_seeds("accuracy", spread=True)

    @property
    def agreement(self) -> float | None:
        return self._over_seeds("agreement")

    @property
    def sqnr_db(self) -> float | None:
        return self._over_seeds("sqnr_db")

    @property
    def score_mean(self) -> float | None:
        return _mean([r.value(self.metric) for r in self.runs])

    @property
    def score_std(self) -> float | None:
        return _std([r.value(self.metric) for r in self.runs])

    @property
    def score_worst(self) -> float | None:
        """The worst sample over all seeds (per-sample metrics: cosine), else None."""
        if self.metric != "cosine":
            return None
        return min(r.cosine_worst for r in self.runs)


def int_precision(chip) -> str:
    """The precision of the ``int`` model quantised like ``chip``: no ADC, no encoding (exact
    integer products), e.g. ``W4 A4u``, with the quantisers when they are not per-tensor."""
    text = f"W{chip.weight.bits} A{chip.input.bits}{'s' if chip.input.signed else 'u'}"
    modes = [f"{kind} {mode}" for kind, mode in (("weights", chip.quant.weight),
                                                  ("inputs", chip.quant.input))
             if mode != "per_tensor"]
    return text + (f" ({', '.join(modes)})" if modes else "")


def quantisation_key(program: Program) -> tuple:
    """What the int baseline depends on: each on-chip layer's bits, signedness and scales."""
    return tuple((name, l.chip.weight.bits, l.chip.input.bits, l.chip.input.signed,
                  l.chip.quant.weight, l.chip.quant.input)
                 for name, l in program.layers.items() if l.on_chip)


def draws_random_numbers(program: Program) -> bool:
    """Whether the seed changes anything: noise or cell mismatch on some on-chip layer."""
    plans = [ConversionPlan(l.chip) for l in program.layers.values() if l.on_chip]
    return any(plan.has_noise or plan.has_static_mismatch for plan in plans)


def _seed_tuple(seeds) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise UsageError(f"seeds is a number of noise seeds >= 1 or a list of seeds, not {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise UsageError(f"seeds is the number of noise seeds, >= 1, not {seeds!r}")
        return tuple(range(int(seeds)))
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise UsageError("give at least one noise seed")
    return seeds


def run_chip(program: Program, data: EvalData, *, mode: str = "acim", seeds=(0,),
             batch_size: int = DEFAULT_BATCH, device: str = "cpu", taps: bool = False,
             on_seed=None, **run_options) -> ChipRun:
    """Run ``program`` over ``data`` once per seed (``mode`` acim) or once (float, int: no
    seed). A chip that draws no random number runs once, every seed reusing that output.
    ``on_seed(seed, ran)`` is called after each seed (``ran``: False when reused);
    ``run_options`` go to ``Program.run`` (kernel, progress)."""
    seeds = _seed_tuple(seeds) if mode == "acim" else (0,)
    random = mode == "acim" and draws_random_numbers(program)
    outputs, tapped, clipped, stats = [], [], {}, {}
    for index, seed in enumerate(seeds):
        reused = bool(index) and not random
        if reused:
            outputs.append(outputs[0])
            if taps:
                tapped.append(tapped[0])
        else:
            run = run_program(program, data, mode=mode, seed=seed, batch_size=batch_size,
                              taps=taps, device=device, **run_options)
            outputs.append(run.output)
            if taps:
                tapped.append(run.taps)
            clipped = clipped or run.clipped
            stats = stats or run.stats
        if on_seed is not None:
            on_seed(seed, not reused)
    return ChipRun(seeds, tuple(outputs), clipped, tuple(tapped), stats)


def score_run(run: ChipRun, reference: np.ndarray, labels: np.ndarray | None
              ) -> tuple[Scores, ...]:
    """Every metric of the registry for every seed's outputs, against ``labels`` (top1, when
    there are labels) and the FP32 ``reference`` (the others)."""
    scores = []
    for seed, output in zip(run.seeds, run.outputs):
        got = {name: metric(output, reference, labels) for name, metric in METRICS.items()
               if labels is not None or not metric.needs_labels}
        scores.append(Scores(
            seed=seed, accuracy=got["top1"].value if "top1" in got else None,
            agreement=got["agreement"].value, sqnr_db=got["sqnr"].value,
            cosine=got["cosine"].value, cosine_worst=got["cosine"].worst,
            mse=got["mse"].value))
    return tuple(scores)


def resolve_metric(metric: str | None, reference: np.ndarray, data: EvalData) -> str:
    """The metric's name (``None``: the default for this model and data), checking labels."""
    check_labels(data.labels, reference, data.description)
    return choose_metric(metric, reference, data.labels, data.description).name


def evaluate_chip(program: Program, data, *, reference: np.ndarray | None = None,
                  mode: str = "acim", seeds=1, metric: str | None = None,
                  batch_size: int = DEFAULT_BATCH, device: str = "cpu", limit: int | None = None,
                  name: str | None = None, kind: RowKind = RowKind.CHIP, on_seed=None,
                  **dataset_options) -> ChipResult:
    """``program`` on ``data`` (an ``EvalData`` or a data spec as on the CLI) over ``seeds``
    (a count or a list), scored with every metric against the labels and ``reference`` (the
    FP32 outputs; default: the program's own ``float`` run). ``metric`` names the headline
    metric (default: top1 for labelled class scores, else cosine)."""
    check_batch_size(batch_size)
    if mode not in ("acim", "int", "float"):
        raise UsageError(f"mode is acim, int or float, not {mode!r}")
    if not isinstance(data, EvalData):
        data = load_eval_data(program, data, limit=limit, **dataset_options)
    if reference is None:
        reference = run_program(program, data, mode="float", batch_size=batch_size,
                                device=device).output
    chosen = resolve_metric(metric, reference, data)
    run = run_chip(program, data, mode=mode, seeds=seeds, batch_size=batch_size, device=device,
                   on_seed=on_seed)
    from .runtime.executor import clipping_warnings
    return ChipResult(
        kind=kind, name=name or program.chip.name,
        precision=int_precision(program.chip) if mode == "int" else precision(program.chip),
        metric=chosen, runs=score_run(run, reference, data.labels),
        costs=CostTotals.of(program), warnings=tuple(clipping_warnings(program, run.clipped)),
        clipped=dict(run.clipped))


def reference_result(reference: np.ndarray, labels: np.ndarray | None, metric: str,
                     source: str = "onnxruntime") -> ChipResult:
    """The FP32 row: the reference scored against itself (agreement 1, SQNR exact)."""
    run = ChipRun((0,), (reference,), {})
    return ChipResult(RowKind.FP32, "fp32", "float32", metric, score_run(run, reference, labels),
                      source=source)

