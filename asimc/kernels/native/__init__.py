"""The native conversion step: ``convert.c`` built on first use with the system C compiler.

Eager torch spends some twenty memory passes on every conversion of a noisy chip (random bits,
Box-Muller, noise, clamp, ADC, shift-add); the C loop does them in one pass, vectorised and
threaded. It is an accelerator only: it computes exactly what the torch path computes (the same
float32 operations in the same order, see convert.c), and asimc falls back to the torch path
when no compiler is available or ``ASIMC_NATIVE=0`` is set.

The library is cached per source, compiler and CPU in ``$ASIMC_CACHE_DIR`` (default
``~/.cache/asimc``); building it takes about a second.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

from .. import rng

SOURCE = Path(__file__).with_name("convert.c")
FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-std=c99", "-ffp-contract=off", "-fno-math-errno",
         "-fno-trapping-math", "-shared", "-fPIC"]
MAX_VOTES = 64


def _hex(value: float) -> str:
    return float(value).hex() + "f"


def source_text() -> str:
    """convert.c with the Box-Muller constants of asimc.kernels.rng filled in."""
    constants = {"SQRT2": rng.SQRT2, "LN2": rng.LN2, "HALF_PI": rng.HALF_PI,
                 "QUARTER_STEP": rng.QUARTER_STEP, "INV_2_24": rng.INV_2_24}
    integers = {"QUARTER_TURN": rng.QUARTER_TURN}
    for k, value in enumerate(rng.LN_SERIES):
        constants["LN2C" if k == 2 else f"LN{k}"] = value
    for k, value in enumerate(rng.COS_SERIES):
        constants[f"COS{k}"] = value
    text = SOURCE.read_text()
    for name, value in constants.items():
        text = text.replace(f"@{name}@", _hex(value))
    for name, value in integers.items():
        text = text.replace(f"@{name}@", str(value))
    return text


def _cache_dir() -> Path:
    root = os.environ.get("ASIMC_CACHE_DIR") or Path.home() / ".cache" / "asimc"
    return Path(root) / "native"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compile(compiler: str, source: Path, target: Path, openmp: bool) -> bool:
    flags = FLAGS + (["-fopenmp"] if openmp else [])
    result = subprocess.run([compiler, *flags, "-o", str(target), str(source), "-lm"],
                            capture_output=True, text=True, timeout=120)
    return result.returncode == 0


@lru_cache(maxsize=1)
def library():
    """The loaded library, or None where it cannot be built (no compiler, ASIMC_NATIVE=0)."""
    if os.environ.get("ASIMC_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    text = source_text()
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    key = hashlib.sha256("\n".join([text, " ".join(FLAGS), version, _cpu_model()])
                         .encode()).hexdigest()[:16]
    folder = _cache_dir()
    target = folder / f"convert-{key}.so"
    try:
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                source = Path(scratch) / "convert.c"
                source.write_text(text)
                built = Path(scratch) / "convert.so"
                if not (_compile(compiler, source, built, openmp=True)
                        or _compile(compiler, source, built, openmp=False)):
                    return None
                os.replace(built, target)           # atomic: concurrent builds are fine
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError):
        return None
    p, i64, i32, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float
    lib.asimc_convert_tile.argtypes = [p, p, i64, i64, i64, i64, i64, p, p, p, p, p, p, p,
                                       i64, i64, p, f32, f32, f32, i32, i32]
    lib.asimc_convert_tile.restype = None
    lib.asimc_standard_normals.argtypes = [i64, p, i64, p]
    lib.asimc_standard_normals.restype = None
    return lib


def available() -> bool:
    return library() is not None


def standard_normals(stream: int, counters: torch.Tensor) -> torch.Tensor:
    """The native N(0, 1) draws of ``counters`` (int64, CPU) in ``stream``."""
    counters = counters.contiguous()
    out = torch.empty(counters.shape, dtype=torch.float32)
    library().asimc_standard_normals(stream, counters.data_ptr(), counters.numel(),
                                     out.data_ptr())
    return out


def convert_tile(mac: torch.Tensor, acc: torch.Tensor, *, full_scale: torch.Tensor,
                 shift_add: torch.Tensor, sigma: torch.Tensor, step: torch.Tensor,
                 votes: torch.Tensor, stream: torch.Tensor | None, offset: torch.Tensor | None,
                 elements: int, col_stride: int, alpha: torch.Tensor, nonlinear2: float,
                 rows: int, levels: int) -> None:
    """acc (G, R, N) float64 += the shift-added codes of mac (G, C, R, bw, N) float32.

    Per (cycle, bit) pair p = c * bw + i: full_scale[c], shift_add[p], sigma[p], step[p] (the
    counter step of vote 0), votes[p] (0 digital, 1 analog, >1 voted) and alpha[p] (gain
    compression, 0 for digital conversions).
    """
    groups, cycles, rows_out, bits, columns = mac.shape
    noisy = stream is not None
    tensors = [mac, acc, full_scale, shift_add, sigma, step, votes, alpha]
    if noisy:
        tensors += [stream, offset]
    assert all(t.is_contiguous() and t.device.type == "cpu" for t in tensors)
    library().asimc_convert_tile(
        mac.data_ptr(), acc.data_ptr(), groups, cycles, rows_out, bits, columns,
        full_scale.data_ptr(), shift_add.data_ptr(), sigma.data_ptr(), step.data_ptr(),
        votes.data_ptr(), stream.data_ptr() if noisy else None,
        offset.data_ptr() if noisy else None, elements, col_stride, alpha.data_ptr(), nonlinear2,
        float(rows), float(levels), int(noisy), torch.get_num_threads())
