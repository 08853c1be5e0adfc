"""Pieces shared by several sub-commands: sizes, input files, progress."""
from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import InputDataError, UsageError
from ..jsonout import dumps

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'512M', '2G', '1GiB', '65536' -> bytes (powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"cannot read the size {text!r}: write e.g. 512M, 2G or 1048576")
    number, prefix = float(match.group(1)), match.group(2).lower()
    size = int(number * 1024 ** " kmgt".index(prefix or " "))
    if size < 1 << 16:
        raise UsageError(f"memory budget {text!r} is too small: give at least 64K")
    return size


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not positive: give 1 or more")
    return value


def _bounded_count(maximum: int, too_many: str):
    """An argparse type: a whole number from 1 to ``maximum``; ``too_many`` says why not more
    (formatted with ``value`` and ``maximum``)."""
    def count(text: str) -> int:
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(too_many.format(value=value, maximum=maximum))
        return value
    return count


MAX_SEEDS = 1000
MAX_WORKERS = 1024
# How many noise seeds (each seed is a full run of the data) and worker processes.
seed_count = _bounded_count(MAX_SEEDS, "{value} seeds would run the data {value} times per "
                                       "chip; give at most {maximum}")
worker_count = _bounded_count(MAX_WORKERS, "{value} workers is more than {maximum}: give about "
                                           "the number of cores")


def write_report(path: str, text: str) -> None:
    """Write a report file, a write error being the user's (a full disk, no permission)."""
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the report ({error.strerror})") from None


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1 (a fraction: 0.9 = 90%)")
    return value


def writable_path(path: str | None, what: str) -> Path | None:
    """Check before any work starts that ``path`` can be written: its folder exists."""
    if path is None:
        return None
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise UsageError(f"{path}: is a folder; give the name of the {what} to write")
    if not folder.is_dir():
        raise UsageError(f"{path}: the folder {str(folder)!r} does not exist; create it first "
                         f"(the {what} is written there)")
    return p


_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK"
_EXPECTED_INPUT = ("expected a NumPy array saved with np.save (.npy), or arrays saved with "
                   "np.savez (.npz, one per model input name, or `x`)")


def load_input_file(path: str):
    """An .npy array or an .npz file (a dict of arrays by name)."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"{path}: no such file" if not p.exists() else
                             f"{path}: is not a file")
    try:
        with open(p, "rb") as handle:
            head = handle.read(6)
    except OSError as error:
        raise InputDataError(f"{path}: cannot read it ({error.strerror})") from None
    if not head.startswith((_NPY_MAGIC, _ZIP_MAGIC)):
        raise InputDataError(f"{path}: not a NumPy .npy or .npz file; {_EXPECTED_INPUT}")
    try:
        if head.startswith(_ZIP_MAGIC):
            with np.load(p, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        return np.load(p, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error):
            raise InputDataError(f"{path}: holds Python objects (dtype object), which asimc "
                                 "never loads (loading them could run code); save numeric "
                                 "arrays") from None
        raise InputDataError(f"{path}: cannot read it as a NumPy file ({error})") from None
    except (OSError, EOFError, Exception) as error:   # zipfile.BadZipFile and friends
        raise InputDataError(f"{path}: a damaged NumPy file ({type(error).__name__}: "
                             f"{error}); {_EXPECTED_INPUT}") from None


def inputs_for(graph, data):
    """Map an .npz dict onto the model's inputs (a lone `x` feeds a single-input model)."""
    if isinstance(data, dict):
        names = [i.name for i in graph.inputs]
        if len(names) == 1 and names[0] not in data and "x" in data:
            return data["x"]
        return {k: v for k, v in data.items() if k in names or k not in ("y",)}
    return data


def print_json(value) -> None:
    """Strict JSON on stdout (no Infinity/NaN; see asimc.jsonout)."""
    sys.stdout.write(dumps(value, indent=2) + "\n")


def print_warnings(warnings, stream=None) -> None:
    """The same `warning: ...` lines in every command (run, golden, compare); on stderr where
    stdout carries JSON or CSV."""
    for warning in warnings:
        print(f"warning: {warning}", file=stream or sys.stdout)


class Progress:
    """Progress of a long command, on stderr.

    On a terminal: a bar with the step now running (e.g. the chip), the count, the time spent
    and an estimate of the time left. Anywhere else (a log, a pipe): one line per finished
    step, ``description [i/N] step done in T s``, so a long job in a log is never silent.
    Call it with ``(finished, upcoming)`` after each step; ``upcoming`` may be None.
    """

    def __init__(self, total: int, description: str, terminal: bool | None = None,
                 stream=None):
        self.total, self.description = total, description
        self.stream = stream or sys.stderr
        self.terminal = _isatty(self.stream) if terminal is None else terminal
        self.done = 0
        self._last = self._start = time.monotonic()
        self._bar = None
        if self.terminal and total > 0:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(),
                            transient=True, console=Console(file=self.stream))
            self._task = self._bar.add_task(description, total=total)

    def __enter__(self):
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc):
        if self._bar:
            self._bar.stop()

    def __call__(self, finished: str = "", upcoming: str | None = None) -> None:
        self.done += 1
        now = time.monotonic()
        if self._bar:
            text = f"{self.description}: {upcoming}" if upcoming else self.description
            self._bar.update(self._task, advance=1, description=text)
            self._bar.refresh()       # every step is seen, however fast (a few per command)
        elif self.total > 0:
            step = f" {finished}" if finished else ""
            print(f"{self.description} [{self.done}/{self.total}]{step} done in "
                  f"{now - self._last:.1f} s", file=self.stream, flush=True)
        self._last = now

    def callback(self):
        return self


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LayerProgress(Progress):
    """Progress over on-chip layer executions: called with the node name after each."""

    def __call__(self, name: str = "", upcoming: str | None = None) -> None:
        super().__call__(name, upcoming)
