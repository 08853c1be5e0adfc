"""Evaluating one point in a worker: compile the point's chip, run it for each seed, measure.

The same steps as ``asimc compare``, through the same ``asimc.evaluation.run_chip`` and
``score_run``: the FP32 model under onnxruntime is the reference, the ``int`` baseline is the
same program with exact integer products, and each seed is one noisy ACiM run; every metric of
``asimc.metrics`` is stored. A worker keeps one ``Evaluator`` per sweep
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
        from ..chip.conversions import precision
        from ..compiler import compile as compile_model
        from ..evaluate import EvalData
        from ..evaluation import CostTotals, int_precision, quantisation_key, run_chip
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
        key = (quantisation_key(program), lo, hi)
        start = time.perf_counter()
        if key not in self.ints and hi > lo:
            self.ints[key] = (run_chip(program, data, mode="int", batch_size=c.batch_size,
                                       device=c.device).outputs[0],
                              int_precision(program.chip))
        ints, int_precision_text = self.ints.get(key, (None, int_precision(program.chip)))
        outputs, seconds = [], []
        if hi == lo:                         # an empty shard
            outputs, seconds = [None] * len(task.seeds), [0.0] * len(task.seeds)
        else:
            last = [time.perf_counter()]

            def seed_done(seed, ran):
                if ran:
                    _log_evaluation(task, seed)
                now = time.perf_counter()
                seconds.append(now - last[0])
                last[0] = now

            outputs = list(run_chip(program, data, seeds=task.seeds, batch_size=c.batch_size,
                                    device=c.device, on_seed=seed_done).outputs)
        self.timings["execution"] = time.perf_counter() - start
        costs = CostTotals.of(program)
        return {"point": task.point, "status": "done", "shard": task.shard,
                "shards": task.shards, "seeds": task.seeds, "labels": data.labels,
                "fp32": self.fp32[lo:hi], "int": ints,
                "int_key": hashlib.sha256(repr(key[0]).encode()).hexdigest(),
                "int_precision": int_precision_text, "outputs": outputs, "seconds": seconds,
                "costs": {"adc_conversions": costs.adc_conversions, "cycles": costs.cycles,
                          "energy_j": costs.energy_j, "tops_per_w": costs.tops_per_w,
                          "precision": precision(program.chip)},
                "timings": dict(self.timings)}


def _scores(outputs, fp32, labels) -> list[dict]:
    """Every metric of each output (one per seed) as the store keeps them."""
    from dataclasses import asdict
    from ..evaluation import ChipRun, score_run
    run = ChipRun(tuple(range(len(outputs))), tuple(outputs), {})
    return [{k: v for k, v in asdict(s).items() if k != "seed"}
            for s in score_run(run, fp32, labels)]


def summarise(raw: dict) -> dict:
    """A point's result, as the driver stores it, from its raw outputs (one worker's, or the
    shards' put together by ``merge_shards``): the same function either way, so a sharded
    point's numbers are the unsharded ones."""
    from ..metrics import is_class_scores
    labels, fp32, ints = raw["labels"], raw["fp32"], raw["int"]
    results = [{"seed": seed, "status": "done", **scores, "seconds": seconds}
               for seed, scores, seconds in zip(raw["seeds"],
                                                _scores(raw["outputs"], fp32, labels),
                                                raw["seconds"])]
    int_scores, fp32_scores = _scores([ints, fp32], fp32, labels)
    return {"point": raw["point"], "status": "done", "results": results,
            "costs": raw["costs"],
            "int": {"key": raw["int_key"], "precision": raw["int_precision"], **int_scores},
            "fp32": {**fp32_scores, "class_scores": is_class_scores(fp32)},
            "timings": raw["timings"]}


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
