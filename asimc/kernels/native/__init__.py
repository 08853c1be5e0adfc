"""The native bit-level kernel: ``convert.c`` built on first use with the system C compiler.

Binary MACs by popcount over bit-packed planes, Philox4x32-10 words, the codes drawn from the
layer's conversion tables (``conversion_model``) and the shift-add fused in one pass, threaded
over rows; ``convert_macs`` converts given non-integer MACs (cell or driver mismatch) the same
way. It is an accelerator only: it computes exactly what the reference computes (the
same draws, and the same float32 operations in the same order where a normal is drawn, see
convert.c), and asimc falls back to the torch path (with one warning saying why) when no
compiler is available or the build fails; ``ASIMC_NATIVE=0`` turns it off silently.

On x86-64 the source is built for three instruction sets and the widest one the CPU has is
loaded: ``avx512`` (AVX-512 F/BW/CD/DQ/VL and VPOPCNTDQ: x86-64-v4), ``avx2`` (x86-64-v3) or
``scalar`` (the compiler's baseline, no AVX). ``ASIMC_NATIVE_SIMD`` forces one (the tests hold
every variant to the reference's bits); one the CPU lacks is refused with a warning and the best
available used. Elsewhere (ARM, ...) only ``scalar`` exists (built for the compiler's default
target).

The libraries are cached per source, compiler, variant and CPU in ``$ASIMC_CACHE_DIR``
(default ``~/.cache/asimc``); building one takes a few seconds.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
import weakref
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import torch

from .. import conversion_model, rng

SOURCE = Path(__file__).with_name("convert.c")
FLAGS = ["-O3", "-std=gnu99", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math",
         "-shared", "-fPIC"]
# Each variant: its compiler flags and the /proc/cpuinfo flags a CPU needs to run it.
_V3 = ("avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "movbe")
VARIANTS = {
    "avx512": (["-march=x86-64-v4", "-mavx512vpopcntdq", "-mprefer-vector-width=512"],
               _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
                      "avx512_vpopcntdq")),
    "avx2": (["-march=x86-64-v3"], _V3),
    "scalar": ([], ()),
}
SIMD_NAMES = {"avx512": "AVX-512", "avx2": "AVX2", "scalar": "scalar"}
MAX_VOTES = 64          # convert.c's limits
MAX_INPUT_BITS = 32
MAX_PLANE_PAIRS = 32 * 64
# convert.c indexes guide entries with 32-bit integers: (row << GUIDE_BITS) | cell < 2^31.
MAX_TABLE_ROWS = 1 << (31 - conversion_model.GUIDE_BITS)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                     if line.startswith("flags")), []))


def _x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def supported_variants() -> tuple[str, ...]:
    """The variants this CPU runs, widest first."""
    if not _x86():
        return ("scalar",)
    flags = _cpu_flags()
    return tuple(name for name, (_, needs) in VARIANTS.items() if set(needs) <= flags)


def simd_choice() -> str:
    """The variant to load: ``ASIMC_NATIVE_SIMD`` if set and supported (another value is said
    in a warning and the best variant used: results are the same either way, only the speed
    differs), else the widest this CPU runs."""
    supported = supported_variants()
    choice = os.environ.get("ASIMC_NATIVE_SIMD", "")
    if choice and choice not in supported:
        known = choice in VARIANTS
        warnings.warn(f"asimc: ASIMC_NATIVE_SIMD={choice!r} is "
                      + ("not supported by this CPU" if known else
                         f"not one of {', '.join(VARIANTS)}")
                      + f"; using {supported[0]}", RuntimeWarning, stacklevel=2)
        choice = ""
    return choice or supported[0]


def compile_flags(variant: str | None = None) -> list[str]:
    variant = variant or simd_choice()
    return (VARIANTS[variant][0] if _x86() else []) + FLAGS


def simd_level() -> str:
    """The instruction set of the loaded variant (``AVX-512``, ``AVX2`` or ``scalar``)."""
    return SIMD_NAMES[simd_choice()]


def _fallback(reason: str) -> None:
    warnings.warn(f"asimc: the native bit-level kernel is not available ({reason}); using the "
                  "slower torch path (results are the same)", RuntimeWarning, stacklevel=3)


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
    integers["GUIDE_BITS"] = conversion_model.GUIDE_BITS
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


def _compile(compiler: str, source: Path, target: Path, openmp: bool, variant: str) -> str:
    """'' on success, else the compiler's error output."""
    flags = compile_flags(variant) + (["-fopenmp"] if openmp else [])
    result = subprocess.run([compiler, *flags, "-o", str(target), str(source), "-lm"],
                            capture_output=True, text=True, timeout=300)
    return "" if result.returncode == 0 else (result.stderr or result.stdout or "failed")


