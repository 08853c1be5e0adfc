"""Pieces shared by several sub-commands: sizes, input files, progress."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from ..errors import InputDataError, UsageError

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


def load_input_file(path: str):
    """An .npy array or an .npz file (a dict of arrays by name)."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"{path}: no such file" if not p.exists() else
                             f"{path}: is not a file")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputDataError(f"{path}: cannot read it as a NumPy .npy/.npz file ({error})") \
            from None


def inputs_for(graph, data):
    """Map an .npz dict onto the model's inputs (a lone `x` feeds a single-input model)."""
    if isinstance(data, dict):
        names = [i.name for i in graph.inputs]
        if len(names) == 1 and names[0] not in data and "x" in data:
            return data["x"]
        return {k: v for k, v in data.items() if k in names or k not in ("y",)}
    return data


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class LayerProgress:
    """A progress bar over on-chip layer executions (shown on a terminal only)."""

    def __init__(self, total: int, description: str, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress = None
        if self.enabled and total > 0:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      transient=True)
            self._task = self._progress.add_task(description, total=total)

    def __enter__(self):
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress:
            self._progress.stop()

    def __call__(self, _name: str = "") -> None:
        if self._progress:
            self._progress.advance(self._task)

    def callback(self):
        return self if self._progress else None
