"""IDX data sets: ``fashion-mnist`` (the Debian package, installed by the Makefile's set-up),
``idx:DIR`` in the plain and torchvision layouts, strict parsing and the missing-data error."""
import gzip

import numpy as np
import pytest

from asimc.cli import main
from asimc.data import load_dataset
from asimc.errors import InputDataError

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def golden_on(capsys, data: str) -> tuple[int, str]:
    """``asimc golden`` of a bundled model on ``data``: (exit code, stderr)."""
    capsys.readouterr()
    code = main(["golden", "examples/models/digits_cnn.onnx",
                 "--chip", "chips/asim-bitserial-255.acim", "--data", data])
    return code, capsys.readouterr().err


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder, name, array, gzipped=True, data=None):
    folder.mkdir(parents=True, exist_ok=True)
    raw = idx_bytes(array) if data is None else data
    path = folder / (name + (".gz" if gzipped else ""))
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    return path


def write_split(folder, prefix, images, labels, gzipped=True):
    write_idx(folder, f"{prefix}-images-idx3-ubyte", images, gzipped)
    write_idx(folder, f"{prefix}-labels-idx1-ubyte", labels, gzipped)


@pytest.fixture
def mnist_root(tmp_path):
    """A torchvision root: ROOT/MNIST/raw holding the four files, train gzipped, test not."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "torchvision" / "MNIST" / "raw"
    train = (rng.integers(0, 256, (5, 6, 7)), np.array([0, 1, 2, 3, 4]))
    test = (rng.integers(0, 256, (3, 6, 7)), np.array([9, 8, 7]))
    write_split(raw, "train", *train)
    write_split(raw, "t10k", *test, gzipped=False)
    return tmp_path / "torchvision", train, test


def test_fashion_mnist_test_split_is_the_10000_images():
    data = load_dataset("fashion-mnist")
    assert data.name == "fashion-mnist:test" and data.x.shape == (10000, 1, 28, 28)
    assert data.x.dtype == np.float32 and data.x.min() == 0.0 and data.x.max() == 1.0
    assert np.array_equal(np.bincount(data.y), [1000] * 10)
    assert data.classes == FASHION_CLASSES
    assert data.y[:4].tolist() == [9, 2, 1, 1]        # ankle boot, pullover, trouser, trouser


def test_fashion_mnist_train_split_is_the_60000_images():
    data = load_dataset("fashion-mnist:train")
    assert data.x.shape == (60000, 1, 28, 28)
    assert np.array_equal(np.bincount(data.y), [6000] * 10)
    assert load_dataset("fashion-mnist", split="train", limit=7).y.tolist() == data.y[:7].tolist()


def test_torchvision_layout_reads_each_split(mnist_root):
    root, (train_x, train_y), (test_x, test_y) = mnist_root
    test = load_dataset(f"idx:{root}")
    assert test.name == f"idx:{root}:test" and test.x.shape == (3, 1, 6, 7)
    np.testing.assert_array_equal(test.x[:, 0], (test_x / 255).astype(np.float32))
    assert test.y.tolist() == test_y.tolist()
    train = load_dataset(f"idx:{root}:train")
    assert train.y.tolist() == train_y.tolist()
    assert load_dataset(f"idx:{root}", split="train").y.tolist() == train_y.tolist()
    both = load_dataset(f"idx:{root}:all")
    assert both.x.shape == (8, 1, 6, 7) and both.y.tolist() == [*train_y, *test_y]
    assert both.classes == tuple(str(label) for label in range(10))


def test_plain_folder_with_dotted_names(tmp_path):
    images, labels = np.full((2, 4, 4), 255), np.array([1, 0])
    write_idx(tmp_path, "t10k-images.idx3-ubyte", images)
    write_idx(tmp_path, "t10k-labels.idx1-ubyte", labels)
    data = load_dataset(f"idx:{tmp_path}")
    assert data.x.shape == (2, 1, 4, 4) and np.all(data.x == 1.0) and data.y.tolist() == [1, 0]


def test_fashion_mnist_from_a_root_named_in_the_environment(mnist_root, monkeypatch, tmp_path):
    root, _, (test_x, _) = mnist_root
    fashion = tmp_path / "mine" / "FashionMNIST"
    fashion.parent.mkdir()
    (root / "MNIST").rename(fashion)
    monkeypatch.setenv("ASIMC_DATASETS", str(tmp_path / "mine"))
    data = load_dataset("fashion-mnist")
    assert data.x.shape == (3, 1, 6, 7) and data.classes == FASHION_CLASSES


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASIMC_DATASETS", str(tmp_path))
    code, err = golden_on(capsys, "fashion-mnist")
    assert code == 2 and "Traceback" not in err
    assert "apt-get install dataset-fashion-mnist" in err
    assert f"{tmp_path}/fashion-mnist" in err and f"{tmp_path}/FashionMNIST/raw" in err


def test_missing_idx_files_lists_the_folders_searched(tmp_path):
    write_idx(tmp_path, "t10k-images-idx3-ubyte", np.zeros((2, 4, 4)))   # no labels
    with pytest.raises(InputDataError, match="no folder holds the test split") as error:
        load_dataset(f"idx:{tmp_path}")
    assert f"{tmp_path}/MNIST/raw" in str(error.value)
    with pytest.raises(InputDataError, match="no such folder"):
        load_dataset(f"idx:{tmp_path}/absent")


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "shorter than the 4-byte magic number"),
    (b"\x01\x00\x08\x03" + bytes(12), "does not start with two zero bytes"),
    (idx_bytes(np.zeros((2, 4, 4)), type_code=0x0D), "IDX values are float"),
    (idx_bytes(np.zeros((2, 16))), "2 dimension"),
    (idx_bytes(np.zeros((2, 4, 4)))[:-1], r"shape \(2, 4, 4\) .* holds 47 bytes"),
    (idx_bytes(np.zeros((2, 4, 4))) + b"\x00", r"holds 49 bytes"),
    (b"\x00\x00\x08\x03\x00\x00", "ends inside its header"),
])
def test_bad_images_file_is_refused_by_name(tmp_path, data, message):
    write_idx(tmp_path, "t10k-images-idx3-ubyte", None, gzipped=False, data=data)
    write_idx(tmp_path, "t10k-labels-idx1-ubyte", np.zeros(2), gzipped=False)
    with pytest.raises(InputDataError, match=message) as error:
        load_dataset(f"idx:{tmp_path}")
    assert "t10k-images-idx3-ubyte" in str(error.value)


def test_corrupt_gzip_and_label_count_are_refused(tmp_path, capsys):
    write_idx(tmp_path, "t10k-images-idx3-ubyte", np.zeros((2, 4, 4)))
    write_idx(tmp_path, "t10k-labels-idx1-ubyte", np.zeros(3))
    with pytest.raises(InputDataError, match="holds 3 labels but .* holds 2 images"):
        load_dataset(f"idx:{tmp_path}")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not gzip")
    code, err = golden_on(capsys, f"idx:{tmp_path}")
    assert code == 2 and "cannot read" in err and "Traceback" not in err
