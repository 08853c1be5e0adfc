"""Data sets saved as numpy files: ``.npz`` with ``x`` and optional ``y``, or ``.npy`` with x only.

Files are always read with ``allow_pickle=False``: a data file must never run code when loaded.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from .dataset import Dataset
from .validate import labels_as_int64, samples_as_float32


def load_npz(path: Path) -> Dataset:
    loaded = _open(path, ".npz")
    if isinstance(loaded, np.ndarray):
        raise InputDataError(f"{path}: holds a single array, not a .npz archive; rename it to "
                             ".npy or save x and y with np.savez(path, x=..., y=...)")
    try:
        with loaded as archive:
            if "x" not in archive.files:
                found = ", ".join(repr(name) for name in archive.files) or "no arrays"
                raise InputDataError(
                    f"{path}: no array named 'x' (found {found}); save the samples as x and the "
                    "optional labels as y, e.g. np.savez(path, x=images, y=labels)")
            x = _read_member(archive, "x", path)
            y = _read_member(archive, "y", path) if "y" in archive.files else None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise InputDataError(f"{path}: cannot read it as a .npz file ({error})") from None
    x = samples_as_float32(x, str(path))
    y = None if y is None else labels_as_int64(y, len(x), str(path))
    return Dataset(name=path.name, x=x, y=y, description=_describe(path, x, y))


def load_npy(path: Path) -> Dataset:
    x = _open(path, ".npy")
    if not isinstance(x, np.ndarray):
        x.close()
        raise InputDataError(f"{path}: holds a .npz archive, not a single array; rename it to .npz")
    x = samples_as_float32(x, str(path))
    return Dataset(name=path.name, x=x, y=None, description=_describe(path, x, None))


def _open(path: Path, kind: str):
    """``np.load`` with user-facing errors: an ndarray (.npy content) or an open NpzFile."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickled data" in str(error):
            raise InputDataError(
                f"{path}: not a numpy {kind} file (numpy took it for a pickle, which asimc never "
                "loads)") from None
        raise InputDataError(_pickle_message(path, "the array", error)) from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise InputDataError(f"{path}: cannot read it as a {kind} file ({error})") from None


def _read_member(archive, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as error:
        raise InputDataError(_pickle_message(path, f"array '{name}'", error)) from None


def _pickle_message(path: Path, what: str, error: ValueError) -> str:
    if "allow_pickle" in str(error):
        return (f"{path}: {what} holds Python objects (dtype object), which asimc does not load "
                "(loading them could run code); save numeric arrays instead")
    return f"{path}: cannot read {what} ({error})"


def _describe(path: Path, x: np.ndarray, y: np.ndarray | None) -> str:
    labels = "no labels" if y is None else f"{len(np.unique(y))} label values"
    return f"{path} ({len(x)} samples, sample shape {tuple(x.shape[1:])}, {labels})"
