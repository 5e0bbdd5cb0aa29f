"""Tests of FMInteraction (field-level pairwise term) and FactorizationMachine (classic FM)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.gradcheck import check_gradients
from minirec.nn.embedding import Embedding, EmbeddingBag
from minirec.nn.fm import FactorizationMachine, FMInteraction

TOLERANCE = 1e-6


def brute_force_pairwise(E):
    """sum_{i<j} <e_i, e_j> per row, by two loops."""
    B, F, K = E.shape
    total = np.zeros(B)
    for i in range(F):
        for j in range(i + 1, F):
            total += np.sum(E[:, i] * E[:, j], axis=1)
    return total


def reference_fm():
    fm = FactorizationMachine(3, 2, random_state=0)
    fm.params["V"][...] = [[1.0, 2.0], [3.0, -1.0], [0.5, 1.0]]
    return fm


def test_fm_reference_pairwise_term():
    # x = (1, 0.5, 3), v1 = (1, 2), v2 = (3, -1), v3 = (0.5, 1); w0 = 0 and w = 0, so y is the
    # pairwise term alone.
    # xV = 1*(1, 2) + 0.5*(3, -1) + 3*(0.5, 1) = (4, 4.5); square_of_sum = (16, 20.25)
    # x^2 = (1, 0.25, 9), V^2 rows (1, 4), (9, 1), (0.25, 1)
    # sum_of_square = (1 + 2.25 + 2.25, 4 + 0.25 + 9) = (5.5, 13.25)
    # 0.5 * [(16 - 5.5) + (20.25 - 13.25)] = 0.5 * (10.5 + 7) = 8.75
    # Check by pairs: <v1,v2> x1 x2 = 1 * 0.5 = 0.5, <v1,v3> x1 x3 = 2.5 * 3 = 7.5,
    # <v2,v3> x2 x3 = 0.5 * 1.5 = 0.75; total 8.75.
    fm = reference_fm()
    y = fm.forward(np.array([[1.0, 0.5, 3.0]]))
    np.testing.assert_allclose(y, [8.75], rtol=1e-15)


def test_fm_reference_gradient_of_v():
    # d y / d V_ik = x_i (xV)_k - x_i^2 V_ik with xV = (4, 4.5):
    # row 1: 1 * (4, 4.5) - 1 * (1, 2)         = (3, 2.5)
    # row 2: 0.5 * (4, 4.5) - 0.25 * (3, -1)   = (2 - 0.75, 2.25 + 0.25) = (1.25, 2.5)
    # row 3: 3 * (4, 4.5) - 9 * (0.5, 1)       = (12 - 4.5, 13.5 - 9) = (7.5, 4.5)
    fm = reference_fm()
    fm.forward(np.array([[1.0, 0.5, 3.0]]))
    fm.backward(np.array([1.0]))
    np.testing.assert_allclose(fm.grads["V"], [[3.0, 2.5], [1.25, 2.5], [7.5, 4.5]],
                               rtol=1e-15)


def test_fm_linear_part():
    # y = w0 + x.w + 8.75 = 0.5 + (1*2 + 0.5*(-4) + 3*1) + 8.75 = 0.5 + 3 + 8.75 = 12.25
    fm = reference_fm()
    fm.params["w0"][...] = 0.5
    fm.params["w"][...] = [2.0, -4.0, 1.0]
    np.testing.assert_allclose(fm.forward(np.array([[1.0, 0.5, 3.0]])), [12.25])


FIELD_VECTORS = {
    "a": (1.0, 0.0),     # field A = {a}
    "b1": (0.0, 1.0),    # field B = {b1, b2}
    "b2": (2.0, 1.0),
    "c": (1.0, 1.0),     # field C = {c}
}


def pooled_fields(mode, b_ids):
    """Pool fields A, B, C from one table (row 0 = padding) with EmbeddingBag; E (1, 3, 2)."""
    table = Embedding(5, 2, random_state=0)
    table.params["weight"][...] = [(0.0, 0.0), FIELD_VECTORS["a"], FIELD_VECTORS["b1"],
                                   FIELD_VECTORS["b2"], FIELD_VECTORS["c"]]
    bag = EmbeddingBag(table, mode=mode)
    fields = [bag.forward(np.array([[1, 0]])), bag.forward(np.array([b_ids])),
              bag.forward(np.array([[4, 0]]))]
    return np.stack(fields, axis=1)


def test_field_fm_sum_pooling():
    # A = (1, 0), B = (0, 1) + (2, 1) = (2, 2), C = (1, 1)
    # <A, B> + <A, C> + <B, C> = 2 + 1 + 4 = 7
    # identity: sum = (4, 3) -> 16 + 9 = 25; squares 1 + 8 + 2 = 11; (25 - 11) / 2 = 7
    E = pooled_fields("sum", [2, 3])
    np.testing.assert_allclose(E[0, 1], [2.0, 2.0])
    np.testing.assert_allclose(FMInteraction().forward(E), [7.0])


def test_field_fm_mean_pooling():
    # B = ((0, 1) + (2, 1)) / 2 = (1, 1); <A, B> + <A, C> + <B, C> = 1 + 1 + 2 = 4
    E = pooled_fields("mean", [2, 3])
    np.testing.assert_allclose(FMInteraction().forward(E), [4.0])


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_field_fm_empty_field(mode):
    # B empty pools to (0, 0): only <A, C> = 1 * 1 + 0 * 1 = 1 remains, in both modes
    E = pooled_fields(mode, [0, 0])
    out = FMInteraction().forward(E)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [1.0])


def test_classic_fm_adds_within_field_pair():
    # Over the indicator vector x = (1, 1, 1, 1) of a, b1, b2, c the classic FM also pairs
    # b1 with b2: 7 + <b1, b2> = 7 + (0*2 + 1*1) = 8.
    fm = FactorizationMachine(4, 2, random_state=0)
    fm.params["V"][...] = list(FIELD_VECTORS.values())
    np.testing.assert_allclose(fm.forward(np.ones((1, 4))), [8.0])
    # With the mean-pooling weights x = (1, 0.5, 0.5, 1): 4 + 0.25 * <b1, b2> = 4.25.
    np.testing.assert_allclose(fm.forward(np.array([[1.0, 0.5, 0.5, 1.0]])), [4.25])


shapes = dict(B=st.integers(1, 3), F=st.integers(1, 5), K=st.integers(1, 4),
              seed=st.integers(0, 2**31 - 1))


@settings(max_examples=30, deadline=None)
@given(**shapes)
def test_fm_interaction_matches_pairs_and_gradcheck(B, F, K, seed):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((B, F, K))
    module = FMInteraction()
    np.testing.assert_allclose(module.forward(E), brute_force_pairwise(E), atol=1e-12)
    result = check_gradients(module, [E], random_state=seed)
    assert result.passed(TOLERANCE), result


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), n=st.integers(2, 5), k=st.integers(1, 4),
       seed=st.integers(0, 2**31 - 1))
def test_factorization_machine_matches_definition_and_gradcheck(B, n, k, seed):
    rng = np.random.default_rng(seed)
    fm = FactorizationMachine(n, k, init_std=0.5, random_state=seed)
    fm.params["w0"][...] = rng.standard_normal()
    fm.params["w"][...] = rng.standard_normal(n)
    x = rng.standard_normal((B, n))
    # y = w0 + x.w + sum_{i<j} <v_i, v_j> x_i x_j, where the pairs are x_i v_i as "fields"
    expected = (fm.params["w0"][0] + x @ fm.params["w"]
                + brute_force_pairwise(x[:, :, None] * fm.params["V"][None]))
    np.testing.assert_allclose(fm.forward(x), expected, atol=1e-12)
    result = check_gradients(fm, [x], random_state=seed)
    assert result.passed(TOLERANCE), result


def test_fm_one_feature_has_no_pairs():
    # With n = 1 there is no pair: y = w0 + x w, and dy/dV = x (xV) - x^2 V = 0. The two
    # sides of the identity cancel only up to rounding, which is why the hypothesis check
    # above starts at n = 2: a central difference of that rounding noise, divided by the
    # floor 1e-4, can exceed 1e-6 although nothing is wrong.
    fm = FactorizationMachine(1, 3, init_std=0.5, random_state=0)
    fm.params["w0"][...] = 0.5
    fm.params["w"][...] = 2.0
    x = np.array([[3.0], [-1.5]])
    np.testing.assert_allclose(fm.forward(x), [6.5, -2.5], atol=1e-12)
    d_x = fm.backward(np.array([1.0, 1.0]))
    np.testing.assert_allclose(d_x, [[2.0], [2.0]], atol=1e-12)
    np.testing.assert_allclose(fm.grads["V"], np.zeros((1, 3)), atol=1e-12)


def test_fm_gradients_accumulate():
    fm = reference_fm()
    x = np.array([[1.0, 0.5, 3.0]])
    for _ in range(2):
        fm.forward(x)
        fm.backward(np.array([1.0]))
    np.testing.assert_allclose(fm.grads["V"], 2 * np.array([[3.0, 2.5], [1.25, 2.5], [7.5, 4.5]]))
    np.testing.assert_allclose(fm.grads["w0"], [2.0])


def test_one_field_gives_zero():
    E = np.arange(6.0).reshape(2, 1, 3)
    module = FMInteraction()
    np.testing.assert_array_equal(module.forward(E), [0.0, 0.0])
    np.testing.assert_array_equal(module.backward(np.ones(2)), np.zeros((2, 1, 3)))


def test_float32_keeps_float32():
    E = np.ones((2, 3, 4), dtype=np.float32)
    module = FMInteraction()
    assert module.forward(E).dtype == np.float32
    assert module.backward(np.ones(2, dtype=np.float32)).dtype == np.float32

    fm = FactorizationMachine(3, 2, random_state=0, dtype=np.float32)
    for name, value in fm.params.items():
        assert value.dtype == np.float32, name
    x = np.ones((2, 3))
    assert fm.forward(x).dtype == np.float32
    assert fm.backward(np.ones(2)).dtype == np.float32
    for name, grad in fm.grads.items():
        assert grad.dtype == np.float32, name


def test_fm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_features must be a positive integer, got 0"):
        FactorizationMachine(0, 2)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        FactorizationMachine(3, 2.5)
    with pytest.raises(ValueError, match="init_std must be a non-negative number, got -1"):
        FactorizationMachine(3, 2, init_std=-1.0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        FactorizationMachine(3, 2, dtype=np.int32)
    fm = FactorizationMachine(3, 2, random_state=0)
    with pytest.raises(ValueError, match=r"n_features=3\), got shape \(2, 4\)"):
        fm.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"E of shape \(B, F, K\), got shape \(2, 3\)"):
        FMInteraction().forward(np.zeros((2, 3)))
