"""The sweep driver: points -> tasks for what is missing -> engine -> one commit per result.

Running the same sweep again computes only the rows the database lacks (a row's key is a hash
of the model's content, the data, the canonical chip text, the seed and the numeric model's
version), so an interrupted or extended sweep resumes where it stopped.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace

from ..errors import UsageError
from .engines import cpu_count, make_engine
from .evaluate import Context, Task, file_hash, merge_shards
from .grid import Axis, grid
from .point import make_points
from .store import DriverLock, Store, connect, row_key


@dataclass(frozen=True)
class SweepSpec:
    model: str
    chip: str
    db: str
    context: Context
    axes: tuple[Axis, ...] = ()
    zip_axes: bool = False
    random_count: int | None = None
    seeds: int = 3
    fresh: bool = False
    engine: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    metric: str | None = None     # the headline metric (asimc.metrics); None: the default


@dataclass
class Summary:
    points: int = 0
    invalid: int = 0
    done: int = 0                 # points fully evaluated (all seeds), before and now
    failed: int = 0
    evaluated: int = 0            # points evaluated by this run
    interrupted: bool = False
    seconds: dict = field(default_factory=dict)   # wall time by stage (for the benchmarks)


def run_sweep(spec: SweepSpec, progress=None) -> Summary:
    """Evaluate every missing row of the sweep; returns what happened. ``progress``:
    ``Progress``-like (start/finish/close) or None."""
    wall = time.perf_counter()
    for path, what in ((spec.model, "model"), (spec.chip, "chip")):
        if not os.path.isfile(path):
            raise UsageError(f"{path}: no such {what} file")
    if spec.seeds < 1:
        raise UsageError(f"--seeds {spec.seeds}: give at least 1")
    axes = list(spec.axes)
    points = make_points(spec.chip, axes, grid(axes, zip_axes=spec.zip_axes,
                                                random_count=spec.random_count))
    if spec.metric is not None:
        _check_metric(spec)
    identity = spec.context.identity(file_hash(spec.model))
    lock = DriverLock(spec.db)
    try:
        return _drive(spec, axes, points, identity, progress, wall)
    finally:
        lock.release()


def _check_metric(spec: SweepSpec) -> None:
    """A metric that needs labels is refused on data without them, before the database is
    touched (every metric is stored; this one is what the answers show)."""
    from ..metrics import get_metric
    if not get_metric(spec.metric).needs_labels:
        return
    from ..compiler import compile as compile_model
    from ..evaluate import load_eval_data
    from ..metrics import choose_metric
    c = spec.context
    program = compile_model(spec.model, spec.chip, digital=c.digital, mapping=c.mapping)
    data = load_eval_data(program, c.data, limit=c.limit, **dict(c.dataset_options))
    choose_metric(spec.metric, None, data.labels, data.description)


def _drive(spec, axes, points, identity, progress, wall) -> Summary:
    store = Store(connect(spec.db, create=True))
    meta = store.meta()
    if spec.fresh:
        store.clear()
    elif meta.get("identity") not in (None, identity):
        raise UsageError(
            f"{spec.db} holds a sweep of {meta.get('model')} on {meta.get('data')} "
            f"(limit {meta.get('limit')}) with other settings or another model version; "
            "use --fresh to start it over, or another --db")
    store.set_meta({"identity": identity, "model": spec.model, "chip": spec.chip,
                    "data": spec.context.data, "limit": spec.context.limit,
                    "seeds": spec.seeds, "axes": [a.name for a in axes],
                    "metric": spec.metric,
                    "schema": 1})
    ids = store.add_points(points)
    finished = store.finished_keys()
    tasks, seen = [], set()
    summary = Summary(points=len(set(ids)))
    for point_id, point in zip(ids, points):
        if point_id in seen:
            continue
        seen.add(point_id)
        if not point.valid:
            summary.invalid += 1
            continue
        missing = tuple(s for s in range(spec.seeds)
                        if row_key(identity, point.chip_text, s) not in finished)
        if missing:
            label = " ".join(f"{k}={v}" for k, v in point.params.items())
            tasks.append(Task(point_id, point.chip_text, missing, label))
        else:
            summary.done += 1
    texts = {t.point: t.chip_text for t in tasks}
    shards = shard_count(len(tasks), spec.workers or cpu_count())
    units = [replace(t, shard=k, shards=shards) for t in tasks for k in range(shards)]
    parts: dict[int, list] = {}          # point -> the results of its shards so far
    stages = {"compile": 0.0, "data": 0.0, "execution": 0.0, "store": 0.0}
    if progress:
        progress.begin(total=summary.points - summary.invalid, done=summary.done,
                       todo=len(tasks))
    engine = make_engine(spec.engine, spec.workers, len(units), spec.ray_address,
                         spec.context.device) if tasks else None
    stages["start"] = time.perf_counter() - wall
    try:
        if engine is not None:
            for result in engine.run(spec.context, units,
                                     progress.running if progress else (lambda t: None)):
                if result.get("shards", 1) > 1:
                    parts.setdefault(result["point"], []).append(result)
                    if len(parts[result["point"]]) < shards:
                        continue
                    result = merge_shards(parts.pop(result["point"]))
                start = time.perf_counter()
                store.record(identity, texts[result["point"]], result)
                stages["store"] += time.perf_counter() - start
                for stage, seconds in result.get("timings", {}).items():
                    stages[stage] += seconds
                summary.evaluated += 1
                if result["status"] == "done":
                    summary.done += 1
                else:
                    summary.failed += 1
                if progress:
                    progress.finished(result)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if engine is not None:
            engine.close()
        store.db.close()
        if progress:
            progress.close()
    stages["total"] = time.perf_counter() - wall
    summary.seconds = stages
    return summary


def shard_count(tasks: int, workers: int) -> int:
    """Shards per point: 1 while there are points enough for every worker; with fewer points
    than workers, each point's data is split so that every worker has a share (a shard is a
    run of whole batches, so the numbers do not change; see evaluate.shard_bounds)."""
    return 1 if tasks == 0 or tasks >= workers else -(-workers // tasks)


class Progress:
    """Points done / total, failures, ETA and the point running, on stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total = self.done = self.failed = self.todo = self.finished_now = 0
        self.started = time.perf_counter()
        self.current: dict[int, str] = {}     # point -> label, for the points running

    def begin(self, total: int, done: int, todo: int) -> None:
        self.total, self.done, self.todo = total, done, todo
        self.started = time.perf_counter()
        if done:
            self._line(f"{done} of {total} point(s) already in the database; "
                       f"{todo} to evaluate", final=True)

    def running(self, tasks) -> None:
        self.current = {t.point: t.label or f"point {t.point}" for t in tasks}
        if self.tty:
            self._show()

    def finished(self, result: dict) -> None:
        self.finished_now += 1
        self.current.pop(result["point"], None)
        if result["status"] == "done":
            self.done += 1
        else:
            self.failed += 1
            message = result.get("message", "").splitlines()[0][:200]
            self._line(f"point {result['point']} failed: {message}", final=True)
        self._show()

    def _show(self) -> None:
        elapsed = time.perf_counter() - self.started
        left = self.todo - self.finished_now
        eta = f"ETA {_clock(elapsed / self.finished_now * left)}" if self.finished_now else "ETA -"
        text = (f"[{self.done + self.failed}/{self.total}] {self.failed} failed, {eta}"
                + (f", running {'; '.join(list(self.current.values())[:2])}"
                   if left and self.current else ""))
        self._line(text, final=not self.tty)

    def _line(self, text: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text[:200] + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"
