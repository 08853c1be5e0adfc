"""Where points are evaluated: in this process, in a pool of local worker processes, or on Ray.

Every engine runs the same ``worker_evaluate`` and yields its results to the driver as they
finish (the driver commits each one); none of them writes the database. Each worker gets its
share of the torch threads, so N workers do not oversubscribe the cores.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator

from ..errors import UsageError
from .evaluate import Context, Task, failure, worker_evaluate


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _set_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(max(1, threads))


def _worker_init(threads: int) -> None:
    # Ctrl-C goes to the driver, which stops the workers itself (no tracebacks from each).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    _set_threads(threads)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when its parent dies (the fork server, which exits with
    the driver, even when the driver is killed with SIGKILL)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pool_evaluate(context: Context, task: Task) -> dict:
    return worker_evaluate(context, task)


class InProcess:
    """One worker: the driver evaluates the points itself."""

    name = "local"

    def __init__(self, threads: int):
        self.threads = threads

    def run(self, context: Context, tasks: list[Task], on_start) -> Iterator[dict]:
        _set_threads(self.threads)
        for task in tasks:
            on_start([task])
            yield worker_evaluate(context, task)

    def close(self) -> None:
        pass


# What a worker needs, imported once by the fork server (a clean interpreter that never runs
# torch) so that each worker forked from it starts at once instead of importing for seconds.
PRELOAD = ["numpy", "torch", "onnx", "onnxruntime", "asimc.compiler",
           "asimc.frontend", "asimc.evaluate", "asimc.compare", "asimc.data",
           "asimc.sweep.evaluate", "asimc.sweep.engines"]


class LocalPool:
    """N worker processes, forked from a fork server with the imports done (never forked from
    a process that has run torch)."""

    name = "local"

    def __init__(self, workers: int, threads: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self.workers = workers
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                        initializer=_worker_init, initargs=(threads,))

    def run(self, context: Context, tasks: list[Task], on_start) -> Iterator[dict]:
        from concurrent.futures import FIRST_COMPLETED, wait
        pending = list(reversed(tasks))
        running: dict = {}
        while pending or running:
            # Keep exactly one task per worker in flight: the running points are known, and
            # Ctrl-C has nothing queued to cancel.
            started = []
            while pending and len(running) < self.workers:
                task = pending.pop()
                running[self.pool.submit(_pool_evaluate, context, task)] = task
                started.append(task)
            if started:
                on_start(list(running.values()))
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                yield _result(future, task)

    def close(self) -> None:
        # Stop the workers now (an interrupted sweep must not wait for running points).
        for process in list(getattr(self.pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _result(future, task: Task) -> dict:
    try:
        return future.result()
    except Exception as error:  # the worker died (killed, out of memory): the point failed
        return failure(task, "the worker evaluating this point stopped "
                             f"({type(error).__name__}: {error})")


# Ray's switch between a single-machine Ray on the loopback ("0") and a cluster on the
# machine's interface address (the default on Linux; the name is Ray's).
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayEngine:
    """One Ray task per point (or shard of a point); joins ``address`` or starts a local Ray
    on 127.0.0.1."""

    name = "ray"

    def __init__(self, workers: int | None, threads: int, address: str | None, device: str):
        if not address:
            # A Ray started here serves this machine only: keep every socket on the loopback
            # (on Linux Ray turns 127.0.0.1 into the machine's interface address unless its
            # single-machine mode is on; set before Ray is imported, inherited by its processes).
            os.environ.setdefault(RAY_LOOPBACK_ENV, "0")
        try:
            import ray
        except ImportError:
            raise UsageError("--engine ray needs Ray: pip install 'asimc[ray]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            options = dict(include_dashboard=False, log_to_driver=False,
                           logging_level="ERROR", configure_logging=True)
            try:
                if address:
                    local = address.split(":")[0] in ("127.0.0.1", "localhost")
                    ray.init(address=address, **options,
                             **({"_node_ip_address": "127.0.0.1"} if local else {}))
                else:
                    ray.init(num_cpus=(workers or cpu_count()) * threads,
                             _node_ip_address="127.0.0.1", **options)
            except Exception as error:  # Ray raises many kinds; each means no cluster
                raise UsageError(f"cannot {'join the Ray cluster at ' + address if address else 'start a local Ray'}: {error}") from None
            self.started = True
        # A task asking for more CPUs than the cluster has would never be scheduled.
        threads = max(1, min(threads, int(ray.cluster_resources().get("CPU", 1))))
        resources = {"num_cpus": threads}
        if device.startswith("cuda"):
            resources["num_gpus"] = 1 / max(1, workers or 1)
        self.remote = ray.remote(**resources)(_ray_evaluate)
        self.threads = threads

    def run(self, context: Context, tasks: list[Task], on_start) -> Iterator[dict]:
        ray = self.ray
        context_ref = ray.put(context)
        refs = {self.remote.remote(context_ref, task, self.threads): task for task in tasks}
        on_start(tasks[:1])
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    task = refs.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as error:  # a Ray worker that died
                        yield failure(task, f"the Ray task evaluating this point failed "
                                            f"({error})")
                if refs:
                    on_start([next(iter(refs.values()))])
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _ray_evaluate(context: Context, task: Task, threads: int) -> dict:
    _set_threads(threads)
    return worker_evaluate(context, task)


def make_engine(engine: str, workers: int | None, tasks: int, address: str | None,
                device: str):
    cores = cpu_count()
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1")
    if engine == "ray":
        count = min(workers or cores, max(1, tasks))
        return RayEngine(count, max(1, cores // count), address, device)
    if engine != "local":
        raise UsageError(f"--engine {engine}: expected local or ray")
    if address:
        raise UsageError("--ray-address is for --engine ray")
    count = min(workers or cores, max(1, tasks))
    threads = max(1, cores // count)
    return InProcess(threads) if count == 1 else LocalPool(count, threads)
