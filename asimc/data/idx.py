"""IDX files (the MNIST format) and the data sets stored as four of them: ``fashion-mnist`` and
``idx:DIR``.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian int32 per dimension, then the values in C order. MNIST, Fashion-MNIST and KMNIST
ship as four such files, gzipped or not::

    train-images-idx3-ubyte   (N, H, W) uint8 pixels      train-labels-idx1-ubyte   (N,) uint8
    t10k-images-idx3-ubyte    the test split              t10k-labels-idx1-ubyte

(``train-images.idx3-ubyte``, with a dot, is accepted too.) ``idx:DIR`` reads them from DIR or
from torchvision's layouts under it (``DIR/FashionMNIST/raw``, ``DIR/MNIST/raw``,
``DIR/KMNIST/raw``), so files a user already has are used as they are. ``fashion-mnist`` reads
them from the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
or, when the ASIMC_DATASETS environment variable names roots, from ``ROOT/fashion-mnist`` or
``ROOT/FashionMNIST/raw`` under them. Nothing is downloaded.

Pixels are divided by 255 to lie in [0, 1] and each image is one channel: x has shape
(N, 1, H, W). The files are parsed strictly (magic number, type, dimensions, exact size, labels
matching images); a file that breaks the format is an ``InputDataError`` naming the file.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from .dataset import Dataset

IMAGES_RANK, LABELS_RANK = 3, 1
UNSIGNED_BYTE = 0x08
# The other IDX type codes, named in the error for a file that uses one.
TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int",
              0x0D: "float", 0x0E: "double"}
FILE_PREFIX = {"train": "train", "test": "t10k"}
# torchvision's folders under a root (torchvision.datasets.MNIST(root) and friends).
TORCHVISION_FOLDERS = ("FashionMNIST/raw", "MNIST/raw", "KMNIST/raw")

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_ROOTS = ("/usr/share/datasets",)
DATASETS_VARIABLE = "ASIMC_DATASETS"


@dataclass(frozen=True)
class IdxSplit:
    """Where one split's images and labels are."""

    split: str
    images: Path
    labels: Path


