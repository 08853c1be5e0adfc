"""Folders of images: one sub-folder per class (labels = sorted sub-folder names).

Layout::

    data/
      cat/  001.png 002.jpg ...
      dog/  a.bmp  sub/b.gif ...     (images anywhere below a class folder count)

A folder holding images directly, with no class sub-folders, is an unlabelled data set (y is None).
Hidden files and folders and files with other extensions are ignored; an empty class folder is
still a class, so label indices always follow the sorted sub-folder names.

Samples are ordered round-robin across classes (the first file of every class, then the second...)
so that ``limit`` takes a balanced subset. Pixels are scaled to [0, 1]; x has shape (N, C, H, W)
with C = 1 (grayscale) or 3 (RGB).
"""
from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

import numpy as np

from ..errors import InputDataError, UsageError
from .dataset import Dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Pillow modes that carry no colour; a folder made only of these loads as grayscale by default.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_WIDE_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}   # 16-bit grayscale (PNG)


def load_image_folder(root: Path, *, limit: int | None, image_size: tuple[int, int] | None,
                      grayscale: bool | None) -> Dataset:
    classes, files, labels = _find_images(root)
    if limit is not None:
        files, labels = files[:limit], labels[:limit]
    if grayscale is None:
        grayscale = all(_is_gray(root / name) for name in files)
    arrays = [_read(root / name, grayscale, image_size) for name in files]
    _require_one_size(root, files, arrays)
    x = np.stack(arrays)
    y = None if classes is None else np.asarray(labels, dtype=np.int64)
    channels = "grayscale" if grayscale else "RGB"
    if classes is None:
        what = f"{len(x)} unlabelled images"
    else:
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        what = f"{len(x)} images, {len(classes)} classes: {shown}"
    return Dataset(
        name=root.name or str(root),
        x=x,
        y=y,
        description=f"image folder {root} ({what}); {channels}, x shape (N, {x.shape[1]}, "
                    f"{x.shape[2]}, {x.shape[3]}), pixels in [0, 1]",
        classes=classes,
        sources=tuple(files),
    )


def _find_images(root: Path) -> tuple[tuple[str, ...] | None, list[str], list[int]]:
    """Class names (None when unlabelled), image paths relative to root, and their labels."""
    entries = sorted(entry for entry in root.iterdir() if not entry.name.startswith("."))
    class_dirs = [entry for entry in entries if entry.is_dir()]
    loose = [entry for entry in entries if entry.is_file() and _is_image(entry)]
    per_class = [sorted(_images_below(folder)) for folder in class_dirs]
    if any(per_class) and loose:
        raise InputDataError(
            f"{root}: holds images both directly ({loose[0].name}, ...) and in class sub-folders; "
            "put every image in the sub-folder of its class")
    if not any(per_class) and not loose:
        raise InputDataError(
            f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} files, in class "
            "sub-folders or directly in the folder)")
    if loose:
        return None, [entry.name for entry in loose], [0] * len(loose)
    files, labels = [], []
    for row in zip_longest(*per_class):          # round-robin: a limit takes every class
        for label, path in enumerate(row):
            if path is not None:
                files.append(path.relative_to(root).as_posix())
                labels.append(label)
    return tuple(folder.name for folder in class_dirs), files, labels


def _images_below(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not hidden and path.is_file() and _is_image(path):
            found.append(path)
    return found


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _is_gray(path: Path) -> bool:
    """Whether an image carries no colour, read from its header (and palette) only."""
    from PIL import Image   # imported late: only image folders need Pillow

    try:
        with Image.open(path) as image:     # lazy: decodes no pixels
            if image.mode == "P":           # GIF and some PNGs: gray when the palette is
                palette = image.getpalette() or []
                return all(palette[i] == palette[i + 1] == palette[i + 2]
                           for i in range(0, len(palette) - 2, 3))
            return image.mode in _GRAY_MODES
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InputDataError(f"cannot read image {path}: {error}") from None


def _read(path: Path, grayscale: bool, image_size: tuple[int, int] | None) -> np.ndarray:
    """One image as float32 (C, H, W) in [0, 1]."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)    # honour camera rotation (JPEG)
            image.load()
            if image.mode in _WIDE_MODES:
                # 16-bit grayscale: Pillow's convert("L") would clip, not scale.
                plane = np.asarray(image, dtype=np.float32) / 65535.0
                image = Image.fromarray(plane)     # mode "F"
                scale = 1.0
            else:
                image = image.convert("L" if grayscale else "RGB")
                scale = 1.0 / 255.0
            if image_size is not None:
                height, width = image_size
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) * scale
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InputDataError(f"cannot read image {path}: {error}") from None
    if pixels.ndim == 2:
        pixels = pixels[None]
        if not grayscale:
            pixels = np.repeat(pixels, 3, axis=0)
    else:
        pixels = pixels.transpose(2, 0, 1)
    return np.clip(pixels, 0.0, 1.0)


def _require_one_size(root: Path, files: list[str], arrays: list[np.ndarray]) -> None:
    first = arrays[0].shape[1:]
    for name, array in zip(files, arrays):
        if array.shape[1:] != first:
            raise InputDataError(
                f"{root}: images differ in size ({files[0]} is {first[0]}x{first[1]}, {name} is "
                f"{array.shape[1]}x{array.shape[2]}, height x width); pass an image size to "
                "resize them all")


def check_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        height, width = (int(side) for side in image_size)
    except (TypeError, ValueError):
        raise UsageError(f"image size must be (height, width), got {image_size!r}") from None
    if height < 1 or width < 1:
        raise UsageError(f"image size must be positive, got {image_size!r}")
    return height, width