@lru_cache(maxsize=1)
def library():
    """The loaded library, or None where it cannot be built (no compiler, a build error: said
    once, as a warning) or is turned off (ASIMC_NATIVE=0)."""
    if os.environ.get("ASIMC_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        _fallback("no C compiler: install gcc or set CC")
        return None
    text = source_text()
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as error:
        _fallback(f"the C compiler {compiler} does not run: {error}")
        return None
    variant = simd_choice()
    key = hashlib.sha256("\n".join([text, " ".join(compile_flags(variant)), version,
                                    _cpu_model()])
                         .encode()).hexdigest()[:16]
    folder = _cache_dir()
    target = folder / f"convert-{variant}-{key}.so"
    try:
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                source = Path(scratch) / "convert.c"
                source.write_text(text)
                built = Path(scratch) / "convert.so"
                error = _compile(compiler, source, built, True, variant)
                if error:
                    error = _compile(compiler, source, built, False, variant)
                if error:
                    first = error.strip().splitlines()[0] if error.strip() else error
                    _fallback(f"building convert.c with {compiler} failed: {first}")
                    return None
                os.replace(built, target)           # atomic: concurrent builds are fine
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as error:
        _fallback(f"building or loading convert.c failed: {error}")
        return None
    p, i64, i32, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float
    lib.asimc_acim.argtypes = [p, p, p, i64, i64, i64, i64, i64, i64, i64, p, i64, i64,
                               i32, i32, i32, p, p, p, p, p, i64, p, p, i64, i64, p, p, p, p,
                               i64, p, p, p, p, p, p, p, i64, p, i32, f32, i32,
                               p, p, p, p, p, i64, i64]
    lib.asimc_acim.restype = None
    lib.asimc_convert_macs.argtypes = [p, p, i64, i64, i64, i64, i64, i64, i32, i32, p, p, p,
                                       i64, p, p, i64, i64, ctypes.c_double, p, p, p, i64, p,
                                       p, p, p, f32, f32, f32, i32]
    lib.asimc_convert_macs.restype = None
    lib.asimc_pack_weights.argtypes = [p, i64, i64, i64, i64, i64, p, i64, i32, i64, p, i32]
    lib.asimc_pack_weights.restype = None
    lib.asimc_standard_normal_quads.argtypes = [i64, p, i64, p]
    lib.asimc_standard_normal_quads.restype = None
    lib.asimc_random_words.argtypes = [i64, p, i64, p]
    lib.asimc_random_words.restype = None
    return lib


def available() -> bool:
    return library() is not None


def _check(condition: bool, message: str) -> None:
    """An argument check that stays under ``python -O`` (a wrong pointer would corrupt memory)."""
    if not condition:
        raise ValueError(f"native kernel: {message}")


def _cpu_tensor(t: torch.Tensor, dtype: torch.dtype, name: str, numel: int | None = None):
    _check(isinstance(t, torch.Tensor), f"{name} must be a tensor")
    _check(t.device.type == "cpu", f"{name} must be on the CPU, not {t.device}")
    _check(t.dtype == dtype, f"{name} must be {dtype}, not {t.dtype}")
    _check(t.is_contiguous(), f"{name} must be contiguous")
    if numel is not None:
        _check(t.numel() == numel, f"{name} must have {numel} elements, not {t.numel()}")


def words_per_tile(tiles: tuple[tuple[int, int], ...]) -> int:
    """64-bit words per bit plane of the longest row tile."""
    return max(1, -(-max(k1 - k0 for k0, k1 in tiles) // 64))


def _tile_bounds(tiles, k_total: int) -> torch.Tensor:
    _check(len(tiles) > 0, "no row tiles")
    for k0, k1 in tiles:
        _check(0 <= k0 < k1 <= k_total, f"row tile [{k0}, {k1}) outside 0..{k_total}")
    return torch.tensor([b for tile in tiles for b in tile], dtype=torch.int64)


def pack_weights(w: torch.Tensor, tiles, bits: int, n0: int, n1: int) -> torch.Tensor:
    """Bit planes of integer-valued weights w (Gw, K, N) float32, columns [n0, n1), as int64
    words (Gw, T, bits, words, n1 - n0): columns innermost."""
    _cpu_tensor(w, torch.float32, "w")
    _check(w.dim() == 3, "w must be (groups, K, N)")
    _check(0 < bits <= 32, f"weight bits {bits} outside 1..32")
    gw, k, n = w.shape
    _check(0 <= n0 < n1 <= n, f"columns [{n0}, {n1}) outside 0..{n}")
    bounds = _tile_bounds(tiles, k)
    words = words_per_tile(tiles)
    out = torch.empty(gw, len(tiles), bits, words, n1 - n0, dtype=torch.int64)
    library().asimc_pack_weights(w.data_ptr(), gw, k, n, n0, n1, bounds.data_ptr(), len(tiles),
                                 bits, words, out.data_ptr(), torch.get_num_threads())
    return out


_NATIVE_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CHECKED_SOURCES: "weakref.WeakSet" = weakref.WeakSet()     # ColumnTables with checked maps


def _uint32_bits(values: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2^32) as the same 32 bits in int32."""
    return torch.where(values >= 1 << 31, values - (1 << 32), values).to(torch.int32).contiguous()


def compact_guide(guide: torch.Tensor) -> torch.Tensor:
    """The guide entries (rows, cells) in 32 bits, half the cache footprint and one 16-lane
    gather per 16 conversions: the code in the top GUIDE_BITS bits and the low GUIDE_SHIFT bits
    of the cell's next threshold. A word w in cell k shares its top bits with any threshold in
    that cell, so w > threshold compares the low bits alone; a threshold beyond the cell becomes
    all ones (never exceeded). Flagged cells and codes >= 2^GUIDE_BITS - 1 store the escape code
    2^GUIDE_BITS - 1: the kernel counts over the thresholds there."""
    low_mask = (1 << conversion_model.GUIDE_SHIFT) - 1
    escape = conversion_model.GUIDE_CELLS - 1
    threshold = guide & conversion_model.NEVER
    code = (guide >> 32) & 0xFFFF
    cell = torch.arange(conversion_model.GUIDE_CELLS, dtype=torch.int64)
    inside = (threshold >> conversion_model.GUIDE_SHIFT) == cell
    low_bits = torch.where(inside, threshold & low_mask, low_mask)
    code = torch.where(((guide & conversion_model.SCAN_FLAG) != 0) | (code >= escape),
                       escape, code)
    return _uint32_bits((code << conversion_model.GUIDE_SHIFT) | low_bits)


def native_tables(table):
    """The tables (``conversion_model.FlatTables`` or ``ColumnTables``) as convert.c reads them
    (``low`` int32, ``thresholds`` the uint32 bits in int32, ``guide`` in 32 bits:
    ``compact_guide``), converted once per layer, or once per per-column table (cached with
    ``table``)."""
    if table not in _NATIVE_TABLES:
        _check(table.low.numel() <= MAX_TABLE_ROWS, "conversion tables too long")
        changes = dict(low=table.low.to(torch.int32).contiguous(),
                       thresholds=_uint32_bits(table.thresholds), _devices={})
        if isinstance(table, conversion_model.ColumnTables):
            # every map entry names a measured distribution (checked once, not per call)
            _check(bool(((table.source >= 0) & (table.source < table.low.numel())).all()),
                   "per-column rows outside the measured distributions")
        else:
            changes["guide"] = compact_guide(table.guide)
            if table.columns is not None:
                changes["columns"] = native_tables(table.columns)
        _NATIVE_TABLES[table] = replace(table, **changes)
        if isinstance(table, conversion_model.ColumnTables):
            _CHECKED_SOURCES.add(_NATIVE_TABLES[table])
    return _NATIVE_TABLES[table]


def acim(x: torch.Tensor, wpack: torch.Tensor, acc: torch.Tensor, *, columns: int, n0: int,
         tiles, input_bits: int, weight_bits: int, cycle_low: torch.Tensor,
         cycle_bits: torch.Tensor, shift_add: torch.Tensor, votes: torch.Tensor,
         step: torch.Tensor, tile_step: int, stream: torch.Tensor | None,
         offset: torch.Tensor | None, elements: int, col_stride: int, fraction: torch.Tensor,
         gain: torch.Tensor | None, column_offset: torch.Tensor | None,
         thresholds: torch.Tensor | None, analog: torch.Tensor,
         table_base: torch.Tensor, tables: conversion_model.FlatTables, draws_codes: bool,
         levels: int) -> None:
    """acc (G, R, n1 - n0) float64 = the shift-added codes of x (G, R, K) float32 against the
    packed weight columns [n0, n1) (see convert.c, ``asimc_acim``). Per tile t: fraction (T,)
    float64, table_base (T, C*bw) int64 (the tables' row of M = 0 of each pair); gain and
    column_offset (T, bw, columns) float32, both or neither (and both with thresholds: (P, L)
    float32, the ADC thresholds of the first P physical columns, which analog conversions
    count; column n's bit i is column (n mod (P / bw)) * bw + i); analog (C*bw,) int32:
    whether a pair's conversion takes the column errors; draws_codes: noisy conversions draw
    their code from the tables (else a normal, added to the tabulated analog value)."""
    _cpu_tensor(x, torch.float32, "x")
    _check(x.dim() == 3, "x must be (groups, rows, K)")
    groups, rows_out, k = x.shape
    _cpu_tensor(wpack, torch.int64, "wpack")
    _check(wpack.dim() == 5, "wpack must come from pack_weights")
    gw, t, bw, words, width = wpack.shape
    _check(gw in (1, groups), f"weight groups {gw} must be 1 or {groups}")
    _check(t == len(tiles) and words == words_per_tile(tiles) and bw == weight_bits,
           "wpack was packed for other tiles or weight bits")
    _check(0 <= n0 and n0 + width <= columns, f"columns [{n0}, {n0 + width}) outside 0..{columns}")
    _cpu_tensor(acc, torch.float64, "acc", groups * rows_out * width)
    _check(0 < input_bits <= MAX_INPUT_BITS, f"input bits {input_bits} outside 1..32")
    _check(input_bits * weight_bits <= MAX_PLANE_PAIRS, "too many bit planes")
    cycles = cycle_low.numel()
    pairs = cycles * weight_bits
    _cpu_tensor(cycle_low, torch.int32, "cycle_low")
    _cpu_tensor(cycle_bits, torch.int32, "cycle_bits", cycles)
    _check(bool(((cycle_low >= 0) & (cycle_bits > 0)
                 & (cycle_low + cycle_bits <= input_bits)).all()), "cycles outside the input bits")
    _check_pairs(pairs, shift_add, votes, step, analog)
    _cpu_tensor(fraction, torch.float64, "fraction", t)
    _cpu_tensor(table_base, torch.int64, "table_base", t * pairs)
    rows = tables.low.numel()
    for name in ("analog", "sigma", "code"):
        _cpu_tensor(getattr(tables, name), torch.float32, f"tables.{name}", rows)
    _cpu_tensor(tables.low, torch.int32, "tables.low", rows)
    threshold_width = tables.thresholds.shape[1]
    _cpu_tensor(tables.thresholds, torch.int32, "tables.thresholds", rows * threshold_width)
    _cpu_tensor(tables.guide, torch.int32, "tables.guide", rows * conversion_model.GUIDE_CELLS)
    # Every MAC a tile can produce stays inside the tables: base + tile rows * (2^bits - 1).
    tile_rows = torch.tensor([k1 - k0 for k0, k1 in tiles], dtype=torch.int64).view(-1, 1, 1)
    top_mac = tile_rows * ((1 << cycle_bits.to(torch.int64)) - 1).view(1, cycles, 1)
    most = table_base.view(t, cycles, weight_bits) + top_mac
    column_map = torch.tensor(tables.column_map or [[-1] * pairs] * t, dtype=torch.int64)
    _check(column_map.shape == (t, pairs), "column_map must be (tiles, pairs)")
    flat = column_map.view(t, cycles, weight_bits) < 0
    _check(bool((table_base >= 0).all()) and int(torch.where(flat, most, -1).max()) < rows,
           "conversion tables do not cover the MAC range")
    measured = tables.columns
    if measured is not None:
        _check(stream is not None and draws_codes, "a per-column table draws codes from words")
        _check(measured.physical >= weight_bits, "fewer physical columns than weight bits")
        entries = measured.source.numel()
        _cpu_tensor(measured.shift, torch.int32, "columns.shift", entries)
        _cpu_tensor(measured.source, torch.int32, "columns.source", entries)
        distributions = measured.low.numel()
        _check(measured in _CHECKED_SOURCES, "per-column tables not from native_tables")
        _cpu_tensor(measured.low, torch.int32, "columns.low", distributions)
        _cpu_tensor(measured.thresholds, torch.int32, "columns.thresholds",
                    distributions * measured.thresholds.shape[1])
        last = column_map.view(t, cycles, weight_bits) + top_mac * measured.physical \
            + measured.physical - 1
        _check(int(torch.where(flat, -1, last).max()) < entries,
               "the per-column map does not cover the MAC range")
    else:
        _check(bool((column_map < 0).all()), "column_map without per-column tables")
    _check_column_errors(gain, column_offset, thresholds, t, bw, columns, levels)
    noisy = _check_noise_keys(stream, offset, groups * rows_out)
    bounds = _tile_bounds(tiles, k)
    library().asimc_acim(
        x.data_ptr(), wpack.data_ptr(), acc.data_ptr(), groups, rows_out, k, gw, columns, n0,
        n0 + width, bounds.data_ptr(), t, words, input_bits, weight_bits, cycles,
        cycle_low.data_ptr(), cycle_bits.data_ptr(), shift_add.data_ptr(), votes.data_ptr(),
        step.data_ptr(), tile_step, stream.data_ptr() if noisy else None,
        offset.data_ptr() if noisy else None, elements, col_stride, fraction.data_ptr(),
        gain.data_ptr() if gain is not None else None,
        column_offset.data_ptr() if gain is not None else None,
        thresholds.data_ptr() if thresholds is not None else None,
        thresholds.shape[0] // bw if thresholds is not None else 1, analog.data_ptr(),
        table_base.data_ptr(), tables.analog.data_ptr(), tables.sigma.data_ptr(),
        tables.code.data_ptr(), tables.low.data_ptr(), tables.thresholds.data_ptr(),
        threshold_width, tables.guide.data_ptr(), int(draws_codes), float(levels),
        torch.get_num_threads(),
        *((None,) * 5 + (0, 0) if measured is None else (
            column_map.data_ptr(), measured.source.data_ptr(), measured.shift.data_ptr(),
            measured.low.data_ptr(), measured.thresholds.data_ptr(),
            measured.thresholds.shape[1], measured.physical)))


def _check_pairs(pairs: int, shift_add: torch.Tensor, votes: torch.Tensor, step: torch.Tensor,
                 analog: torch.Tensor) -> None:
    """Per (cycle, weight bit) pair: shift_add float64, votes (0..MAX_VOTES) and analog int32,
    step int64."""
    _cpu_tensor(shift_add, torch.float64, "shift_add", pairs)
    _cpu_tensor(votes, torch.int32, "votes", pairs)
    _check(bool(((votes >= 0) & (votes <= MAX_VOTES)).all()), f"votes outside 0..{MAX_VOTES}")
    _cpu_tensor(step, torch.int64, "step", pairs)
    _cpu_tensor(analog, torch.int32, "analog", pairs)


def _check_column_errors(gain: torch.Tensor | None, column_offset: torch.Tensor | None,
                         thresholds: torch.Tensor | None, tiles: int, bw: int, columns: int,
                         levels: int) -> None:
    """gain and column_offset (T, bw, columns) float32, both or neither; thresholds (P, L)
    float32 with both."""
    _check((gain is None) == (column_offset is None), "gain and column_offset: both or neither")
    if gain is not None:
        _cpu_tensor(gain, torch.float32, "gain", tiles * bw * columns)
        _cpu_tensor(column_offset, torch.float32, "column_offset", tiles * bw * columns)
    if thresholds is not None:
        _check(gain is not None, "thresholds need gain and column_offset")
        _cpu_tensor(thresholds, torch.float32, "thresholds")
        _check(thresholds.dim() == 2 and thresholds.shape[1] == levels
               and thresholds.shape[0] >= bw and thresholds.shape[0] % bw == 0
               and thresholds.numel() < 1 << 31, "thresholds of another chip or layer")


def _check_noise_keys(stream: torch.Tensor | None, offset: torch.Tensor | None,
                      rows: int) -> bool:
    """Whether the call is noisy; its keys (rows,) int64 each."""
    if stream is None:
        return False
    _cpu_tensor(stream, torch.int64, "stream", rows)
    _cpu_tensor(offset, torch.int64, "offset", rows)
    return True


def convert_macs(mac: torch.Tensor, acc: torch.Tensor, *, columns: int, n0: int, tile: int,
                 shift_add: torch.Tensor, votes: torch.Tensor, step: torch.Tensor,
                 tile_step: int, stream: torch.Tensor | None, offset: torch.Tensor | None,
                 elements: int, col_stride: int, fraction: float, gain: torch.Tensor | None,
                 column_offset: torch.Tensor | None, thresholds: torch.Tensor | None,
                 analog: torch.Tensor, full_scale: torch.Tensor, alpha: torch.Tensor,
                 sigma_random: torch.Tensor, nonlinear2: float, rows: float,
                 levels: int) -> None:
    """acc (G, R, width) float64 += fraction x the shift-added codes of one row tile's MACs
    mac (G, C, R, bw, width) float32 of output columns [n0, n0 + width) (see convert.c,
    ``asimc_convert_macs``): cell or driver mismatch, a normal drawn per noisy conversion.
    Per pair (C*bw): shift_add float64, votes and analog int32, step int64, alpha and
    sigma_random float32 (0 on digital pairs); full_scale (C,) float32 the tile's ranges;
    gain, column_offset and thresholds as ``acim``; nonlinear2 snl^2 (negative: no
    non-linear term) and rows (f * rows) of the non-linear noise."""
    _cpu_tensor(mac, torch.float32, "mac")
    _check(mac.dim() == 5, "mac must be (groups, cycles, rows, weight bits, columns)")
    groups, cycles, rows_out, bw, width = mac.shape
    pairs = cycles * bw
    _check(0 <= n0 and n0 + width <= columns, f"columns [{n0}, {n0 + width}) outside 0..{columns}")
    _cpu_tensor(acc, torch.float64, "acc", groups * rows_out * width)
    _check_pairs(pairs, shift_add, votes, step, analog)
    _cpu_tensor(full_scale, torch.float32, "full_scale", cycles)
    _cpu_tensor(alpha, torch.float32, "alpha", pairs)
    _cpu_tensor(sigma_random, torch.float32, "sigma_random", pairs)
    _check(tile >= 0, "negative tile")
    if gain is not None:
        _check(gain.dim() == 3 and tile < gain.shape[0], "gain of another layer")
    _check_column_errors(gain, column_offset, thresholds, gain.shape[0] if gain is not None
                         else 0, bw, columns, levels)
    noisy = _check_noise_keys(stream, offset, groups * rows_out)
    library().asimc_convert_macs(
        mac.data_ptr(), acc.data_ptr(), groups, rows_out, columns, n0, width, tile, bw, cycles,
        shift_add.data_ptr(), votes.data_ptr(), step.data_ptr(), tile_step,
        stream.data_ptr() if noisy else None, offset.data_ptr() if noisy else None, elements,
        col_stride, float(fraction), gain.data_ptr() if gain is not None else None,
        column_offset.data_ptr() if gain is not None else None,
        thresholds.data_ptr() if thresholds is not None else None,
        thresholds.shape[0] // bw if thresholds is not None else 1, analog.data_ptr(),
        full_scale.data_ptr(), alpha.data_ptr(), sigma_random.data_ptr(), float(nonlinear2),
        float(rows), float(levels), torch.get_num_threads())


def random_words(stream: int, counters: torch.Tensor) -> torch.Tensor:
    """The native Philox words (…, 4) (int64 in [0, 2^32)) of ``counters`` in ``stream``."""
    counters = counters.contiguous()
    _cpu_tensor(counters, torch.int64, "counters")
    out = torch.empty(*counters.shape, 4, dtype=torch.int32)
    library().asimc_random_words(stream, counters.data_ptr(), counters.numel(), out.data_ptr())
    return out.to(torch.int64) & 0xFFFFFFFF


def standard_normal_quads(stream: int, counters: torch.Tensor) -> torch.Tensor:
    """The native four N(0, 1) draws (…, 4) of ``counters`` (int64, CPU) in ``stream``."""
    counters = counters.contiguous()
    _cpu_tensor(counters, torch.int64, "counters")
    out = torch.empty(*counters.shape, 4, dtype=torch.float32)
    library().asimc_standard_normal_quads(stream, counters.data_ptr(), counters.numel(),
                                          out.data_ptr())
    return out
