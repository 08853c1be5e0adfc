"""fit_to_input: reshaping a batch to a model input and refusing what does not fit."""
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

from asimc.data import fit_to_input, load_dataset
from asimc.errors import InputDataError


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=5).x


def test_digits_flatten_into_an_mlp_input(digits):
    out = fit_to_input(digits, ("batch", 64), "float32", "input")
    assert out.shape == (5, 64) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, digits.reshape(5, 64))


def test_matching_shape_passes_through(digits):
    out = fit_to_input(digits, (None, 1, 8, 8), "float32", "input")
    assert out.shape == (5, 1, 8, 8)


def test_symbolic_sample_dims_take_the_data_sizes(digits):
    assert fit_to_input(digits, ("N", 1, "H", "W"), "float32", "x").shape == (5, 1, 8, 8)


def test_one_symbolic_dim_is_inferred_from_the_count(digits):
    assert fit_to_input(digits, ("batch", "seq"), "float32", "x").shape == (5, 64)
    assert fit_to_input(digits, ("batch", "tokens", 4), "float32", "x").shape == (5, 16, 4)


def test_unknown_rank_keeps_the_sample_shape(digits):
    assert fit_to_input(digits, None, "float16", "x").shape == (5, 1, 8, 8)


def test_batch_dimension_is_not_checked(digits):
    assert fit_to_input(digits, (1, 64), "float32", "x").shape == (5, 64)


def test_mismatch_says_expected_versus_got(digits):
    expected = ("data has 64 values per sample, shape (1, 8, 8); model input 'input' expects "
                "[batch, 3, 32, 32] (3072 values per sample)")
    with pytest.raises(InputDataError) as caught:
        fit_to_input(digits, ("batch", 3, 32, 32), "float32", "input")
    assert str(caught.value) == expected
    with pytest.raises(InputDataError, match=r"expects \[batch, 3, 32, 32\]"):
        fit_to_input(digits, (None, 3, 32, 32), "float32", "input")


def test_symbolic_mismatch_is_refused(digits):
    with pytest.raises(InputDataError, match=r"expects \[N, 3, H, W\]"):
        fit_to_input(digits, ("N", 3, "H", "W"), "float32", "img")
    with pytest.raises(InputDataError, match=re.escape("expects [batch, ?, 5]")):
        fit_to_input(digits, ("batch", None, 5), "float32", "img")


def test_scalar_model_input_and_scalar_data_are_refused(digits):
    with pytest.raises(InputDataError, match="scalar"):
        fit_to_input(digits, (), "float32", "x")
    with pytest.raises(InputDataError, match="scalar"):
        fit_to_input(np.float32(1), ("batch",), "float32", "x")


@pytest.mark.parametrize("dtype, expected", [
    ("float16", np.float16), ("float", np.float32), ("tensor(float)", np.float32),
    ("double", np.float64), ("tensor(float16)", np.float16), (np.float64, np.float64)])
def test_float_casts(digits, dtype, expected):
    out = fit_to_input(digits, ("batch", 64), dtype, "x")
    assert out.dtype == expected
    np.testing.assert_allclose(out, digits.reshape(5, 64), rtol=1e-3)


def test_integral_floats_cast_to_int64():
    x = np.array([[1.0, 2.0], [3.0, -4.0]], np.float32)
    out = fit_to_input(x, ("batch", 2), "tensor(int64)", "ids")
    assert out.dtype == np.int64 and out.tolist() == [[1, 2], [3, -4]]


def test_lossy_float_to_int_is_refused(digits):
    with pytest.raises(InputDataError, match="non-integer values.*int64 would lose"):
        fit_to_input(digits, ("batch", 64), "int64", "ids")


def test_out_of_range_integers_are_refused():
    with pytest.raises(InputDataError, match="outside uint8's range 0..255"):
        fit_to_input(np.array([[300.0]]), ("batch", 1), "uint8", "pixels")
    with pytest.raises(InputDataError, match="outside bool's range"):
        fit_to_input(np.array([[2]]), ("batch", 1), "bool", "mask")
    assert fit_to_input(np.array([[1, 0]]), ("batch", 2), "bool", "mask").dtype == np.bool_


def test_float16_overflow_is_refused():
    with pytest.raises(InputDataError, match="overflow float16"):
        fit_to_input(np.array([[1e6]], np.float32), ("batch", 1), "float16", "x")


@pytest.mark.parametrize("dtype", ["string", "tensor(string)", "complex64", "no-such-type"])
def test_unfeedable_input_types_are_refused(dtype):
    with pytest.raises(InputDataError, match="model input 'x' has type"):
        fit_to_input(np.zeros((1, 2), np.float32), ("batch", 2), dtype, "x")


def test_non_numeric_data_is_refused():
    with pytest.raises(InputDataError,
                       match="holds strings.*expected bool, integer or floating-point"):
        fit_to_input(np.array([["a"]]), ("batch", 1), "float32", "x")


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4),
       st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 3))
def test_any_shape_with_the_same_count_reshapes_losslessly(have, wanted, batch):
    count = int(np.prod(have))
    x = np.arange(batch * count, dtype=np.float32).reshape([batch] + have)
    wanted_shape = ("batch",) + tuple(wanted)
    if int(np.prod(wanted)) == count:
        out = fit_to_input(x, wanted_shape, "float32", "x")
        assert out.shape == (batch, *wanted)
        np.testing.assert_array_equal(out.reshape(-1), x.reshape(-1))
    else:
        with pytest.raises(InputDataError, match=f"data has {count} value"):
            fit_to_input(x, wanted_shape, "float32", "x")
