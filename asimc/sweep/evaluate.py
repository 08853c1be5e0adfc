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
from ..passes.smooth import DEFAULT_ALPHA

# Used by the tests only: every ACiM evaluation appends "point seed" (and " shard" for a shard
# of a point) to this file, so a test can prove that a resumed sweep computes each missing row
# exactly once.
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
    input_scales: str | None = None
    smooth: str | None = None
    smooth_alpha: float = DEFAULT_ALPHA
    device: str = "cpu"

    def identity(self, model_hash: str) -> str:
        """The part of every row's key that is not the chip or the seed (device excluded:
        every device gives the same numbers)."""
        from ..version import NUMERIC_MODEL_VERSION
        parts = [model_hash, self.data, str(self.limit), str(self.batch_size),
                 repr(self.dataset_options), repr(self.digital), str(self.mapping),
                 str(self.input_scales), f"numeric-model-{NUMERIC_MODEL_VERSION}"]
        if self.smooth is not None:       # (absent otherwise: earlier rows keep their keys)
            parts += [f"smooth {self.smooth}", f"alpha {self.smooth_alpha!r}"]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Task:
    """One point's seeds, on all its data or on shard ``shard`` of ``shards`` of it."""

    point: int
    chip_text: str
    seeds: tuple[int, ...]
    label: str = ""                # the point's params, for progress lines
    shard: int = 0
    shards: int = 1


