"""load_dataset's dispatch, its errors for unknown sources, and normalisation."""
import numpy as np
import pytest

from asimc.data import Dataset, load_dataset
from asimc.errors import InputDataError, UsageError


def test_unknown_name_lists_what_is_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputDataError, match="unknown data set 'mnist'.*digits.*npz.*folder"):
        load_dataset("mnist")


@pytest.mark.parametrize("spec", ["missing.npz", "missing.npy", "some/folder"])
def test_missing_path_is_named(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputDataError, match=f"no such file or folder: {spec}"):
        load_dataset(spec)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(InputDataError, match="unsupported data file type '.csv'"):
        load_dataset(str(path))


def test_single_image_file_points_to_folders(tmp_path):
    path = tmp_path / "one.png"
    path.write_bytes(b"")
    with pytest.raises(InputDataError, match="sub-folder per class"):
        load_dataset(path)


def test_spec_must_be_text():
    with pytest.raises(UsageError):
        load_dataset(42)


def test_path_objects_are_accepted(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.ones((3, 2)))
    assert load_dataset(path).x.shape == (3, 2)


def test_built_in_name_wins_and_dot_slash_means_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()
    assert load_dataset("digits").name == "digits:test"
    with pytest.raises(InputDataError, match="no images found"):
        load_dataset("./digits")


def test_scalar_mean_and_std():
    raw = load_dataset("digits", limit=4)
    scaled = load_dataset("digits", limit=4, mean=(0.5,), std=(0.25,))
    np.testing.assert_allclose(scaled.x, (raw.x - 0.5) / 0.25, rtol=1e-6)
    assert scaled.x.dtype == np.float32
    assert "mean 0.5, std 0.25" in scaled.description


def test_per_channel_mean_and_std(tmp_path):
    path = tmp_path / "rgb.npz"
    x = np.ones((2, 3, 4, 4), dtype=np.float32) * np.array([1, 2, 3], np.float32)[:, None, None]
    np.savez(path, x=x)
    out = load_dataset(path, mean=(1, 2, 3), std=(1, 2, 3)).x
    np.testing.assert_allclose(out, 0.0)


def test_per_channel_values_must_match_the_channels():
    with pytest.raises(UsageError, match="3 values but the data has 1 channels"):
        load_dataset("digits", mean=(0.1, 0.2, 0.3))


@pytest.mark.parametrize("std", [(0.0,), (-1.0,)])
def test_std_must_be_positive(std):
    with pytest.raises(UsageError, match="std must be positive"):
        load_dataset("digits", std=std)


def test_dataset_contract_is_checked_for_direct_construction():
    with pytest.raises(ValueError):
        Dataset("d", np.zeros((2, 3)), None, "float64 is not float32")
    with pytest.raises(ValueError):
        Dataset("d", np.zeros((2, 3), np.float32), np.zeros(3, np.int64), "3 labels for 2")
    data = Dataset("d", np.zeros((2, 3), np.float32), np.zeros(2, np.int64), "ok")
    assert len(data) == 2 and data.sample_shape == (3,)