def read_idx(path: Path, rank: int) -> np.ndarray:
    """The unsigned-byte array stored in IDX file ``path`` (gzipped when it ends in .gz), which
    must have ``rank`` dimensions and exactly as many bytes as they say."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise InputDataError(f"{path}: not an IDX file: {len(raw)} bytes, shorter than the "
                             "4-byte magic number")
    zero, type_code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0:
        raise InputDataError(f"{path}: not an IDX file: its magic number 0x{raw[:4].hex()} does "
                             "not start with two zero bytes")
    if type_code != UNSIGNED_BYTE:
        name = TYPE_NAMES.get(type_code, f"unknown type 0x{type_code:02x}")
        raise InputDataError(f"{path}: IDX values are {name}; images and labels must be "
                             "unsigned bytes (type 0x08)")
    if ndim != rank:
        raise InputDataError(f"{path}: IDX file has {ndim} dimension(s), expected {rank} "
                             f"({'images: count, height, width' if rank == 3 else 'labels'})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputDataError(f"{path}: IDX file ends inside its header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected or min(shape) == 0:
        raise InputDataError(f"{path}: IDX header says shape {shape} ({expected} bytes with the "
                             f"header) but the file holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise InputDataError(f"{path}: cannot read: {error}") from None


def find_split(folders: tuple[Path, ...], split: str) -> IdxSplit | None:
    """The first of ``folders`` holding both files of ``split`` (``train`` or ``test``)."""
    for folder in folders:
        images = _find_file(folder, FILE_PREFIX[split], "images", IMAGES_RANK)
        labels = _find_file(folder, FILE_PREFIX[split], "labels", LABELS_RANK)
        if images is not None and labels is not None:
            return IdxSplit(split, images, labels)
    return None


def _find_file(folder: Path, prefix: str, kind: str, rank: int) -> Path | None:
    for separator in ("-", "."):
        for suffix in ("", ".gz"):
            path = folder / f"{prefix}-{kind}{separator}idx{rank}-ubyte{suffix}"
            if path.is_file():
                return path
    return None


def load_split(found: IdxSplit, name: str, source: str,
               classes: tuple[str, ...] | None = None) -> Dataset:
    """One split read from its two IDX files as a Dataset, pixels / 255 in [0, 1]."""
    images = read_idx(found.images, IMAGES_RANK)
    labels = read_idx(found.labels, LABELS_RANK)
    if len(labels) != len(images):
        raise InputDataError(f"{found.labels} holds {len(labels)} labels but {found.images} "
                             f"holds {len(images)} images")
    count = len(classes) if classes is not None else int(labels.max()) + 1
    if classes is not None and int(labels.max()) >= count:
        raise InputDataError(f"{found.labels}: label {int(labels.max())} is out of range for "
                             f"{count} classes")
    x = (images.astype(np.float32) / np.float32(255))[:, None]
    height, width = images.shape[1:]
    return Dataset(
        name=f"{name}:{found.split}", x=x, y=labels.astype(np.int64),
        description=f"{source} ({found.split} split, {len(x)} images, {found.images.parent}); "
                    f"{height}x{width} grayscale, x shape (N, 1, {height}, {width}), pixels / 255 "
                    "in [0, 1]",
        classes=classes or tuple(str(label) for label in range(count)))


def load_splits(folders: tuple[Path, ...], split: str, *, name: str, source: str,
                missing: str, classes: tuple[str, ...] | None = None) -> Dataset:
    """``split`` (train, test, or all: train then test) from the first folder holding it;
    ``missing`` ends the error when no folder does."""
    parts = []
    for part in (("train", "test") if split == "all" else (split,)):
        found = find_split(folders, part)
        if found is None:
            searched = "\n".join(f"  {folder}" for folder in folders)
            wanted = " and ".join(f"{FILE_PREFIX[part]}-{kind}-idx{rank}-ubyte[.gz]"
                                  for kind, rank in (("images", 3), ("labels", 1)))
            raise InputDataError(f"{name}: no folder holds the {part} split ({wanted}); "
                                 f"searched:\n{searched}\n{missing}")
        parts.append(load_split(found, name, source, classes))
    if len(parts) == 1:
        return parts[0]
    train, test = parts
    if train.sample_shape != test.sample_shape:
        raise InputDataError(f"{name}: train images are {train.sample_shape[1:]} but test "
                             f"images are {test.sample_shape[1:]}")
    return Dataset(name=f"{name}:all", x=np.concatenate([train.x, test.x]),
                   y=np.concatenate([train.y, test.y]),
                   description=f"{source} (all {len(train) + len(test)} images: the train split, "
                               f"then the test split); {test.description.split('; ', 1)[1]}",
                   classes=classes or (train.classes if len(train.classes) >= len(test.classes)
                                       else test.classes))


def idx_folders(folder: Path) -> tuple[Path, ...]:
    """Where ``idx:DIR`` looks: DIR itself, then torchvision's layouts under it."""
    return (folder,) + tuple(folder / layout for layout in TORCHVISION_FOLDERS)


def load_idx_folder(folder: str, split: str) -> Dataset:
    """``idx:DIR``: the four standard IDX files in DIR or a torchvision layout under it."""
    path = Path(folder).expanduser()
    if not folder:
        raise InputDataError("idx: needs a folder, as in idx:DIR (a folder holding the four "
                             "IDX files, or a torchvision root holding MNIST/raw)")
    if not path.is_dir():
        raise InputDataError(f"idx:{folder}: no such folder")
    return load_splits(idx_folders(path), split, name=f"idx:{folder}", source="IDX files",
                       missing="put the IDX files (gzipped or not) in one of those folders")


def fashion_mnist_folders() -> tuple[Path, ...]:
    """Where ``fashion-mnist`` looks: under each root, fashion-mnist/ (the Debian layout) and
    FashionMNIST/raw (torchvision's). The roots are those in $ASIMC_DATASETS (separated by the
    path separator) when it is set, else the Debian package's /usr/share/datasets."""
    named = [root for root in os.environ.get(DATASETS_VARIABLE, "").split(os.pathsep) if root]
    roots = [Path(root).expanduser() for root in named or FASHION_MNIST_ROOTS]
    return tuple(folder for root in roots
                 for folder in (root / "fashion-mnist", root / "FashionMNIST" / "raw"))


def load_fashion_mnist(split: str) -> Dataset:
    """Fashion-MNIST (Zalando, MIT licence): 60,000 train and 10,000 test images, 28x28, 10
    classes, from the Debian package or $ASIMC_DATASETS."""
    return load_splits(
        fashion_mnist_folders(), split, name="fashion-mnist", source="Fashion-MNIST",
        classes=FASHION_MNIST_CLASSES,
        missing=f"install it with: apt-get install {FASHION_MNIST_PACKAGE} (Debian, as root), or "
                f"name a folder holding fashion-mnist/ or FashionMNIST/raw in "
                f"${DATASETS_VARIABLE}")
