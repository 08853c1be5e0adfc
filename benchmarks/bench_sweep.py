"""Benchmarks of `asimc sweep` (numbers go to BENCHMARKS.md, ratios measured in one run).

For each model (the digits MLP, whose points execute in tens of milliseconds, and the digits
CNN, whose points take seconds):

1. Overhead: a 24-point sweep (adc.bits 5..10 x hybrid levels 0..3, one seed, in-process): the
   share of wall time spent executing points, and the split into start (imports, points,
   database), compile, data (loading + FP32 reference), execution and store.
2. Scaling: a 12-point sweep with --workers 2 against --workers 1 on one core (target: >= 1.7x)
   and against --workers 1 on all cores (whose torch threads use them too), each a fresh
   `asimc sweep` process as a user runs it.
3. Ray against local: the same 12 points on Ray with 2 workers against local 2 workers
   (target: within 15 %), joining a running cluster and starting its own.

    .venv/bin/python benchmarks/bench_sweep.py [--models mlp cnn] [--limit N] [--seeds N] [--skip-ray]
"""
from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402, F401  (counted in the import time)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import cpu_model  # noqa: E402
from asimc.sweep.engines import RAY_LOOPBACK_ENV  # noqa: E402
from asimc.sweep.evaluate import Context  # noqa: E402
from asimc.sweep.grid import parse_vary  # noqa: E402
from asimc.sweep.run import SweepSpec, run_sweep  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _T0
ROOT = Path(__file__).resolve().parent.parent
MODELS = {name: str(ROOT / "examples" / "models" / f"digits_{name}.onnx")
          for name in ("mlp", "cnn")}
CHIP = str(ROOT / "chips" / "asim-hcim-1.acim")


def _spec(model, db, vary, limit, **kw) -> SweepSpec:
    return SweepSpec(model=model, chip=CHIP, db=db,
                     context=Context(model=model, data="digits", limit=limit),
                     axes=tuple(parse_vary(v) for v in vary), seeds=1, **kw)


def _run(model, folder, name, vary, limit, **kw):
    db = os.path.join(folder, name + ".db")
    start = time.perf_counter()
    summary = run_sweep(_spec(model, db, vary, limit, **kw))
    wall = time.perf_counter() - start
    assert summary.done == summary.points and not summary.failed, summary
    return wall, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["mlp", "cnn"])
    parser.add_argument("--limit", type=int, default=None, help="samples (default: all 450)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per point in 2. and 3.")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}; data digits, limit {args.limit or 450}")
    imported = False
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            _bench_model(name, MODELS[name], folder, args,
                         IMPORT_SECONDS if not imported else 0.0)
            imported = True


def _bench_model(name, model, folder, args, import_seconds) -> None:
    print(f"\n== {name} ({os.path.relpath(model, ROOT)})")
    wall, s = _run(model, folder, f"{name}-overhead",
                   ["adc.bits=5:10:1", "hybrid.digital_levels=0:3:1"], args.limit, workers=1)
    total = wall + import_seconds
    t = s.seconds
    other = total - import_seconds - sum(t[k] for k in ("start", "compile", "data",
                                                        "execution", "store"))
    print(f"1. overhead, {s.points} points, 1 worker, in-process: {total:.2f} s wall"
          + ("" if import_seconds else " (imports done by the model before)"))
    for stage, seconds in (("import (python, torch, asimc)", import_seconds),
                           ("start (points, chip checks, database)", t["start"]),
                           ("compile", t["compile"]), ("data + fp32", t["data"]),
                           ("execution (int + acim runs)", t["execution"]),
                           ("store (commits)", t["store"]), ("other", other)):
        print(f"   {stage:<40} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")
    print(f"   executing points: {100 * t['execution'] / total:.1f} % of the wall time "
          f"(target >= 90 %); per point: {1000 * t['execution'] / s.points:.0f} ms executing, "
          f"{1000 * (t['compile'] + t['store']) / s.points:.0f} ms compiling and storing")

    # Scaling and engines as a user runs them: one fresh `asimc sweep` process each, so
    # every configuration pays its own imports and worker start.
    vary12 = ["adc.bits=5:10:1", "hybrid.digital_levels=0,2"]
    seeds = ("--seeds", str(args.seeds))
    core = _cli(model, folder, f"{name}-core", vary12, args.limit, "--workers", "1", *seeds,
                cores={0})
    one = _cli(model, folder, f"{name}-w1", vary12, args.limit, "--workers", "1", *seeds)
    two = _cli(model, folder, f"{name}-w2", vary12, args.limit, "--workers", "2", *seeds)
    print(f"2. scaling, 12 points x {args.seeds} seed(s) (fresh `asimc sweep` processes): "
          f"--workers 1 on one core {core:.2f} s, --workers 1 on all cores (its torch threads "
          f"use them) {one:.2f} s, --workers 2 {two:.2f} s: {core / two:.2f}x against one "
          f"core (target >= 1.7x), {one / two:.2f}x against one worker's threads")

    if not args.skip_ray:
        cold = _cli(model, folder, f"{name}-ray-cold", vary12, args.limit, "--engine", "ray",
                    "--workers", "2", *seeds)
        with _ray_head(folder) as address:
            warm = _cli(model, folder, f"{name}-ray-warm", vary12, args.limit, "--engine",
                        "ray", "--workers", "2", "--ray-address", address, *seeds)
        print(f"3. Ray, 12 points, 2 workers: {warm:.2f} s joining a running cluster "
              f"({warm / two:.2f}x the local engine's {two:.2f} s; target <= 1.15x), "
              f"{cold:.2f} s starting its own ({cold / two:.2f}x)")


def _cli(model, folder, name, vary, limit, *options, cores=None) -> float:
    """Seconds of one `asimc sweep` process; ``cores``: the CPUs it may use (all if None)."""
    import subprocess
    args = [sys.executable, "-m", "asimc", "sweep", model, "--chip", CHIP, "--data", "digits",
            "--db", os.path.join(folder, name + ".db"), *options]
    if limit:
        args += ["--limit", str(limit)]
    for v in vary:
        args += ["--vary", v]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True,
                   preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
    return time.perf_counter() - start


class _ray_head:
    """A Ray head on 127.0.0.1 with 2 CPUs in its own process group (killed whole after)."""

    def __init__(self, folder):
        self.folder = folder

    def __enter__(self):
        import secrets
        import signal
        import socket
        import subprocess
        self.signal = signal
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        token = os.path.join(self.folder, "auth_token")
        with open(token, "w") as f:
            f.write(secrets.token_hex(32))
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token,
                          **{RAY_LOOPBACK_ENV: "0"})   # everything on 127.0.0.1
        ray_bin = str(Path(sys.executable).parent / "ray")
        self.process = subprocess.Popen(
            [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             "--num-cpus=2", "--include-dashboard=false", "--object-store-memory=100000000",
             f"--temp-dir=/tmp/raybench{os.getpid() % 10000}", "--disable-usage-stats",
             "--block"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 180
        while subprocess.run([ray_bin, "status", f"--address={address}"],
                             capture_output=True).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError("the Ray head did not come up")
            time.sleep(1)
        return address

    def __exit__(self, *exc):
        try:
            os.killpg(self.process.pid, self.signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

if __name__ == "__main__":
    main()
