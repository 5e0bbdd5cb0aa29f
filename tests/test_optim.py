"""Tests of the optimizers, gradient clipping and mini-batch aware L2 regularization."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.nn.base import Module, SparseGrad
from minirec.optim import (
    SGD, Adagrad, Adam, MiniBatchAwareL2, clip_grad_norm, row_frequencies,
)


class Dense(Module):
    """Holds dense parameters given as keyword arguments."""

    def __init__(self, dtype=np.float64, **values):
        super().__init__()
        for name, value in values.items():
            self.add_param(name, np.array(value, dtype=dtype))


class Table(Module):
    """Holds one embedding table ``weight`` (N, K) with a sparse gradient."""

    def __init__(self, weight, dtype=np.float64):
        super().__init__()
        self.add_param("weight", np.array(weight, dtype=dtype), sparse=True)


class Net(Module):
    """A dense child and a table child, so parameters have dotted names."""

    def __init__(self, num_rows=6, dim=2, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.dense = Dense(w=rng.normal(size=(3,)), b=rng.normal(size=(2, 2)))
        self.embedding = Table(rng.normal(size=(num_rows, dim)))


def set_dense_grads(model, rng):
    for module in model.modules():
        for name, grad in module.grads.items():
            if not isinstance(grad, SparseGrad):
                grad[...] = rng.normal(size=grad.shape)


OPTIMIZERS = {
    "sgd": lambda model, **kw: SGD(model, 0.1, **kw),
    "sgd_momentum": lambda model, **kw: SGD(model, 0.1, momentum=0.9, **kw),
    "adagrad": lambda model, **kw: Adagrad(model, 0.1, initial_accumulator=0.1, **kw),
    "adam": lambda model, **kw: Adam(model, 0.1, **kw),
}


# ---------------------------------------------------------------- hand-worked examples

def test_adam_constant_gradient_hand_values():
    # Step 1 with g = 0.5:
    #   m = 0.1 * 0.5 = 0.05           v = 0.001 * 0.25 = 0.00025
    #   m_hat = 0.05 / (1 - 0.9) = 0.5 v_hat = 0.00025 / (1 - 0.999) = 0.25
    #   w = 1 - 0.1 * 0.5 / (sqrt(0.25) + 1e-8) = 1 - 0.1 / (1 + 2e-8)
    #     = 1 - 0.0999999980000000004 = 0.9000000020
    # With a constant gradient m_hat = 0.5 and v_hat = 0.25 at every step, so each step
    # subtracts the same 0.099999998.
    model = Dense(w=[1.0])
    optimizer = Adam(model, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    expected = [0.9000000020, 0.8000000040, 0.7000000060]
    for value in expected:
        model.grads["w"][...] = 0.5
        optimizer.step()
        assert model.params["w"][0] == pytest.approx(value, abs=1e-13)


def test_adam_row_present_every_step_matches_dense():
    # A table row present at every step has t equal to the global step count.
    table = Table([[1.0], [5.0]])
    optimizer = Adam(table, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    for value in [0.9000000020, 0.8000000040, 0.7000000060]:
        table.grads["weight"].zero()
        table.grads["weight"].add([0], [[0.5]])
        optimizer.step()
        assert table.params["weight"][0, 0] == pytest.approx(value, abs=1e-13)
    assert table.params["weight"][1, 0] == 5.0


def test_sgd_momentum_hand_values():
    # lr = 0.1, momentum = 0.9, w = 1, gradients 1, 2, 0:
    #   v1 = 1                 w = 1 - 0.1 * 1     = 0.9
    #   v2 = 0.9 * 1 + 2 = 2.9 w = 0.9 - 0.29     = 0.61
    #   v3 = 0.9 * 2.9 = 2.61  w = 0.61 - 0.261   = 0.349
    model = Dense(w=[1.0])
    optimizer = SGD(model, 0.1, momentum=0.9)
    for grad, expected in [(1.0, 0.9), (2.0, 0.61), (0.0, 0.349)]:
        model.grads["w"][...] = grad
        optimizer.step()
        assert model.params["w"][0] == pytest.approx(expected, abs=1e-15)


def test_sgd_momentum_sparse_rows_hand_values():
    # Row 1 gets gradients 1 (step 1), nothing (step 2), 2 (step 3). Its buffer is left
    # alone at step 2: v = 1, then 0.9 * 1 + 2 = 2.9, so w = 1 - 0.1 - 0.29 = 0.61.
    table = Table([[0.0], [1.0]])
    optimizer = SGD(table, 0.1, momentum=0.9)
    for rows, grads in [([1], [[1.0]]), ([0], [[1.0]]), ([1], [[2.0]])]:
        table.grads["weight"].zero()
        table.grads["weight"].add(rows, grads)
        optimizer.step()
    assert table.params["weight"][1, 0] == pytest.approx(0.61, abs=1e-15)


def test_adagrad_hand_values():
    # lr = 0.5, s0 = 0, w = 1, gradients 3 then 4 (eps = 1e-10 is below the tolerance):
    #   s = 9   w = 1 - 0.5 * 3 / 3   = 0.5
    #   s = 25  w = 0.5 - 0.5 * 4 / 5 = 0.1
    model = Dense(w=[1.0])
    optimizer = Adagrad(model, 0.5)
    for grad, expected in [(3.0, 0.5), (4.0, 0.1)]:
        model.grads["w"][...] = grad
        optimizer.step()
        assert model.params["w"][0] == pytest.approx(expected, abs=1e-9)


def test_adagrad_initial_accumulator():
    # s0 = 16, g = 3: s = 25, w = 1 - 0.5 * 3 / 5 = 0.7, for a dense entry and a table row.
    model = Dense(w=[1.0])
    model.grads["w"][...] = 3.0
    Adagrad(model, 0.5, initial_accumulator=16.0).step()
    assert model.params["w"][0] == pytest.approx(0.7, abs=1e-9)

    table = Table([[1.0], [1.0]])
    table.grads["weight"].add([0], [[3.0]])
    Adagrad(table, 0.5, initial_accumulator=16.0).step()
    assert table.params["weight"][0, 0] == pytest.approx(0.7, abs=1e-9)
    assert table.params["weight"][1, 0] == 1.0


# ---------------------------------------------------------------- clipping

def test_clip_grad_norm_example():
    model = Net(num_rows=4, dim=1)
    model.dense = Dense(a=[0.0, 0.0])
    model.dense.grads["a"][...] = [3.0, 4.0]
    model.embedding.grads["weight"].add([2, 2], [[5.0], [7.0]])

    total = clip_grad_norm(model, 1.3)

    assert total == pytest.approx(13.0, rel=1e-15)
    np.testing.assert_allclose(model.dense.grads["a"], [0.3, 0.4], rtol=1e-14)
    dense_table_grad = model.embedding.grads["weight"].to_dense()
    np.testing.assert_allclose(dense_table_grad[:, 0], [0.0, 0.0, 1.2, 0.0], rtol=1e-14)


def test_clip_grad_norm_below_limit_unchanged():
    model = Dense(a=[0.0, 0.0])
    model.grads["a"][...] = [3.0, 4.0]
    assert clip_grad_norm(model, 10.0) == pytest.approx(5.0)
    np.testing.assert_array_equal(model.grads["a"], [3.0, 4.0])


def test_step_clip_norm_moves_by_clipped_gradient():
    model = Net(num_rows=4, dim=1)
    model.dense = Dense(a=[0.0, 0.0])
    model.dense.grads["a"][...] = [3.0, 4.0]
    model.embedding.grads["weight"].add([2, 2], [[5.0], [7.0]])
    table_before = model.embedding.params["weight"].copy()

    SGD(model, 1.0, clip_norm=1.3).step()

    np.testing.assert_allclose(model.dense.params["a"], [-0.3, -0.4], rtol=1e-14)
    change = model.embedding.params["weight"] - table_before
    np.testing.assert_allclose(change[:, 0], [0.0, 0.0, -1.2, 0.0], rtol=1e-14, atol=0)
    # The stored gradients are not modified by step().
    np.testing.assert_array_equal(model.dense.grads["a"], [3.0, 4.0])


# ---------------------------------------------------------------- lazy sparse updates

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_rows_outside_batch_bit_identical(name, weight_decay):
    rng = np.random.default_rng(1)
    model = Net(num_rows=50, dim=3)
    optimizer = OPTIMIZERS[name](model, weight_decay=weight_decay)
    before = model.embedding.params["weight"].copy()
    for _ in range(30):
        optimizer.zero_grad()
        set_dense_grads(model, rng)
        rows = rng.integers(0, 10, size=8)                # only rows 0..9 are ever used
        model.embedding.grads["weight"].add(rows, rng.normal(size=(8, 3)))
        optimizer.step()
    after = model.embedding.params["weight"]
    np.testing.assert_array_equal(after[10:], before[10:])
    assert not np.array_equal(after[:10], before[:10])


def test_adam_per_row_step_count_matches_dense_history():
    # Row 3 appears at global steps 4 and 9 of 10. Its result must equal dense Adam run on
    # those two gradients alone (bias correction for t = 1 and t = 2, not t = 4 and t = 9).
    rng = np.random.default_rng(2)
    table = Table(rng.normal(size=(5, 2)))
    optimizer = Adam(table, lr=0.05, weight_decay=0.1)
    row_start = table.params["weight"][3].copy()
    history = []
    for step in range(1, 11):
        table.grads["weight"].zero()
        other = [0, 1] if step % 2 else [2, 4]
        table.grads["weight"].add(other, rng.normal(size=(2, 2)))
        if step in (4, 9):
            grad = rng.normal(size=(1, 2))
            history.append(grad)
            table.grads["weight"].add([3], grad)
        optimizer.step()

    single = Dense(w=row_start[None, :])
    reference = Adam(single, lr=0.05, weight_decay=0.1)
    for grad in history:
        single.grads["w"][...] = grad
        reference.step()
    np.testing.assert_allclose(table.params["weight"][3], single.params["w"][0],
                               rtol=1e-15, atol=1e-15)
    assert optimizer.state["weight"]["step"][3] == 2
    assert optimizer.step_count == 10


def test_adam_repeated_row_in_batch_is_coalesced():
    # Row 0 given gradients 0.2 and 0.3 in one batch must behave like one gradient 0.5.
    split = Table([[1.0]])
    split.grads["weight"].add([0, 0], [[0.2], [0.3]])
    Adam(split, lr=0.1).step()
    whole = Table([[1.0]])
    whole.grads["weight"].add([0], [[0.5]])
    Adam(whole, lr=0.1).step()
    assert split.params["weight"][0, 0] == whole.params["weight"][0, 0]


def test_empty_sparse_gradient_changes_nothing():
    table = Table(np.ones((4, 2)))
    optimizer = Adam(table, lr=0.1, weight_decay=0.5)
    optimizer.step()
    np.testing.assert_array_equal(table.params["weight"], np.ones((4, 2)))
    assert optimizer.state["weight"] == {}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_arrays_allocated_once(name):
    rng = np.random.default_rng(3)
    model = Net(num_rows=1000, dim=4)
    optimizer = OPTIMIZERS[name](model, weight_decay=0.01)

    def identities():
        return {(param, key): id(value) for param, entries in optimizer.state.items()
                for key, value in entries.items() if isinstance(value, np.ndarray)}

    def one_step():
        optimizer.zero_grad()
        set_dense_grads(model, rng)
        rows = rng.integers(0, 1000, size=16)
        model.embedding.grads["weight"].add(rows, rng.normal(size=(16, 4)))
        optimizer.step()

    one_step()
    first = identities()
    table = model.embedding.params["weight"]
    for _ in range(5):
        one_step()
    assert identities() == first
    assert model.embedding.params["weight"] is table


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_memory_independent_of_vocabulary(name):
    # A table of 100,000 x 16 float64 (12.8 MB). After the first step has allocated the
    # state, one step with 32 rows must allocate far less than one table.
    rng = np.random.default_rng(4)
    table = Table(np.zeros((100_000, 16)))
    optimizer = OPTIMIZERS[name](table, weight_decay=0.01)

    def one_step():
        table.grads["weight"].zero()
        rows = rng.integers(0, 100_000, size=32)
        table.grads["weight"].add(rows, rng.normal(size=(32, 16)))
        optimizer.step()

    one_step()
    tracemalloc.start()
    try:
        one_step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < table.params["weight"].nbytes / 50


@settings(max_examples=30, deadline=None)
@given(
    batches=st.lists(st.lists(st.integers(0, 7), min_size=1, max_size=6), min_size=1,
                     max_size=5),
    use_adagrad=st.booleans(),
)
def test_lazy_equals_dense_without_momentum(batches, use_adagrad):
    # Plain SGD and Adagrad do not change a row whose gradient is zero, so the lazy update
    # of a table must equal the dense update on its densified gradient.
    rng = np.random.default_rng(len(batches))
    initial = rng.normal(size=(8, 3))
    table = Table(initial)
    dense = Dense(w=initial)
    if use_adagrad:
        lazy_opt, dense_opt = Adagrad(table, 0.3), Adagrad(dense, 0.3)
    else:
        lazy_opt, dense_opt = SGD(table, 0.3), SGD(dense, 0.3)
    for rows in batches:
        grads = rng.normal(size=(len(rows), 3))
        table.grads["weight"].zero()
        table.grads["weight"].add(rows, grads)
        dense.grads["w"][...] = table.grads["weight"].to_dense()
        lazy_opt.step()
        dense_opt.step()
    np.testing.assert_allclose(table.params["weight"], dense.params["w"], rtol=1e-14,
                               atol=1e-15)


# ---------------------------------------------------------------- weight decay, dtype, state

def test_weight_decay_dense_hand_value():
    # g + wd * w = 0.5 + 0.1 * 2 = 0.7, so w = 2 - 0.1 * 0.7 = 1.93.
    model = Dense(w=[2.0])
    model.grads["w"][...] = 0.5
    SGD(model, 0.1, weight_decay=0.1).step()
    assert model.params["w"][0] == pytest.approx(1.93, abs=1e-15)


def test_weight_decay_sparse_only_batch_rows():
    # Row 0 is in the batch with gradient 0: w = 2 - 0.1 * (0.1 * 2) = 1.98.
    # Row 1 is absent and keeps 3.
    table = Table([[2.0], [3.0]])
    table.grads["weight"].add([0], [[0.0]])
    SGD(table, 0.1, weight_decay=0.1).step()
    assert table.params["weight"][0, 0] == pytest.approx(1.98, abs=1e-15)
    assert table.params["weight"][1, 0] == 3.0


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_parameters_stay_float32(name):
    rng = np.random.default_rng(5)
    model = Net()
    model.dense = Dense(dtype=np.float32, w=[1.0, 2.0])
    model.embedding = Table(np.ones((6, 2)), dtype=np.float32)
    optimizer = OPTIMIZERS[name](model, weight_decay=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        model.dense.grads["w"][...] = rng.normal(size=2)
        model.embedding.grads["weight"].add([1, 4], rng.normal(size=(2, 2)))
        optimizer.step()
    assert model.dense.params["w"].dtype == np.float32
    assert model.embedding.params["weight"].dtype == np.float32
    for entries in optimizer.state.values():
        for key, value in entries.items():
            if isinstance(value, np.ndarray) and key != "step":
                assert value.dtype == np.float32, key


def test_state_keyed_by_dotted_name():
    model = Net()
    model.embedding.grads["weight"].add([1], [[1.0, 1.0]])
    optimizer = Adam(model)
    optimizer.step()
    assert set(optimizer.state) == {"dense.w", "dense.b", "embedding.weight"}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip(name):
    # Train one model 3 steps, copy its parameters and optimizer state into a second model
    # that trained differently, then take the same 4th step on both: results must agree.
    rng = np.random.default_rng(6)
    steps = [(rng.normal(size=3), rng.normal(size=(2, 2)), rng.integers(0, 6, size=3),
              rng.normal(size=(3, 2))) for _ in range(4)]
    first, second = Net(seed=1), Net(seed=2)
    opt_first, opt_second = OPTIMIZERS[name](first), OPTIMIZERS[name](second)

    def one_step(model, optimizer, grads):
        w_grad, b_grad, rows, table_grad = grads
        optimizer.zero_grad()
        model.dense.grads["w"][...] = w_grad
        model.dense.grads["b"][...] = b_grad
        model.embedding.grads["weight"].add(rows, table_grad)
        optimizer.step()

    for grads in steps[:3]:
        one_step(first, opt_first, grads)
        one_step(second, opt_second, steps[0])
    second.load_state_dict(first.state_dict())
    opt_second.load_state_dict(opt_first.state_dict())
    saved = opt_first.state_dict()
    one_step(first, opt_first, steps[3])
    one_step(second, opt_second, steps[3])

    for key, value in first.state_dict().items():
        np.testing.assert_array_equal(second.state_dict()[key], value)
    # state_dict() returns copies, which later steps do not change.
    for param, entries in saved["state"].items():
        for key, value in entries.items():
            assert not np.shares_memory(value, opt_first.state[param][key])


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("make, argument, value", [
    (lambda m: SGD(m, 0.0), "lr", "0.0"),
    (lambda m: SGD(m, -1.0), "lr", "-1.0"),
    (lambda m: Adam(m, float("nan")), "lr", "nan"),
    (lambda m: Adagrad(m, float("inf")), "lr", "inf"),
    (lambda m: SGD(m, 0.1, momentum=-0.5), "momentum", "-0.5"),
    (lambda m: SGD(m, 0.1, weight_decay=-0.1), "weight_decay", "-0.1"),
    (lambda m: Adam(m, weight_decay=-1e-4), "weight_decay", "-0.0001"),
    (lambda m: Adagrad(m, 0.1, clip_norm=0.0), "clip_norm", "0.0"),
    (lambda m: Adam(m, clip_norm=-2.0), "clip_norm", "-2.0"),
    (lambda m: Adam(m, betas=(1.0, 0.999)), "betas[0]", "1.0"),
    (lambda m: Adam(m, betas=(-0.1, 0.999)), "betas[0]", "-0.1"),
    (lambda m: Adam(m, betas=(0.9, 1.0)), "betas[1]", "1.0"),
    (lambda m: Adam(m, betas=(0.9,)), "betas", "(0.9,)"),
    (lambda m: Adam(m, eps=0.0), "eps", "0.0"),
    (lambda m: Adagrad(m, 0.1, eps=-1.0), "eps", "-1.0"),
    (lambda m: Adagrad(m, 0.1, initial_accumulator=-1.0), "initial_accumulator", "-1.0"),
    (lambda m: clip_grad_norm(m, 0.0), "max_norm", "0.0"),
])
def test_bad_arguments_raise(make, argument, value):
    with pytest.raises(ValueError) as error:
        make(Dense(w=[1.0]))
    message = str(error.value)
    assert argument in message
    assert value in message


def test_model_must_be_module():
    with pytest.raises(TypeError, match="Module"):
        SGD({"w": np.zeros(2)}, 0.1)


def test_lr_must_be_a_number():
    with pytest.raises(TypeError, match="lr"):
        SGD(Dense(w=[1.0]), "0.1")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_non_finite_gradient_raises_and_changes_nothing(name, bad):
    rng = np.random.default_rng(7)
    model = Net()
    optimizer = OPTIMIZERS[name](model)
    set_dense_grads(model, rng)
    model.embedding.grads["weight"].add([1], [[0.5, 0.5]])
    optimizer.step()                              # create some state first
    params_before = model.state_dict()
    state_before = optimizer.state_dict()

    set_dense_grads(model, rng)
    model.embedding.grads["weight"].add([2, 3], [[1.0, 1.0], [bad, 0.0]])
    with pytest.raises(FloatingPointError, match="embedding.weight"):
        optimizer.step()

    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, params_before[key])
    assert optimizer.step_count == 1
    for param, entries in state_before["state"].items():
        for key, value in entries.items():
            np.testing.assert_array_equal(optimizer.state[param][key], value)


def test_non_finite_dense_gradient_names_parameter():
    model = Net()
    model.dense.grads["b"][0, 1] = np.nan
    with pytest.raises(FloatingPointError, match="dense.b"):
        SGD(model, 0.1).step()
    with pytest.raises(FloatingPointError, match="dense.b"):
        clip_grad_norm(model, 1.0)


# ---------------------------------------------------------------- mini-batch aware L2

def test_mini_batch_aware_l2_hand_example():
    # strength 0.1, counts [0, 5, 2, 10]; rows 0 and 2 are in the batch (row 2 twice).
    #   row 0: count 0 is treated as 1 -> 0.1 * w0 / 1 = 0.1 * (1, -2) = (0.1, -0.2)
    #   row 2: 0.1 * w2 / 2 = 0.05 * (4, 6) = (0.2, 0.3)
    #   rows 1 and 3 are absent and get nothing.
    # Penalty: 0.5 * (0.1 * (1 + 4) / 1 + 0.1 * (16 + 36) / 2) = 0.5 * (0.5 + 2.6) = 1.55
    table = Table([[1.0, -2.0], [3.0, 3.0], [4.0, 6.0], [7.0, 7.0]])
    table.grads["weight"].add([2, 0, 2], np.zeros((3, 2)))
    regularizer = MiniBatchAwareL2(0.1, {"weight": np.array([0, 5, 2, 10])})

    penalty = regularizer.apply(table)

    expected = np.array([[0.1, -0.2], [0.0, 0.0], [0.2, 0.3], [0.0, 0.0]])
    np.testing.assert_allclose(table.grads["weight"].to_dense(), expected, rtol=1e-15)
    assert penalty == pytest.approx(1.55, rel=1e-14)


def test_mini_batch_aware_l2_adds_to_loss_gradient():
    table = Table([[2.0], [3.0]])
    table.grads["weight"].add([1], [[0.5]])
    MiniBatchAwareL2(1.0, {"weight": [1, 3]}).apply(table)
    # 0.5 + 1.0 * 3 / 3 = 1.5 for row 1; row 0 absent.
    np.testing.assert_allclose(table.grads["weight"].to_dense(), [[0.0], [1.5]])


def test_mini_batch_aware_l2_dotted_name():
    model = Net(num_rows=3, dim=1)
    model.embedding.params["weight"][...] = [[1.0], [2.0], [4.0]]
    model.embedding.grads["weight"].add([2], [[0.0]])
    MiniBatchAwareL2(0.5, {"embedding.weight": [1, 1, 4]}).apply(model)
    # 0.5 * 4 / 4 = 0.5
    np.testing.assert_allclose(model.embedding.grads["weight"].to_dense()[:, 0],
                               [0.0, 0.0, 0.5])


def test_mini_batch_aware_l2_errors():
    model = Net(num_rows=3, dim=1)
    with pytest.raises(ValueError, match="strength"):
        MiniBatchAwareL2(-0.1, {"embedding.weight": [1, 1, 1]})
    with pytest.raises(ValueError, match="frequencies"):
        MiniBatchAwareL2(0.1, {"embedding.weight": [1, -1, 1]})
    with pytest.raises(ValueError, match="frequencies"):
        MiniBatchAwareL2(0.1, {})
    with pytest.raises(ValueError, match="embedding.table"):
        MiniBatchAwareL2(0.1, {"embedding.table": [1, 1, 1]}).apply(model)
    with pytest.raises(ValueError, match="dense gradient"):
        MiniBatchAwareL2(0.1, {"dense.w": [1, 1, 1]}).apply(model)
    with pytest.raises(ValueError, match="4 entries"):
        MiniBatchAwareL2(0.1, {"embedding.weight": [1, 1, 1, 1]}).apply(model)


def test_row_frequencies_counts():
    counts = row_frequencies(np.array([[1, 2], [2, 0]]), np.array([2]), num_rows=4)
    np.testing.assert_array_equal(counts, [1, 1, 3, 0])
    np.testing.assert_array_equal(row_frequencies(np.array([3, 3])), [0, 0, 0, 2])
    with pytest.raises(ValueError, match="num_rows"):
        row_frequencies(np.array([5]), num_rows=4)
    with pytest.raises(ValueError, match=">= 0"):
        row_frequencies(np.array([-1]))


# ---------------------------------------------------------------- PyTorch as an oracle

def _torch_run(name, initial, grads, weight_decay):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    w = torch.tensor(initial, dtype=torch.float64, requires_grad=True)
    optimizer = {
        "sgd": lambda: torch.optim.SGD([w], lr=0.1, weight_decay=weight_decay),
        "sgd_momentum": lambda: torch.optim.SGD([w], lr=0.1, momentum=0.9,
                                                weight_decay=weight_decay),
        "adagrad": lambda: torch.optim.Adagrad([w], lr=0.1, initial_accumulator_value=0.1,
                                               weight_decay=weight_decay, eps=1e-10),
        "adam": lambda: torch.optim.Adam([w], lr=0.1, weight_decay=weight_decay),
    }[name]()
    for grad in grads:
        w.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    return w.detach().numpy()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_dense_matches_torch(name, weight_decay):
    pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    rng = np.random.default_rng(8)
    initial = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(6)]
    model = Dense(w=initial)
    optimizer = OPTIMIZERS[name](model, weight_decay=weight_decay)
    for grad in grads:
        model.grads["w"][...] = grad
        optimizer.step()
    expected = _torch_run(name, initial, grads, weight_decay)
    np.testing.assert_allclose(model.params["w"], expected, rtol=1e-12, atol=1e-14)


def test_lazy_adagrad_matches_torch_sparse():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    rng = np.random.default_rng(9)
    initial = rng.normal(size=(10, 3))
    table = Table(initial)
    optimizer = Adagrad(table, 0.2, initial_accumulator=0.1)
    w = torch.tensor(initial, dtype=torch.float64, requires_grad=True)
    reference = torch.optim.Adagrad([w], lr=0.2, initial_accumulator_value=0.1, eps=1e-10)
    for _ in range(5):
        rows = rng.integers(0, 10, size=4)
        values = rng.normal(size=(4, 3))
        table.grads["weight"].zero()
        table.grads["weight"].add(rows, values)
        optimizer.step()
        indices = torch.tensor(rows[None, :], dtype=torch.int64)
        w.grad = torch.sparse_coo_tensor(indices, torch.tensor(values), (10, 3),
                                         check_invariants=True)
        reference.step()
    np.testing.assert_allclose(table.params["weight"], w.detach().numpy(), rtol=1e-12,
                               atol=1e-14)
