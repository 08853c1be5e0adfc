"""Evaluating one point in a worker: compile the point's chip, run it for each seed, measure.

The same steps as ``asimc compare`` (asimc.compare, asimc.evaluate): the FP32 model under
onnxruntime is the reference, the ``int`` baseline is the same program with exact integer
products, and each seed is one noisy ACiM run. A worker keeps one ``Evaluator`` per sweep
context, so the model's data and the FP32 outputs are loaded once per worker, not per point.
Workers only compute and return plain dicts; the driver alone writes the database.
"""
from __future__ import annotations

import hashlib
import os
import time
import traceback
from dataclasses import dataclass

from ..errors import AsimcError

# Used by the tests only: every ACiM evaluation appends "point seed" to this file, so a test
# can prove that a resumed sweep computes each missing row exactly once.
EVAL_LOG_ENV = "ASIMC_SWEEP_EVAL_LOG"


@dataclass(frozen=True)
class Context:
    """What every point of one sweep shares: the model, the data, the run settings."""

    model: str                     # absolute path
    data: str
    limit: int | None = None
    batch_size: int = 256
    dataset_options: tuple = ()    # sorted (name, value) pairs for asimc.data.load_dataset
    digital: tuple = ()
    mapping: str | None = None
    calibrate: str | None = None
    device: str = "cpu"

    def identity(self, model_hash: str) -> str:
        """The part of every row's key that is not the chip or the seed (device excluded:
        every device gives the same numbers)."""
        from ..version import NUMERIC_MODEL_VERSION
        parts = [model_hash, self.data, str(self.limit), str(self.batch_size),
                 repr(self.dataset_options), repr(self.digital), str(self.mapping),
                 str(self.calibrate), f"numeric-model-{NUMERIC_MODEL_VERSION}"]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Task:
    point: int
    chip_text: str
    seeds: tuple[int, ...]
    label: str = ""                # the point's params, for progress lines


def file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Evaluator:
    """One worker's state for one context: data, FP32 outputs and int baselines, loaded once."""

    def __init__(self, context: Context):
        self.context = context
        self.data = None
        self.fp32 = None
        self.fp32_accuracy = None
        self.ints: dict[tuple, dict] = {}
        self.timings = {}            # this task's seconds in each stage

    def _ensure_data(self, program) -> None:
        if self.data is not None:
            return
        from ..evaluate import accuracy, load_eval_data, run_onnxruntime
        start = time.perf_counter()
        c = self.context
        self.data = load_eval_data(program, c.data, limit=c.limit, **dict(c.dataset_options))
        self.fp32 = run_onnxruntime(c.model, self.data, c.batch_size)
        self.fp32_accuracy = accuracy(self.fp32, self.data.labels)
        self.timings["data"] = time.perf_counter() - start

    def evaluate(self, task: Task) -> dict:
        """{point, results: one per seed, costs, int, fp32, timings}; never raises for a bad
        point: a point that fails is returned with status ``failed`` and the message."""
        started = time.perf_counter()
        self.timings = {"compile": 0.0, "data": 0.0, "execution": 0.0}
        try:
            return self._evaluate(task)
        except Exception as error:  # a failing point must not stop the sweep
            if isinstance(error, AsimcError):
                message = str(error)
            else:
                message = f"{type(error).__name__}: {error}"
                if os.environ.get("ASIMC_DEBUG"):
                    message += "\n" + traceback.format_exc()
            seconds = time.perf_counter() - started
            return {"point": task.point, "status": "failed", "message": message,
                    "results": [{"seed": s, "status": "failed", "message": message,
                                 "seconds": seconds} for s in task.seeds]}

    def _evaluate(self, task: Task) -> dict:
        from ..chip import parse_chip
        from ..compare import _draws_random_numbers, _quant_key
        from ..compiler import compile as compile_model
        from ..compiler import precision
        from ..evaluate import accuracy, agreement, run_program, sqnr_db
        c = self.context
        start = time.perf_counter()
        chip = parse_chip(task.chip_text, filename=f"<point {task.point}>")
        program = compile_model(c.model, chip, digital=c.digital, mapping=c.mapping,
                                calibrate=c.calibrate)
        self.timings["compile"] = time.perf_counter() - start
        self._ensure_data(program)
        labels = self.data.labels
        key = _quant_key(program)
        start = time.perf_counter()
        if key not in self.ints:
            ints = run_program(program, self.data, mode="int", batch_size=c.batch_size,
                               device=c.device).output
            self.ints[key] = {"key": hashlib.sha256(repr(key).encode()).hexdigest(),
                              # the int model has no ADC: the precision without it
                              "precision": precision(program.chip).rsplit(" ADC", 1)[0],
                              "accuracy": accuracy(ints, labels),
                              "agreement": agreement(ints, self.fp32),
                              "sqnr_db": sqnr_db(ints, self.fp32)}
        random_numbers = _draws_random_numbers(program)
        results, first = [], None
        for seed in task.seeds:
            t0 = time.perf_counter()
            if first is not None and not random_numbers:
                output = first               # nothing random on this chip: every seed agrees
            else:
                output = run_program(program, self.data, mode="acim", seed=seed,
                                     batch_size=c.batch_size, device=c.device).output
                _log_evaluation(task.point, seed)
                first = output if first is None else first
            results.append({"seed": seed, "status": "done",
                            "accuracy": accuracy(output, labels),
                            "agreement": agreement(output, self.fp32),
                            "sqnr_db": sqnr_db(output, self.fp32),
                            "seconds": time.perf_counter() - t0})
        self.timings["execution"] = time.perf_counter() - start
        total = program.report["total"]
        costs = {"adc_conversions": total.get("adc_conversions"), "cycles": total.get("cycles"),
                 "energy_j": total.get("energy_j"), "tops_per_w": total.get("tops_per_w"),
                 "precision": precision(program.chip)}
        return {"point": task.point, "status": "done", "results": results, "costs": costs,
                "int": self.ints[key], "fp32": {"accuracy": self.fp32_accuracy},
                "timings": dict(self.timings)}


def _log_evaluation(point: int, seed: int) -> None:
    path = os.environ.get(EVAL_LOG_ENV)
    if path:
        with open(path, "a") as log:
            log.write(f"{point} {seed}\n")


# -- one evaluator per worker process -------------------------------------------------------------

_EVALUATORS: dict[Context, Evaluator] = {}


def worker_evaluate(context: Context, task: Task) -> dict:
    """Entry point of a worker (local process pool or Ray task): reuse this process's
    evaluator for the context, so data and FP32 outputs are loaded once per worker."""
    evaluator = _EVALUATORS.get(context)
    if evaluator is None:
        evaluator = _EVALUATORS[context] = Evaluator(context)
    return evaluator.evaluate(task)
