"""Tests of softmax, masked_softmax, softmax_backward and log_sigmoid."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.nn.functional import log_sigmoid, masked_softmax, softmax, softmax_backward


def test_softmax_large_inputs_reference():
    # softmax(1000, 1001, 1002) = softmax(0, 1, 2) because a shift cancels out.
    # exp(0) = 1, exp(1) = 2.718281828, exp(2) = 7.389056099, total 11.107337927:
    # 1 / 11.107337927 = 0.09003057, 2.718281828 / 11.107337927 = 0.24472847,
    # 7.389056099 / 11.107337927 = 0.66524096.
    result = softmax(np.array([1000.0, 1001.0, 1002.0]))
    np.testing.assert_allclose(result, [0.09003057, 0.24472847, 0.66524096], atol=1e-8)


def test_softmax_keeps_float32():
    x = np.array([[1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
    assert softmax(x).dtype == np.float32
    assert masked_softmax(x, np.array([[True, False], [True, True]])).dtype == np.float32
    assert log_sigmoid(x).dtype == np.float32


def test_softmax_axis_zero():
    x = np.array([[0.0, 5.0], [np.log(3.0), 5.0]])
    # column 0: exp(0) = 1 and exp(log 3) = 3, so (1/4, 3/4); column 1 is uniform
    np.testing.assert_allclose(softmax(x, axis=0), [[0.25, 0.5], [0.75, 0.5]])


def test_softmax_empty_axis():
    assert softmax(np.zeros((2, 0))).shape == (2, 0)


def test_masked_softmax_reference():
    x = np.array([[0.0, 123.0, np.log(3.0)]])
    mask = np.array([[True, False, True]])
    # valid entries exp(0) = 1 and exp(log 3) = 3 -> (1/4, 3/4); the masked one is exactly 0
    result = masked_softmax(x, mask)
    np.testing.assert_allclose(result, [[0.25, 0.0, 0.75]])
    assert result[0, 1] == 0.0


def test_masked_softmax_ignores_masked_values():
    mask = np.array([[True, True, False]])
    clean = masked_softmax(np.array([[1.0, 2.0, 0.0]]), mask)
    dirty = masked_softmax(np.array([[1.0, 2.0, np.nan]]), mask)
    huge = masked_softmax(np.array([[1.0, 2.0, 1e308]]), mask)
    np.testing.assert_array_equal(clean, dirty)
    np.testing.assert_array_equal(clean, huge)


def test_masked_softmax_all_masked_row_is_zero():
    x = np.array([[1.0, 2.0], [-1e300, 7.0]])
    mask = np.array([[False, False], [True, True]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        result = masked_softmax(x, mask)
    assert np.all(result[0] == 0.0)
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result[1], [0.0, 1.0])


def test_masked_softmax_rejects_bad_mask():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="mask must be a boolean"):
        masked_softmax(x, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"mask of shape \(2, 2\)"):
        masked_softmax(x, np.ones((2, 2), dtype=bool))


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_masked_softmax_matches_softmax_of_valid_part(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)) * 10
    mask = rng.random((rows, cols)) < 0.6
    result = masked_softmax(x, mask, axis=1)
    for row in range(rows):
        assert np.all(result[row, ~mask[row]] == 0.0)
        if mask[row].any():
            np.testing.assert_allclose(result[row, mask[row]], softmax(x[row, mask[row]]),
                                       rtol=1e-12)
        else:
            assert np.all(result[row] == 0.0)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 3), cols=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_softmax_backward_matches_central_differences(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    mask = rng.random((rows, cols)) < 0.7
    upstream = rng.standard_normal((rows, cols))
    analytic = softmax_backward(masked_softmax(x, mask), upstream)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += eps
        minus[index] -= eps
        difference = masked_softmax(plus, mask) - masked_softmax(minus, mask)
        numeric[index] = np.sum(difference * upstream) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, atol=1e-8)
    assert np.all(analytic[~mask] == 0.0)


def test_log_sigmoid_extremes():
    # log sigmoid(0) = log(1/2); log sigmoid(-1000) = -1000 - log(1 + e^-1000) = -1000;
    # log sigmoid(1000) = -log(1 + e^-1000) = 0 in float64.
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        result = log_sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(result, [-1000.0, np.log(0.5), 0.0], rtol=1e-15, atol=1e-300)


@settings(max_examples=30, deadline=None)
@given(z=st.floats(-30, 30))
def test_log_sigmoid_matches_direct_formula(z):
    direct = np.log(1.0 / (1.0 + np.exp(-z)))
    np.testing.assert_allclose(log_sigmoid(np.array([z])), [direct], rtol=1e-12, atol=1e-14)
