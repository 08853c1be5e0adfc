"""The built-in digits data set and its fixed split."""
import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from asimc.data import digits_split_indices, load_dataset
from asimc.errors import InputDataError, UsageError


def test_test_split_is_the_default_and_has_the_documented_size():
    data = load_dataset("digits")
    assert data.name == "digits:test"
    assert data.x.shape == (450, 1, 8, 8) and data.x.dtype == np.float32
    assert data.y.shape == (450,) and data.y.dtype == np.int64
    assert data.classes == tuple("0123456789")


@pytest.mark.parametrize("spec, count", [("digits:train", 1347), ("digits:test", 450),
                                         ("digits:all", 1797)])
def test_each_split_has_its_documented_size(spec, count):
    assert len(load_dataset(spec)) == count


def test_split_keyword_applies_when_the_spec_names_no_split():
    assert len(load_dataset("digits", split="train")) == 1347
    assert len(load_dataset("digits:test", split="train")) == 450   # the spec wins


def test_pixels_are_scaled_to_unit_range():
    data = load_dataset("digits:all")
    assert data.x.min() == 0.0 and data.x.max() == 1.0
    assert set(np.unique(data.x * 16)) <= set(range(17))


def test_split_is_the_documented_stratified_split_and_disjoint():
    from sklearn.datasets import load_digits

    labels = load_digits().target
    train, test = train_test_split(np.arange(len(labels)), test_size=0.25, random_state=0,
                                   stratify=labels)
    got_train, got_test = digits_split_indices()
    np.testing.assert_array_equal(got_train, train)
    np.testing.assert_array_equal(got_test, test)
    assert not set(got_train) & set(got_test)
    np.testing.assert_array_equal(load_dataset("digits:test").y, labels[test])


def test_every_class_is_in_the_test_split_in_proportion():
    counts = np.bincount(load_dataset("digits:test").y)
    assert len(counts) == 10 and counts.min() >= 43 and counts.max() <= 46


def test_returned_arrays_belong_to_the_caller():
    first = load_dataset("digits")
    first.x[:] = 7.0
    assert load_dataset("digits").x.max() == 1.0


def test_limit_keeps_the_first_samples():
    whole, part = load_dataset("digits"), load_dataset("digits", limit=10)
    np.testing.assert_array_equal(part.x, whole.x[:10])
    np.testing.assert_array_equal(part.y, whole.y[:10])
    assert len(load_dataset("digits", limit=10_000)) == 450


def test_unknown_split_is_an_input_error():
    with pytest.raises(InputDataError, match="unknown split 'val'"):
        load_dataset("digits:val")


@pytest.mark.parametrize("limit", [0, -3, 2.5, True])
def test_bad_limit_is_a_usage_error(limit):
    with pytest.raises(UsageError, match="limit"):
        load_dataset("digits", limit=limit)


def test_bad_split_keyword_is_a_usage_error():
    with pytest.raises(UsageError, match="split"):
        load_dataset("digits", split="validation")


def test_image_options_are_refused_for_digits():
    with pytest.raises(UsageError, match="image folders only"):
        load_dataset("digits", image_size=(16, 16))


def test_bundled_pixels_and_labels_are_scikit_learns_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = load_dataset("digits:all")
    np.testing.assert_array_equal(data.x[:, 0] * 16, bunch.images)
    np.testing.assert_array_equal(data.y, bunch.target)
