"""The built-in ``digits`` data set: the UCI optical handwritten digits, 8x8, as scikit-learn ships them.

The images, labels and the fixed split ship inside asimc (``digits.npz``, 49 kB, made by
tools/make_digits_npz.py from scikit-learn's copy and checked against it by the tests), so
loading them needs neither a download nor scikit-learn's slow import. Pixels are 0..16 in the
original; they are divided by 16 to lie in [0, 1], and each image is one channel: x has shape
(N, 1, 8, 8).

The train/test split is fixed and is the one every example model was trained with, so the test
split is never trained on:

    sklearn.model_selection.train_test_split(test_size=0.25, random_state=0, stratify=y)

which gives 1347 training and 450 test images (1797 in all), each class in the same proportion.

``digits32`` is the same images and split, upscaled for CIFAR-shaped networks: bilinear
interpolation (half-pixel centres, as torch's ``interpolate(..., align_corners=False)`` and
onnxruntime's ``Resize`` do) from 8x8 to 32x32, the gray value repeated on three channels, so x has
shape (N, 3, 32, 32), still in [0, 1].
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .dataset import Dataset

SPLITS = ("train", "test", "all")
UPSCALED_SIZE = 32
TEST_SIZE = 0.25
RANDOM_STATE = 0
TRAIN_COUNT = 1347
TEST_COUNT = 450

_SPLIT_TEXT = (f"train_test_split(test_size={TEST_SIZE}, random_state={RANDOM_STATE}, "
               "stratify=y)")


_FILE = Path(__file__).with_name("digits.npz")


@lru_cache(maxsize=1)
def _stored() -> dict[str, np.ndarray]:
    with np.load(_FILE) as stored:
        return {name: stored[name] for name in stored.files}


@lru_cache(maxsize=1)
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    stored = _stored()
    x = (stored["pixels"] / 16.0).astype(np.float32)[:, None, :, :]
    y = stored["labels"].astype(np.int64)
    for array in (x, y):            # cached and shared: nobody may write into them
        array.setflags(write=False)
    return x, y


@lru_cache(maxsize=1)
def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the 1797 images) of the fixed train and test splits."""
    train, test = (_stored()[name].astype(np.int64) for name in ("train", "test"))
    assert len(train) == TRAIN_COUNT and len(test) == TEST_COUNT
    for array in (train, test):
        array.setflags(write=False)
    return train, test


def _bilinear_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) weights of 1-D bilinear resizing with half-pixel centres, edges clamped."""
    centres = (np.arange(target) + 0.5) * (source / target) - 0.5
    centres = np.clip(centres, 0, source - 1)
    low = np.floor(centres).astype(np.int64)
    high = np.minimum(low + 1, source - 1)
    frac = centres - low
    weights = np.zeros((target, source))
    weights[np.arange(target), low] += 1 - frac
    weights[np.arange(target), high] += frac
    return weights


@lru_cache(maxsize=1)
def _all_digits32() -> np.ndarray:
    x, _ = _all_digits()
    resize = _bilinear_matrix(x.shape[-1], UPSCALED_SIZE)
    gray = np.einsum("ij,njw,kw->nik", resize, x[:, 0].astype(np.float64), resize)
    upscaled = np.repeat(gray[:, None], 3, axis=1).astype(np.float32)
    upscaled.setflags(write=False)
    return upscaled


def load_digits_split(split: str, upscaled: bool = False) -> Dataset:
    """One split of digits: ``train`` (1347 images), ``test`` (450) or ``all`` (1797).

    ``upscaled``: the ``digits32`` variant, (N, 3, 32, 32) (see the module's docstring)."""
    x, y = _all_digits()
    if upscaled:
        x = _all_digits32()
    if split == "all":
        picked = np.arange(len(y))
        how = "all 1797 images"
    else:
        train, test = split_indices()
        picked = train if split == "train" else test
        how = f"{split} split, {len(picked)} of 1797 images, {_SPLIT_TEXT}"
    if upscaled:
        return Dataset(
            name=f"digits32:{split}", x=x[picked], y=y[picked],
            description=f"scikit-learn digits ({how}); upscaled bilinearly to 32x32, gray on 3 "
                        "channels, x shape (N, 3, 32, 32), pixels / 16 in [0, 1]",
            classes=tuple(str(digit) for digit in range(10)))
    return Dataset(
        name=f"digits:{split}",
        x=x[picked],          # fancy indexing copies, so the caller owns writable arrays
        y=y[picked],
        description=f"scikit-learn digits ({how}); 8x8 grayscale, x shape (N, 1, 8, 8), "
                    "pixels / 16 in [0, 1]",
        classes=tuple(str(digit) for digit in range(10)),
    )
