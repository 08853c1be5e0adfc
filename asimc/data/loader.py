"""``load_dataset``: one entry point for every data source the commands accept (``--data``)."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputDataError, UsageError
from . import digits, idx
from .arrays import load_npy, load_npz
from .dataset import Dataset
from .images import IMAGE_SUFFIXES, check_image_size, load_image_folder

# The built-in data sets: name -> the loader of one split (train, test or all).
BUILT_IN = {
    "digits": digits.load_digits_split,
    "digits32": lambda split: digits.load_digits_split(split, upscaled=True),
    "fashion-mnist": idx.load_fashion_mnist,
}
IDX_PREFIX = "idx:"
SPEC_HELP = ("'digits' (or digits:train, digits:test, digits:all; digits32 for the same "
             "images upscaled to 3x32x32), 'fashion-mnist' (and :train, :all), idx:DIR (a "
             "folder of MNIST-format IDX files), a .npz file with x and "
             "optional y, a .npy file, or a folder of images in class sub-folders")


def load_dataset(spec: str | os.PathLike, *, split: str = "test", limit: int | None = None,
                 image_size: tuple[int, int] | None = None, grayscale: bool | None = None,
                 mean: tuple[float, ...] | None = None,
                 std: tuple[float, ...] | None = None) -> Dataset:
    """Load a data set named by ``spec``.

    ``spec`` is a built-in name (``digits``, ``digits32`` or ``fashion-mnist``, optionally
    ``NAME:SPLIT``; built-in names win over a file of the same name, write ``./digits`` for the
    file), ``idx:DIR`` (optionally ``idx:DIR:SPLIT``: the four MNIST-format IDX files in DIR or
    in torchvision's ``DIR/MNIST/raw`` layouts, see ``asimc.data.idx``), a ``.npz`` file (``x``
    and optional integer ``y``), a ``.npy`` file (``x`` only) or a folder of images in class
    sub-folders.

    ``split`` picks the built-in split (``train``, ``test`` or ``all``) when the spec names none;
    files and folders are used whole. ``limit`` keeps the first N samples. ``image_size``
    (height, width) and ``grayscale`` apply to image folders (by default: no resize, which needs
    all images the same size; grayscale when every image is). ``mean`` and ``std`` (one value,
    or one per channel on axis 1) normalise any data set: ``x = (x - mean) / std``.
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise UsageError(f"a data set is named by a string or path, not {type(spec).__name__}")
    text = os.fspath(spec)
    _check_limit(limit)
    image_size = check_image_size(image_size)
    base, _, chosen_split = text.partition(":")
    if split not in digits.SPLITS:
        raise UsageError(f"split must be one of {', '.join(digits.SPLITS)}, got {split!r}")
    if base in BUILT_IN:
        _refuse_image_options(text, image_size, grayscale)
        dataset = BUILT_IN[base](_check_split(chosen_split or split, text))
    elif text.startswith(IDX_PREFIX):
        _refuse_image_options(text, image_size, grayscale)
        folder, _, named_split = text[len(IDX_PREFIX):].rpartition(":")
        if named_split not in digits.SPLITS:      # a folder name, not a split
            folder, named_split = text[len(IDX_PREFIX):], split
        dataset = idx.load_idx_folder(folder, named_split)
    else:
        dataset = _load_path(text, limit=limit, image_size=image_size, grayscale=grayscale)
    if limit is not None:
        dataset = dataset.head(limit)
    if mean is not None or std is not None:
        dataset = normalise(dataset, mean, std)
    return dataset


def _load_path(text: str, *, limit, image_size, grayscale) -> Dataset:
    path = Path(text).expanduser()
    if not path.exists():
        if _is_path_like(text):
            raise InputDataError(f"no such file or folder: {text}")
        raise InputDataError(f"unknown data set '{text}': not a built-in data set "
                             f"({', '.join(BUILT_IN)}) nor an existing path; expected {SPEC_HELP}")
    if path.is_dir():
        return load_image_folder(path, limit=limit, image_size=image_size, grayscale=grayscale)
    _refuse_image_options(text, image_size, grayscale)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".npy":
        return load_npy(path)
    hint = " (put images in a folder, one sub-folder per class)" if suffix in IMAGE_SUFFIXES else ""
    raise InputDataError(f"{text}: unsupported data file type '{suffix or path.name}'{hint}; "
                         f"expected {SPEC_HELP}")


def _is_path_like(text: str) -> bool:
    return os.sep in text or "/" in text or Path(text).suffix.lower() in (".npz", ".npy")


def _check_split(split: str, spec: str) -> str:
    if split not in digits.SPLITS:
        raise InputDataError(f"unknown split '{split}' in data set '{spec}'; expected one of "
                             f"{', '.join(digits.SPLITS)}")
    return split


def _check_limit(limit) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise UsageError(f"limit must be a positive number of samples, got {limit!r}")


def _refuse_image_options(spec: str, image_size, grayscale) -> None:
    if image_size is not None or grayscale is not None:
        raise UsageError(f"image size and grayscale options apply to image folders only, "
                         f"not to '{spec}'")


def normalise(dataset: Dataset, mean, std) -> Dataset:
    """``(x - mean) / std`` with one value, or one per channel (axis 1)."""
    x = dataset.x
    channels = x.shape[1] if x.ndim >= 2 else 1
    mean_array = _per_channel("mean", mean, 0.0, channels, x.ndim)
    std_array = _per_channel("std", std, 1.0, channels, x.ndim)
    if np.any(std_array <= 0):
        raise UsageError(f"std must be positive, got {std!r}")
    normalised = ((x - mean_array) / std_array).astype(np.float32)
    return replace(dataset, x=normalised,
                   description=f"{dataset.description}; normalised with mean {_show(mean)}, "
                               f"std {_show(std)}")


def _per_channel(name: str, values, default: float, channels: int, ndim: int) -> np.ndarray:
    if values is None:
        return np.float32(default)
    try:
        array = np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be numbers, got {values!r}") from None
    if not np.all(np.isfinite(array)):
        raise UsageError(f"{name} must be finite, got {values!r}")
    if array.size == 1:
        return array[0]
    if array.size != channels or ndim < 2:
        raise UsageError(f"{name} has {array.size} values but the data has {channels} channels "
                         "(axis 1); give one value, or one per channel")
    return array.reshape((1, channels) + (1,) * (ndim - 2))


def _show(values) -> str:
    if values is None:
        return "none"
    return ", ".join(f"{float(v):g}" for v in np.asarray(values, dtype=np.float64).reshape(-1))
