"""Tests of PairwiseProducts (AFM's pair-wise interaction layer) and BiInteraction (NFM)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.gradcheck import check_gradients
from minirec.nn.pairwise import BiInteraction, PairwiseProducts

TOLERANCE = 1e-6

shapes = dict(B=st.integers(1, 3), F=st.integers(1, 5), K=st.integers(1, 4),
              seed=st.integers(0, 2**31 - 1))


def test_pairs_are_lexicographic():
    module = PairwiseProducts(num_fields=4)
    assert module.pairs == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def test_pairs_set_by_forward():
    module = PairwiseProducts()
    module.forward(np.zeros((1, 3, 2)))
    assert module.pairs == [(0, 1), (0, 2), (1, 2)]
    module.forward(np.zeros((1, 2, 2)))
    assert module.pairs == [(0, 1)]


def test_products_reference():
    # e0 = (1, 2), e1 = (3, -1), e2 = (0.5, 4)
    # e0*e1 = (3, -2), e0*e2 = (0.5, 8), e1*e2 = (1.5, -4)
    E = np.array([[[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]])
    out = PairwiseProducts().forward(E)
    np.testing.assert_allclose(out, [[[3.0, -2.0], [0.5, 8.0], [1.5, -4.0]]])


def test_products_backward_reference():
    # With dout = 1 everywhere, field f receives the sum of the other fields' vectors:
    # d e0 = e1 + e2 = (3.5, 3), d e1 = e0 + e2 = (1.5, 6), d e2 = e0 + e1 = (4, 1)
    E = np.array([[[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]])
    module = PairwiseProducts()
    module.forward(E)
    d_E = module.backward(np.ones((1, 3, 2)))
    np.testing.assert_allclose(d_E, [[[3.5, 3.0], [1.5, 6.0], [4.0, 1.0]]])


def test_one_field_gives_no_pairs():
    E = np.ones((2, 1, 3))
    module = PairwiseProducts()
    out = module.forward(E)
    assert out.shape == (2, 0, 3)
    assert module.pairs == []
    np.testing.assert_array_equal(module.backward(np.zeros((2, 0, 3))), np.zeros((2, 1, 3)))


def test_bi_interaction_reference():
    # Same e0, e1, e2: the sum of the pair products is (3 + 0.5 + 1.5, -2 + 8 - 4) = (5, 2).
    # identity: sum = (4.5, 5) -> squares (20.25, 25); sum of squares (1 + 9 + 0.25,
    # 4 + 1 + 16) = (10.25, 21); 0.5 * (20.25 - 10.25, 25 - 21) = (5, 2)
    E = np.array([[[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]])
    np.testing.assert_allclose(BiInteraction().forward(E), [[5.0, 2.0]])


@settings(max_examples=30, deadline=None)
@given(**shapes)
def test_pairwise_products_match_loops_and_gradcheck(B, F, K, seed):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((B, F, K))
    module = PairwiseProducts()
    out = module.forward(E)
    assert out.shape == (B, F * (F - 1) // 2, K)
    for p, (i, j) in enumerate(module.pairs):
        assert i < j
        np.testing.assert_array_equal(out[:, p], E[:, i] * E[:, j])
    result = check_gradients(module, [E], random_state=seed)
    assert result.passed(TOLERANCE), result


@settings(max_examples=30, deadline=None)
@given(**shapes)
def test_bi_interaction_is_sum_of_products_and_gradcheck(B, F, K, seed):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((B, F, K))
    products = PairwiseProducts().forward(E)
    module = BiInteraction()
    np.testing.assert_allclose(module.forward(E), products.sum(axis=1), atol=1e-12)
    result = check_gradients(module, [E], random_state=seed)
    assert result.passed(TOLERANCE), result


def test_repeated_fields_gradcheck():
    # Two fields holding the same vector (a repeated id) must each get their own gradient.
    E = np.array([[[0.3, -1.2], [0.3, -1.2], [2.0, 0.5]]])
    for module in (PairwiseProducts(), BiInteraction()):
        result = check_gradients(module, [E.copy()])
        assert result.passed(TOLERANCE), result


def test_float32_keeps_float32():
    E = np.ones((2, 3, 4), dtype=np.float32)
    for module, shape in ((PairwiseProducts(), (2, 3, 4)), (BiInteraction(), (2, 4))):
        assert module.forward(E).dtype == np.float32
        assert module.backward(np.ones(shape)).dtype == np.float32


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"PairwiseProducts expects E of shape \(B, F, K\)"):
        PairwiseProducts().forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"BiInteraction expects E of shape \(B, F, K\)"):
        BiInteraction().forward(np.zeros(3))
    with pytest.raises(ValueError, match="num_fields must be a positive integer, got 0"):
        PairwiseProducts(num_fields=0)
    with pytest.raises(ValueError, match="built for num_fields=3, got E of shape"):
        PairwiseProducts(num_fields=3).forward(np.zeros((1, 4, 2)))
