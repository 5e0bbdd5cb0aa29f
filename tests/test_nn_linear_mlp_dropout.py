"""Tests of Linear, MLP and Dropout."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minirec.gradcheck import check_gradients
from minirec.nn.dice import Dice
from minirec.nn.dropout import Dropout
from minirec.nn.linear import Linear
from minirec.nn.mlp import MLP
from minirec.nn.prelu import PReLU

TOLERANCE = 1e-6
ACTIVATIONS = ["relu", "tanh", "sigmoid", "identity", "prelu", "dice"]
seeds = st.integers(0, 10_000)


def normal(seed, shape):
    return np.random.default_rng(seed).normal(size=shape)


def randomize_mlp(mlp, seed):
    """Give every bias and slope a random value.

    Zero biases behind a ReLU can put a pre-activation exactly on the kink at 0 (a row
    whose previous ReLU outputs are all 0), where no finite difference matches a gradient.
    Random slopes check the alpha gradients away from their initial values.
    """
    rng = np.random.default_rng(seed)
    for module in mlp.modules():
        if "b" in module.params:
            module.params["b"][:] = rng.normal(size=module.params["b"].shape)
        if isinstance(module, (PReLU, Dice)):
            module.params["alpha"][:] = rng.uniform(-1, 1, module.num_features)


# --- Linear -----------------------------------------------------------------------------


def test_linear_by_hand():
    layer = Linear(2, 1)
    layer.params["W"][:] = [[2.0], [-1.0]]
    layer.params["b"][:] = [0.5]
    # [3, 4] @ [2, -1] + 0.5 = 6 - 4 + 0.5
    np.testing.assert_array_equal(layer.forward(np.array([[3.0, 4.0]])), [[2.5]])
    dx = layer.backward(np.array([[1.0]]))
    np.testing.assert_array_equal(dx, [[2.0, -1.0]])
    np.testing.assert_array_equal(layer.grads["W"], [[3.0], [4.0]])
    np.testing.assert_array_equal(layer.grads["b"], [1.0])


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(0, 3), st.integers(1, 4), st.integers(1, 4),
       st.booleans(), seeds)
def test_linear_gradcheck(B, middle, n_in, n_out, bias, seed):
    # middle = 0 gives (B, in); otherwise (B, middle, in) as for AFM pairs or DIN steps
    shape = (B, n_in) if middle == 0 else (B, middle, n_in)
    layer = Linear(n_in, n_out, bias=bias, random_state=seed)
    result = check_gradients(layer, [normal(seed + 1, shape)], random_state=seed)
    assert result.passed(TOLERANCE), result


def test_linear_float32_matches_float64():
    x = normal(0, (5, 4))
    out64 = Linear(4, 3, random_state=1).forward(x)
    out32 = Linear(4, 3, random_state=1, dtype=np.float32).forward(x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)


def test_linear_rejects_wrong_width():
    with pytest.raises(ValueError, match="in_features=4"):
        Linear(4, 2).forward(np.zeros((3, 5)))


# --- MLP --------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.lists(st.integers(1, 4), min_size=1,
                                                       max_size=2),
       st.sampled_from(ACTIVATIONS), st.sampled_from([None, 1, 2]), seeds)
def test_mlp_gradcheck(B, n_in, hidden, activation, out_features, seed):
    mlp = MLP(n_in, hidden, activation=activation, out_features=out_features,
              random_state=seed)
    randomize_mlp(mlp, seed)
    x = normal(seed + 1, (B, n_in))
    # ReLU and PReLU have a kink at 0, where no finite difference can match the one-sided
    # analytic gradient; skip draws with a pre-activation closer to 0 than the checker's
    # steps could cross.
    if activation in ("relu", "prelu"):
        assume(min_pre_activation(mlp, x) > 1e-3)
    result = check_gradients(mlp, [x], random_state=seed)
    assert result.passed(TOLERANCE), result


def min_pre_activation(mlp, x):
    """Return the smallest |value| entering any activation of ``mlp`` for input ``x``.

    Dropout generators are rewound afterwards, so the checked pass draws the same masks.
    """
    states = [(layer.rng, layer.rng.bit_generator.state) for layer in mlp.layers
              if isinstance(layer, Dropout)]
    smallest = np.inf
    for layer in mlp.layers:
        x = layer.forward(x)
        if isinstance(layer, Linear) and layer is not mlp.layers[-1]:
            smallest = min(smallest, float(np.min(np.abs(x))))
    for rng, state in states:
        rng.bit_generator.state = state
    return smallest


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.sampled_from(ACTIVATIONS), seeds)
def test_mlp_with_dropout_gradcheck(B, activation, seed):
    mlp = MLP(3, [4, 3], activation=activation, dropout=0.3, out_features=1,
              random_state=seed)
    randomize_mlp(mlp, seed)
    x = normal(seed + 1, (B, 3))
    if activation in ("relu", "prelu"):
        assume(min_pre_activation(mlp, x) > 1e-3)
    result = check_gradients(mlp, [x], random_state=seed)
    assert result.passed(TOLERANCE), result


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_float32_matches_float64(activation):
    x = normal(2, (6, 4))
    mlp64 = MLP(4, [5, 3], activation=activation, out_features=1, random_state=3)
    mlp32 = MLP(4, [5, 3], activation=activation, out_features=1, random_state=3,
                dtype=np.float32)
    out64 = mlp64.forward(x)
    out32 = mlp32.forward(x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    dx = mlp32.backward(np.ones_like(out32))
    assert dx.dtype == np.float32
    assert all(grad.dtype == np.float32 for _, _, grad in mlp32.parameters())


def test_mlp_layers_and_width():
    mlp = MLP(4, [5, 3], activation="prelu", dropout=0.2, out_features=1, random_state=0)
    kinds = [type(layer).__name__ for layer in mlp.layers]
    assert kinds == ["Linear", "PReLU", "Dropout", "Linear", "PReLU", "Dropout", "Linear"]
    assert mlp.out_features == 1
    assert MLP(4, [5, 3]).out_features == 3
    with pytest.raises(ValueError, match="at least one layer width"):
        MLP(4, [])
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(4, [2], activation="swish")


# --- Dropout ----------------------------------------------------------------------------


def test_dropout_is_identity_in_evaluation():
    dropout = Dropout(0.5, random_state=0).eval()
    x = normal(0, (4, 3))
    out = dropout.forward(x)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout.backward(np.ones_like(x)), np.ones_like(x))


def test_dropout_same_seed_gives_same_mask():
    x = np.ones((6, 5))
    first = Dropout(0.3, random_state=42).forward(x)
    second = Dropout(0.3, random_state=42).forward(x)
    other = Dropout(0.3, random_state=43).forward(x)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_dropout_uses_the_passed_generator():
    generator = np.random.default_rng(7)
    expected_keep = np.random.default_rng(7).random((3, 4)) >= 0.25
    out = Dropout(0.25, random_state=generator).forward(np.ones((3, 4)))
    # kept values are scaled by 1 / (1 - 0.25) = 4 / 3, dropped ones are 0
    np.testing.assert_allclose(out, np.where(expected_keep, 4.0 / 3.0, 0.0), rtol=1e-15)


def test_dropout_backward_uses_forward_mask():
    dropout = Dropout(0.5, random_state=1)
    out = dropout.forward(np.ones((4, 4)))
    dx = dropout.backward(np.ones((4, 4)))
    np.testing.assert_array_equal(dx, out)        # both are mask / (1 - p)


def test_dropout_keeps_expectation():
    # Mean of 200,000 values 1 * mask / 0.7: the keep count is binomial, so the mean has
    # standard deviation sqrt(0.3 / 0.7 / 200_000) = 0.0015; 0.01 is more than six of them.
    out = Dropout(0.3, random_state=5).forward(np.ones(200_000))
    assert abs(out.mean() - 1.0) < 0.01
    assert abs((out == 0).mean() - 0.3) < 0.01


def test_dropout_keeps_float32():
    out = Dropout(0.3, random_state=0).forward(np.ones((3, 3), dtype=np.float32))
    assert out.dtype == np.float32


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.sampled_from([0.0, 0.3, 0.7]), seeds)
def test_dropout_gradcheck(B, H, p, seed):
    result = check_gradients(Dropout(p, random_state=seed), [normal(seed, (B, H))],
                             random_state=seed)
    assert result.passed(TOLERANCE), result


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.3"])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match="dropout probability p must be in"):
        Dropout(p)
