"""Tests of bce_with_logits, BCEWithLogitsLoss and MSELoss."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.gradcheck import check_gradients
from minirec.nn.cases_basic import BCELossCheck, MSELossCheck
from minirec.nn.losses import BCEWithLogitsLoss, MSELoss, bce_with_logits

TOLERANCE = 1e-6


@pytest.mark.parametrize("z, y, expected", [
    (1000.0, 0.0, 1000.0),                    # max(1000, 0) - 0 + log1p(exp(-1000)) = 1000
    (1000.0, 1.0, 0.0),                       # 1000 - 1000 + log1p(0) = 0
    (40.0, 1.0, 4.248354255291589e-18),       # 40 - 40 + log1p(exp(-40)) = exp(-40)
    (-40.0, 0.0, 4.248354255291589e-18),      # 0 - 0 + log1p(exp(-40)) = exp(-40)
    (0.0, 0.0, math.log(2.0)),                # 0 - 0 + log1p(exp(0)) = ln 2
    (0.0, 1.0, math.log(2.0)),
    (0.0, 0.3, math.log(2.0)),
    (-1000.0, 1.0, 1000.0),                   # 0 + 1000 + log1p(0) = 1000
])
def test_bce_reference_values(z, y, expected):
    loss = bce_with_logits(np.array([z]), np.array([y]))
    assert loss[0] == pytest.approx(expected, rel=1e-12, abs=0)


def test_bce_matches_naive_formula_for_moderate_logits():
    z = np.array([-3.0, -0.5, 0.2, 2.5])
    y = np.array([0.0, 1.0, 0.7, 1.0])
    p = 1.0 / (1.0 + np.exp(-z))
    naive = -y * np.log(p) - (1 - y) * np.log(1 - p)
    np.testing.assert_allclose(bce_with_logits(z, y), naive, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_extreme_logits_raise_no_warnings(dtype):
    z = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = BCEWithLogitsLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            per_row = bce_with_logits(z, y)
            mean = loss.forward(z, y)
            d_logits = loss.backward()
    np.testing.assert_array_equal(per_row, [0.0, 0.0, 1e4, 1e4])
    assert mean == pytest.approx(5000.0, rel=1e-6)
    # (sigmoid(z) - y) / 4: (1 - 1), (0 - 0), (1 - 0), (0 - 1), each divided by 4
    np.testing.assert_array_equal(d_logits, [0.0, 0.0, 0.25, -0.25])
    assert d_logits.dtype == dtype


def test_bce_loss_mean_and_gradient_by_hand():
    loss = BCEWithLogitsLoss()
    value = loss.forward(np.array([0.0, 0.0]), np.array([1.0, 0.0]))
    # both rows have z = 0: loss ln 2 each, mean ln 2
    assert value == pytest.approx(math.log(2.0), rel=1e-15)
    # (sigmoid(0) - y) / 2 = (0.5 - 1) / 2 and (0.5 - 0) / 2
    np.testing.assert_array_equal(loss.backward(), [-0.25, 0.25])


def test_bce_accepts_integer_and_bool_labels():
    z = np.array([0.5, -0.5])
    loss_int = BCEWithLogitsLoss().forward(z, np.array([1, 0]))
    loss_bool = BCEWithLogitsLoss().forward(z, np.array([True, False]))
    assert loss_int == loss_bool


@pytest.mark.parametrize("labels, message", [
    (np.array([1.0, 0.0, 1.0]), r"labels must have the shape of logits \(2,\)"),
    (np.array([[1.0, 0.0]]), r"labels must have the shape of logits \(2,\)"),
    (np.array([1.0, 2.0]), r"labels must lie in \[0, 1\], got 2.0"),
    (np.array([-0.5, 1.0]), r"labels must lie in \[0, 1\], got -0.5"),
    (np.array([np.nan, 1.0]), "labels contains NaN"),
])
def test_bce_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        BCEWithLogitsLoss().forward(np.array([0.1, 0.2]), labels)


def test_bce_rejects_bad_logits():
    with pytest.raises(ValueError, match="logits contains NaN or infinite"):
        bce_with_logits(np.array([np.inf]), np.array([1.0]))
    with pytest.raises(TypeError, match="logits must be a float array"):
        bce_with_logits(np.array([1, 2]), np.array([1, 0]))
    with pytest.raises(ValueError, match="empty batch"):
        BCEWithLogitsLoss().forward(np.zeros(0), np.zeros(0))
    with pytest.raises(RuntimeError, match="before forward"):
        BCEWithLogitsLoss().backward()


def test_mse_by_hand():
    loss = MSELoss()
    value = loss.forward(np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 5.0]))
    # differences 0, 2, -1: (0 + 4 + 1) / 3 = 5 / 3
    assert value == pytest.approx(5.0 / 3.0, rel=1e-15)
    # 2 * difference / 3
    np.testing.assert_allclose(loss.backward(), [0.0, 4.0 / 3.0, -2.0 / 3.0], rtol=1e-15)


def test_mse_rejects_bad_input():
    with pytest.raises(ValueError, match=r"target must have the shape of pred \(2,\)"):
        MSELoss().forward(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="target contains NaN"):
        MSELoss().forward(np.array([1.0]), np.array([np.nan]))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.floats(0.1, 30.0), st.integers(0, 10_000))
def test_bce_gradcheck(B, scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=B) * scale
    labels = rng.uniform(size=B).round(1)       # hard and soft labels
    result = check_gradients(BCELossCheck(labels), [logits], random_state=seed)
    assert result.passed(TOLERANCE), result


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 10_000))
def test_mse_gradcheck(B, seed):
    rng = np.random.default_rng(seed)
    result = check_gradients(MSELossCheck(rng.normal(size=B)), [rng.normal(size=B)],
                             random_state=seed)
    assert result.passed(TOLERANCE), result


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(0, 10_000))
def test_losses_float32_match_float64(B, seed):
    rng = np.random.default_rng(seed)
    logits, labels = rng.normal(size=B) * 4, rng.integers(0, 2, size=B)
    bce64, bce32 = BCEWithLogitsLoss(), BCEWithLogitsLoss()
    assert bce32.forward(logits.astype(np.float32), labels) == pytest.approx(
        bce64.forward(logits, labels), rel=1e-5)
    d32 = bce32.backward()
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, bce64.backward(), rtol=1e-5, atol=1e-7)
    target = rng.normal(size=B)
    mse64, mse32 = MSELoss(), MSELoss()
    assert mse32.forward(logits.astype(np.float32), target) == pytest.approx(
        mse64.forward(logits, target), rel=1e-5)
    assert mse32.backward().dtype == np.float32
