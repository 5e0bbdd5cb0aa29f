"""Tests of the activations: ReLU, Sigmoid, Tanh, PReLU and Dice."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.gradcheck import check_gradients
from minirec.nn.activations import ReLU, Sigmoid, Tanh, make_activation, sigmoid
from minirec.nn.dice import Dice
from minirec.nn.prelu import PReLU

TOLERANCE = 1e-6

# Input shapes (..., H): batch size 1 included, with and without a middle axis.
shapes = st.tuples(st.integers(1, 4), st.integers(1, 3)) | st.tuples(
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
seeds = st.integers(0, 10_000)


def normal(seed, shape):
    return np.random.default_rng(seed).normal(size=shape)


# --- ReLU, Sigmoid, Tanh ----------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([ReLU, Sigmoid, Tanh]), shapes, seeds)
def test_plain_activation_gradcheck(activation_class, shape, seed):
    result = check_gradients(activation_class(), [normal(seed, shape)], random_state=seed)
    assert result.passed(TOLERANCE), result


@pytest.mark.parametrize("activation_class", [ReLU, Sigmoid, Tanh])
def test_plain_activation_keeps_float32(activation_class):
    x64 = normal(0, (3, 4))
    out64 = activation_class().forward(x64)
    out32 = activation_class().forward(x64.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)


def test_sigmoid_extreme_logits_do_not_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values = sigmoid(np.array([-1e4, -40.0, 0.0, 40.0, 1e4]))
    # sigmoid(-40) = exp(-40) / (1 + exp(-40)) = 4.248354255e-18
    np.testing.assert_allclose(values, [0.0, 4.248354255291589e-18, 0.5, 1.0, 1.0],
                               rtol=1e-12, atol=0)


def test_relu_values_by_hand():
    relu = ReLU()
    np.testing.assert_array_equal(relu.forward(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])
    # gradient at exactly 0 is taken as 0
    np.testing.assert_array_equal(relu.backward(np.array([1.0, 1.0, 1.0])), [0.0, 0.0, 1.0])


# --- PReLU ------------------------------------------------------------------------------


def test_prelu_values_by_hand():
    prelu = PReLU(3, init=0.25)
    x = np.array([[-2.0, 3.0, 0.0], [4.0, -1.0, -8.0]])
    # negatives are scaled by 0.25: -2 -> -0.5, -1 -> -0.25, -8 -> -2
    np.testing.assert_array_equal(prelu.forward(x), [[-0.5, 3.0, 0.0], [4.0, -0.25, -2.0]])
    dx = prelu.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, [[0.25, 1.0, 0.25], [1.0, 0.25, 0.25]])
    # d alpha per feature = sum of x over the non-positive entries: [-2, -1, 0 + -8]
    np.testing.assert_array_equal(prelu.grads["alpha"], [-2.0, -1.0, -8.0])


@settings(max_examples=20, deadline=None)
@given(shapes, seeds)
def test_prelu_gradcheck(shape, seed):
    prelu = PReLU(shape[-1])
    prelu.params["alpha"][:] = np.random.default_rng(seed + 1).uniform(-1, 1, shape[-1])
    result = check_gradients(prelu, [normal(seed, shape)], random_state=seed)
    assert result.passed(TOLERANCE), result


def test_prelu_float32_matches_float64():
    x = normal(1, (4, 3))
    out64 = PReLU(3).forward(x)
    out32 = PReLU(3, dtype=np.float32).forward(x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-6)


def test_prelu_rejects_bad_input():
    with pytest.raises(ValueError, match="num_features=3"):
        PReLU(3).forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="num_features must be a positive integer"):
        PReLU(0)
    with pytest.raises(ValueError, match="init must be a finite number"):
        PReLU(2, init=float("nan"))


def test_make_activation_builds_prelu_and_dice():
    prelu = make_activation("prelu", 4, dtype=np.float32)
    dice = make_activation("dice", 5)
    assert isinstance(prelu, PReLU) and prelu.params["alpha"].shape == (4,)
    assert prelu.params["alpha"].dtype == np.float32
    assert isinstance(dice, Dice) and dice.params["alpha"].shape == (5,)


# --- Dice -------------------------------------------------------------------------------


def test_dice_training_values_by_hand():
    dice = Dice(1, init=0.5)
    s = np.array([[-1.0], [1.0]])
    # batch mean 0, biased variance ((-1)^2 + 1^2) / 2 = 1, so s_hat = s / sqrt(1 + 1e-8)
    s_hat = 1.0 / math.sqrt(1.0 + 1e-8)
    p_plus = 1.0 / (1.0 + math.exp(-s_hat))          # 0.7310585786...
    p_minus = 1.0 - p_plus                            # 0.2689414213...
    # f(s) = s * (alpha + (1 - alpha) p) with alpha = 0.5
    expected = [[-1.0 * (0.5 + 0.5 * p_minus)], [1.0 * (0.5 + 0.5 * p_plus)]]
    np.testing.assert_allclose(dice.forward(s), expected, rtol=1e-14)
    np.testing.assert_allclose(expected, [[-0.6344707107], [0.8655292893]], rtol=1e-9)


def test_dice_running_statistics_update_by_hand():
    dice = Dice(1, momentum=0.9)
    dice.forward(np.array([[0.0], [4.0]]))
    # batch mean 2, biased variance (4 + 4) / 2 = 4 (the unbiased 8 would give 1.7)
    # running_mean = 0.9 * 0 + 0.1 * 2 = 0.2; running_var = 0.9 * 1 + 0.1 * 4 = 1.3
    np.testing.assert_allclose(dice.buffers["running_mean"], [0.2], rtol=1e-14)
    np.testing.assert_allclose(dice.buffers["running_var"], [1.3], rtol=1e-14)


def test_dice_evaluation_uses_running_statistics():
    dice = Dice(2, init=0.1).eval()
    dice.buffers["running_mean"][:] = [1.0, -1.0]
    dice.buffers["running_var"][:] = [4.0, 0.25]
    s = np.array([[3.0, -1.5]])
    out = dice.forward(s)
    # s_hat = (3 - 1) / sqrt(4 + 1e-8) ~ 1 and (-1.5 + 1) / sqrt(0.25 + 1e-8) ~ -1
    for h, s_hat in enumerate([2.0 / math.sqrt(4.0 + 1e-8), -0.5 / math.sqrt(0.25 + 1e-8)]):
        p = 1.0 / (1.0 + math.exp(-s_hat))
        assert out[0, h] == pytest.approx(s[0, h] * (0.1 + 0.9 * p), rel=1e-14)
    # evaluation leaves the running statistics alone
    np.testing.assert_array_equal(dice.buffers["running_mean"], [1.0, -1.0])
    np.testing.assert_array_equal(dice.buffers["running_var"], [4.0, 0.25])


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 6), st.integers(1, 3), seeds)
def test_dice_evaluation_row_alone_equals_row_in_batch(B, H, seed):
    dice = Dice(H, init=0.3)
    dice.forward(normal(seed, (8, H)) * 2 + 1)       # moves the running statistics
    dice.eval()
    batch = normal(seed + 1, (B, H))
    together = dice.forward(batch)
    for b in range(B):
        alone = dice.forward(batch[b:b + 1])
        np.testing.assert_allclose(alone[0], together[b], rtol=1e-15, atol=0)


def test_dice_training_depends_on_batch():
    # The opposite of the evaluation property: in training a row's output moves with the
    # other rows, because they change the batch mean.
    dice = Dice(1, init=0.3)
    first = dice.forward(np.array([[1.0], [0.0]]))[0, 0]
    second = dice.forward(np.array([[1.0], [5.0]]))[0, 0]
    assert first != pytest.approx(second, rel=1e-3)


def test_dice_training_batch_of_one_is_finite():
    dice = Dice(2, init=0.2)
    s = np.array([[3.0, -2.0]])
    out = dice.forward(s)
    # one row: s - mean = 0, so s_hat = 0, p = 0.5 and f = s * (0.2 + 0.8 * 0.5) = 0.6 s
    np.testing.assert_allclose(out, 0.6 * s, rtol=1e-15)
    dx = dice.backward(np.ones_like(s))
    assert np.all(np.isfinite(dx))


@settings(max_examples=30, deadline=None)
@given(shapes, st.booleans(), seeds)
def test_dice_gradcheck(shape, training, seed):
    H = shape[-1]
    rng = np.random.default_rng(seed + 1)
    dice = Dice(H)
    dice.params["alpha"][:] = rng.uniform(-1, 1, H)
    dice.buffers["running_mean"][:] = rng.normal(size=H)
    dice.buffers["running_var"][:] = rng.uniform(0.5, 2.0, H)
    if not training:
        dice.eval()
    result = check_gradients(dice, [normal(seed, shape) * 1.5], random_state=seed)
    assert result.passed(TOLERANCE), result


class DiceWithoutStatisticsGradient(Dice):
    """Dice whose training backward wrongly treats the batch mean and variance as constants."""

    def backward(self, dout):
        s, s_hat, p, inv_std, _ = self._cache
        self._cache = (s, s_hat, p, inv_std, False)
        return super().backward(dout)


def test_gradcheck_catches_missing_statistics_gradient():
    dice = DiceWithoutStatisticsGradient(3, init=0.2)
    result = check_gradients(dice, [normal(3, (5, 3))])
    assert not result.passed(1e-2), result
    assert result.worst.startswith("input:0")


@settings(max_examples=10, deadline=None)
@given(shapes, st.booleans(), seeds)
def test_dice_float32_matches_float64(shape, training, seed):
    H = shape[-1]
    x = normal(seed, shape) * 2
    dice64, dice32 = Dice(H, init=0.3), Dice(H, init=0.3, dtype=np.float32)
    if not training:
        dice64.eval()
        dice32.eval()
    out64 = dice64.forward(x)
    out32 = dice32.forward(x.astype(np.float32))
    assert out32.dtype == np.float32
    assert dice32.buffers["running_var"].dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)
    dx = dice32.backward(np.ones_like(out32))
    assert dx.dtype == np.float32


def test_dice_rejects_bad_arguments():
    with pytest.raises(ValueError, match="eps must be a positive number"):
        Dice(2, eps=0.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        Dice(2, momentum=1.0)
    with pytest.raises(ValueError, match="num_features=2"):
        Dice(2).forward(np.zeros((3, 5)))


def test_dice_state_dict_includes_running_statistics():
    dice = Dice(2)
    dice.forward(normal(0, (4, 2)))
    state = dice.state_dict()
    assert set(state) == {"alpha", "running_mean", "running_var"}
    fresh = Dice(2)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.buffers["running_var"], dice.buffers["running_var"])
