"""Data sets from .npz and .npy files, and every way such a file can be wrong."""
import numpy as np
import pytest

from asimc.data import load_dataset
from asimc.errors import InputDataError


def save_npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_npz_with_labels(tmp_path):
    x = np.arange(24, dtype=np.float64).reshape(4, 2, 3)
    path = save_npz(tmp_path, x=x, y=np.array([0, 1, 2, 1], dtype=np.int32))
    data = load_dataset(str(path))
    assert data.x.dtype == np.float32 and data.x.shape == (4, 2, 3)
    np.testing.assert_array_equal(data.x, x)
    assert data.y.dtype == np.int64 and list(data.y) == [0, 1, 2, 1]
    assert data.name == "data.npz" and "4 samples" in data.description


def test_npz_without_labels_and_other_arrays_ignored(tmp_path):
    path = save_npz(tmp_path, x=np.zeros((3, 5), np.uint8), meta=np.arange(2))
    data = load_dataset(str(path))
    assert data.y is None and data.x.shape == (3, 5) and data.x.dtype == np.float32


def test_npz_bool_and_one_dimensional_x(tmp_path):
    data = load_dataset(str(save_npz(tmp_path, x=np.array([True, False, True]))))
    assert data.x.shape == (3,) and list(data.x) == [1.0, 0.0, 1.0]


def test_npz_limit(tmp_path):
    path = save_npz(tmp_path, x=np.arange(10.0), y=np.arange(10))
    data = load_dataset(str(path), limit=3)
    assert list(data.y) == [0, 1, 2]


def test_npy_holds_x_only(tmp_path):
    path = tmp_path / "batch.npy"
    np.save(path, np.ones((2, 64), np.float16))
    data = load_dataset(str(path))
    assert data.x.shape == (2, 64) and data.x.dtype == np.float32 and data.y is None


def test_npz_without_x_lists_the_arrays_found(tmp_path):
    path = save_npz(tmp_path, X=np.zeros((2, 2)), labels=np.zeros(2, np.int64))
    with pytest.raises(InputDataError, match="no array named 'x' \\(found 'X', 'labels'\\)"):
        load_dataset(str(path))


def test_mismatched_label_count(tmp_path):
    path = save_npz(tmp_path, x=np.zeros((4, 2)), y=np.zeros(3, np.int64))
    with pytest.raises(InputDataError, match="y has 3 labels but x has 4 samples"):
        load_dataset(str(path))


def test_float_labels_are_refused_with_a_fix(tmp_path):
    path = save_npz(tmp_path, x=np.zeros((2, 2)), y=np.array([0.0, 1.0]))
    with pytest.raises(InputDataError, match="expected integer class labels.*astype"):
        load_dataset(str(path))


def test_labels_must_be_a_vector(tmp_path):
    path = save_npz(tmp_path, x=np.zeros((2, 2)), y=np.zeros((2, 1), np.int64))
    with pytest.raises(InputDataError, match="one integer label per sample"):
        load_dataset(str(path))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_first_sample(tmp_path, bad):
    x = np.zeros((5, 3))
    x[3, 1] = bad
    with pytest.raises(InputDataError, match="1 NaN/Inf value in 1 sample \\(first: sample 3\\)"):
        load_dataset(str(save_npz(tmp_path, x=x)))


def test_float64_beyond_float32_range(tmp_path):
    path = save_npz(tmp_path, x=np.array([[1e300, 0.0]]))
    with pytest.raises(InputDataError, match="after conversion to float32"):
        load_dataset(str(path))


def test_object_arrays_are_never_unpickled(tmp_path):
    path = save_npz(tmp_path, x=np.array([[1, 2], "a"], dtype=object))
    with pytest.raises(InputDataError, match="array 'x' holds Python objects"):
        load_dataset(str(path))


def test_object_npy_is_never_unpickled(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputDataError, match="holds Python objects"):
        load_dataset(str(path))


def test_string_arrays_are_refused(tmp_path):
    path = save_npz(tmp_path, x=np.array(["cat", "dog"]))
    with pytest.raises(InputDataError, match="dtype <U3 \\(strings\\); expected numbers"):
        load_dataset(str(path))


def test_complex_arrays_are_refused(tmp_path):
    path = save_npz(tmp_path, x=np.ones((2, 2), np.complex64))
    with pytest.raises(InputDataError, match="complex numbers"):
        load_dataset(str(path))


def test_scalar_and_empty_x_are_refused(tmp_path):
    with pytest.raises(InputDataError, match="scalar"):
        load_dataset(str(save_npz(tmp_path, x=np.float32(3))))
    with pytest.raises(InputDataError, match="no samples"):
        load_dataset(str(save_npz(tmp_path, x=np.zeros((0, 4)))))


def test_corrupt_files_are_input_errors(tmp_path):
    for name, content in [("bad.npz", b"PK\x03\x04 truncated"), ("bad.npy", b"not numpy at all"),
                          ("text.npz", b"hello")]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputDataError, match=name):
            load_dataset(str(path))


def test_npy_content_under_npz_name_and_back(tmp_path):
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(InputDataError, match="rename it to .npy"):
        load_dataset(str(single))
    archive = tmp_path / "archive.npy"
    with open(archive, "wb") as handle:
        np.savez(handle, x=np.zeros(3))
    with pytest.raises(InputDataError, match="rename it to .npz"):
        load_dataset(str(archive))
