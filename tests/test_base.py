"""Tests of the component contract: parameters, sparse gradients, state dicts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.nn.base import (Module, SparseGrad, _stable_argsort_ids, check_dtype,
                             check_random_state)
from minirec.nn.linear import Linear
from minirec.nn.mlp import MLP


def test_sparse_grad_sums_repeated_rows():
    grad = SparseGrad(num_rows=5, dim=2)
    grad.add(np.array([3, 1, 3]), np.array([[1.0, 2.0], [0.5, 0.5], [10.0, 20.0]]))
    grad.add(np.array([1]), np.array([[1.0, -1.0]]))
    rows, values = grad.coalesce()
    # row 1: (0.5, 0.5) + (1, -1) = (1.5, -0.5); row 3: (1, 2) + (10, 20) = (11, 22)
    np.testing.assert_array_equal(rows, [1, 3])
    np.testing.assert_array_equal(values, [[1.5, -0.5], [11.0, 22.0]])
    dense = grad.to_dense()
    assert dense.shape == (5, 2)
    np.testing.assert_array_equal(dense[[0, 2, 4]], 0.0)


def test_sparse_grad_empty_and_zero():
    grad = SparseGrad(4, 3)
    rows, values = grad.coalesce()
    assert rows.shape == (0,) and values.shape == (0, 3)
    grad.add(np.array([2]), np.ones((1, 3)))
    assert grad
    grad.zero()
    assert not grad


def test_sparse_grad_rejects_mismatched_blocks():
    grad = SparseGrad(4, 2)
    with pytest.raises(ValueError, match="2 rows, 1 value rows"):
        grad.add(np.array([0, 1]), np.ones((1, 2)))


def test_parameters_walk_children_with_dotted_names():
    mlp = MLP(3, [4, 2], out_features=1, random_state=0)
    names = [name for name, _, _ in mlp.parameters()]
    assert names == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b",
                     "layers.4.W", "layers.4.b"]
    assert mlp.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2 + 2 * 1 + 1


def test_shared_child_is_listed_once():
    class Twice(Module):
        def __init__(self):
            super().__init__()
            self.first = Linear(2, 2, random_state=0)
            self.second = self.first

    names = [name for name, _, _ in Twice().parameters()]
    assert names == ["first.W", "first.b"]


def test_state_dict_round_trip_and_mismatch():
    source = MLP(3, [4], out_features=1, random_state=0)
    target = MLP(3, [4], out_features=1, random_state=1)
    target.load_state_dict(source.state_dict())
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(source.forward(x), target.forward(x))
    with pytest.raises(ValueError, match="missing"):
        target.load_state_dict({})
    bad = source.state_dict()
    bad["layers.0.W"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match="shape"):
        target.load_state_dict(bad)


def test_zero_grad_resets_dense_and_sparse():
    layer = Linear(2, 1, random_state=0)
    layer.forward(np.ones((3, 2)))
    layer.backward(np.ones((3, 1)))
    assert np.any(layer.grads["W"] != 0)
    layer.zero_grad()
    assert np.all(layer.grads["W"] == 0)


def test_train_eval_flags_reach_children():
    mlp = MLP(2, [2], dropout=0.5, random_state=0)
    mlp.eval()
    assert all(not m.training for m in mlp.modules())
    mlp.train()
    assert all(m.training for m in mlp.modules())


@pytest.mark.parametrize("bad", ["int8", np.int64, "float16", "nonsense"])
def test_check_dtype_rejects(bad):
    with pytest.raises(ValueError, match="float32 or float64"):
        check_dtype(bad)


def test_check_random_state():
    assert isinstance(check_random_state(None), np.random.Generator)
    a = check_random_state(3).random()
    b = check_random_state(3).random()
    assert a == b
    generator = np.random.default_rng(0)
    assert check_random_state(generator) is generator
    with pytest.raises(TypeError, match="random_state"):
        check_random_state("seed")
    with pytest.raises(ValueError, match="non-negative"):
        check_random_state(-1)



@pytest.mark.parametrize("largest", [2**16 - 1, 2**16, 2**32 - 1, 2**32, 2**40])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_stable_argsort_ids_matches_numpy(largest, data):
    # a few distinct values near the digit boundaries, so that ties check stability
    choices = [0, 1, 2**16 - 1, 2**16, largest // 3, largest - 1, largest]
    values = data.draw(st.lists(st.sampled_from([v for v in choices if v <= largest])
                                | st.integers(0, largest), min_size=1, max_size=300))
    ids = np.array(values, dtype=np.int64)
    order = _stable_argsort_ids(ids, int(ids.min()), int(ids.max()))
    np.testing.assert_array_equal(order, np.argsort(ids, kind="stable"))


def test_stable_argsort_ids_negative_falls_back():
    ids = np.array([3, -1, 3, 70000, -1])
    order = _stable_argsort_ids(ids, -1, 70000)
    np.testing.assert_array_equal(order, [1, 4, 0, 2, 3])
