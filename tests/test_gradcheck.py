"""Tests of the finite-difference checker itself: it must pass correct and fail wrong code."""

import numpy as np
import pytest

from minirec.gradcheck import check_gradients, relative_error
from minirec.nn.base import Module
from minirec.nn.linear import Linear


class Square(Module):
    """y = a * x^2 with a parameter a; backward can be broken on purpose."""

    def __init__(self, broken=False):
        super().__init__()
        self.add_param("a", np.array([1.5]))
        self.broken = broken

    def forward(self, x):
        self._x = x
        return self.params["a"] * x ** 2

    def backward(self, dout):
        self.grads["a"] += np.sum(dout * self._x ** 2, keepdims=True).reshape(1)
        factor = 3.0 if self.broken else 2.0
        return dout * factor * self.params["a"] * self._x


def test_correct_backward_passes():
    x = np.array([[0.3, -1.2], [2.0, 0.7]])
    result = check_gradients(Square(), [x])
    assert result.passed(1e-6), result
    assert set(result.errors) == {"param:a", "input:0"}
    assert result.checked == 1 + 4


def test_wrong_input_gradient_is_caught_and_located():
    x = np.array([[0.3, -1.2], [2.0, 0.7]])
    result = check_gradients(Square(broken=True), [x])
    assert not result.passed(1e-6)
    assert result.max_error > 0.1
    assert result.worst.startswith("input:0[")


def test_wrong_parameter_gradient_is_caught():
    class ForgetsBias(Linear):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["b"] *= 0.5
            return dx

    layer = ForgetsBias(3, 2, random_state=0)
    result = check_gradients(layer, [np.random.default_rng(0).standard_normal((4, 3))])
    assert result.worst.startswith("param:b")
    assert result.max_error > 0.1


def test_rejects_float32_parameters():
    layer = Linear(2, 2, random_state=0, dtype=np.float32)
    with pytest.raises(ValueError, match="float64"):
        check_gradients(layer, [np.ones((1, 2))])


def test_max_entries_checks_nonzero_first():
    layer = Linear(50, 3, random_state=0)
    x = np.zeros((2, 50))
    x[:, :2] = 1.0
    result = check_gradients(layer, [x], max_entries=10)
    # W has 150 entries, only rows 0 and 1 (6 entries) have nonzero gradient; all six
    # are among the 10 checked, plus 4 sampled zero entries.
    assert result.errors["param:W"] < 1e-6
    assert result.passed(1e-6)


def test_relative_error_floor():
    np.testing.assert_allclose(relative_error([1.0, 0.0], [1.1, 1e-9], floor=1e-4),
                               [0.1 / 1.1, 1e-5])