def shard_bounds(size: int, batch_size: int, shard: int, shards: int) -> tuple[int, int]:
    """Samples [lo, hi) of one shard. Shards are runs of whole batches: every batch (and so
    every batch-wide input scale or batch-keyed noise stream) is the one an unsharded run
    sees, which is why the shards' outputs put together are the unsharded outputs, bit for
    bit, whatever the chip's scale mode. A shard can be empty (more shards than batches)."""
    batches = -(-size // batch_size)
    return (min(size, shard * batches // shards * batch_size),
            min(size, (shard + 1) * batches // shards * batch_size))


def failure(task: Task, message: str, seconds: float | None = None) -> dict:
    """The result of a point (or shard) that could not be evaluated."""
    return {"point": task.point, "status": "failed", "message": message,
            "shard": task.shard, "shards": task.shards,
            "results": [{"seed": s, "status": "failed", "message": message,
                         "seconds": seconds} for s in task.seeds]}


def file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Evaluator:
    """One worker's state for one context: data, FP32 outputs and int outputs, computed once."""

    def __init__(self, context: Context):
        self.context = context
        self.data = None
        self.fp32 = None
        self.ints: dict[tuple, tuple] = {}   # (quantisation, lo, hi) -> (int outputs, precision)
        self.timings = {}            # this task's seconds in each stage

    def _ensure_data(self, program) -> None:
        if self.data is not None:
            return
        from ..evaluate import load_eval_data, run_onnxruntime
        start = time.perf_counter()
        c = self.context
        self.data = load_eval_data(program, c.data, limit=c.limit, **dict(c.dataset_options))
        self.fp32 = run_onnxruntime(c.model, self.data, c.batch_size)
        self.timings["data"] = time.perf_counter() - start

    def evaluate(self, task: Task) -> dict:
        """A point's result (``summarise``), or for one shard of a point its raw outputs (to
        ``merge_shards``); never raises for a bad point: a point that fails is returned with
        status ``failed`` and the message."""
        started = time.perf_counter()
        self.timings = {"compile": 0.0, "data": 0.0, "execution": 0.0}
        try:
            raw = self._outputs(task)
        except Exception as error:  # a failing point must not stop the sweep
            if isinstance(error, AsimcError):
                message = str(error)
            else:
                message = f"{type(error).__name__}: {error}"
                if os.environ.get("ASIMC_DEBUG"):
                    message += "\n" + traceback.format_exc()
            return failure(task, message, time.perf_counter() - started)
        return raw if task.shards > 1 else summarise(raw)

    def _outputs(self, task: Task) -> dict:
        from ..chip import parse_chip
        from ..compare import _draws_random_numbers, _quant_key
        from ..compiler import compile as compile_model
        from ..compiler import precision
        from ..evaluate import EvalData, run_program
        c = self.context
        start = time.perf_counter()
        chip = parse_chip(task.chip_text, filename=f"<point {task.point}>")
        program = compile_model(c.model, chip, digital=c.digital, mapping=c.mapping,
                                input_scales=c.input_scales, smooth=c.smooth,
                                smooth_alpha=c.smooth_alpha)
        self.timings["compile"] = time.perf_counter() - start
        self._ensure_data(program)
        lo, hi = shard_bounds(self.data.size, c.batch_size, task.shard, task.shards)
        data = self.data
        if (lo, hi) != (0, data.size):
            data = EvalData({name: x[lo:hi] for name, x in data.inputs.items()},
                            None if data.labels is None else data.labels[lo:hi],
                            data.description)
        key = (_quant_key(program), lo, hi)
        start = time.perf_counter()
        if key not in self.ints and hi > lo:
            self.ints[key] = (run_program(program, data, mode="int", batch_size=c.batch_size,
                                          device=c.device).output,
                              # the int model has no ADC: the precision without it
                              precision(program.chip).rsplit(" ADC", 1)[0])
        ints, int_precision = self.ints.get(key, (None, None))
        random_numbers = _draws_random_numbers(program)
        outputs, seconds, first = [], [], None
        for seed in task.seeds:
            t0 = time.perf_counter()
            if hi == lo:
                output = None                # an empty shard
            elif first is not None and not random_numbers:
                output = first               # nothing random on this chip: every seed agrees
            else:
                output = run_program(program, data, mode="acim", seed=seed,
                                     batch_size=c.batch_size, device=c.device).output
                _log_evaluation(task, seed)
                first = output if first is None else first
            outputs.append(output)
            seconds.append(time.perf_counter() - t0)
        self.timings["execution"] = time.perf_counter() - start
        total = program.report["total"]
        costs = {"adc_conversions": total.get("adc_conversions"), "cycles": total.get("cycles"),
                 "energy_j": total.get("energy_j"), "tops_per_w": total.get("tops_per_w"),
                 "precision": precision(program.chip)}
        return {"point": task.point, "status": "done", "shard": task.shard,
                "shards": task.shards, "seeds": task.seeds, "labels": data.labels,
                "fp32": self.fp32[lo:hi], "int": ints,
                "int_key": hashlib.sha256(repr(key[0]).encode()).hexdigest(),
                "int_precision": int_precision, "outputs": outputs, "seconds": seconds,
                "costs": costs, "timings": dict(self.timings)}


def summarise(raw: dict) -> dict:
    """A point's result, as the driver stores it, from its raw outputs (one worker's, or the
    shards' put together by ``merge_shards``): the same function either way, so a sharded
    point's numbers are the unsharded ones."""
    from ..evaluate import accuracy, agreement, sqnr_db
    labels, fp32, ints = raw["labels"], raw["fp32"], raw["int"]
    results = [{"seed": seed, "status": "done", "accuracy": accuracy(output, labels),
                "agreement": agreement(output, fp32), "sqnr_db": sqnr_db(output, fp32),
                "seconds": seconds}
               for seed, output, seconds in zip(raw["seeds"], raw["outputs"], raw["seconds"])]
    return {"point": raw["point"], "status": "done", "results": results,
            "costs": raw["costs"],
            "int": {"key": raw["int_key"], "precision": raw["int_precision"],
                    "accuracy": accuracy(ints, labels), "agreement": agreement(ints, fp32),
                    "sqnr_db": sqnr_db(ints, fp32)},
            "fp32": {"accuracy": accuracy(fp32, labels)}, "timings": raw["timings"]}


def merge_shards(parts: list[dict]) -> dict:
    """One point's result from the results of all its shards (any order)."""
    import numpy as np
    parts = sorted(parts, key=lambda part: part["shard"])
    failed = [part for part in parts if part["status"] != "done"]
    if failed:
        return {**failed[0], "shard": 0, "shards": 1}
    # The non-empty shards (the last one never is: shard_bounds ends it at the data's end).
    full = [part for part in parts if part["int"] is not None]

    def joined(values):
        return None if values[0] is None else np.concatenate(values)

    timings = {stage: sum(part["timings"].get(stage, 0.0) for part in parts)
               for stage in parts[0]["timings"]}
    return summarise({
        **full[0], "labels": joined([part["labels"] for part in full]),
        "fp32": joined([part["fp32"] for part in full]),
        "int": joined([part["int"] for part in full]),
        "outputs": [joined([part["outputs"][i] for part in full])
                    for i in range(len(full[0]["seeds"]))],
        "seconds": [sum(part["seconds"][i] for part in parts)
                    for i in range(len(parts[0]["seeds"]))],
        "timings": timings})


def _log_evaluation(task: Task, seed: int) -> None:
    path = os.environ.get(EVAL_LOG_ENV)
    if path:
        with open(path, "a") as log:
            log.write(f"{task.point} {seed}" + (f" {task.shard}" if task.shards > 1 else "")
                      + "\n")


# -- one evaluator per worker process -------------------------------------------------------------

_EVALUATORS: dict[Context, Evaluator] = {}


def worker_evaluate(context: Context, task: Task) -> dict:
    """Entry point of a worker (local process pool or Ray task): reuse this process's
    evaluator for the context, so data and FP32 outputs are loaded once per worker."""
    evaluator = _EVALUATORS.get(context)
    if evaluator is None:
        evaluator = _EVALUATORS[context] = Evaluator(context)
    return evaluator.evaluate(task)
