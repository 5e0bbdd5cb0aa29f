"""Tests of AFMAttention, the attention-based pooling of Attentional Factorization Machines."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.gradcheck import check_gradients
from minirec.nn.afm_attention import AFMAttention
from minirec.nn.functional import softmax
from minirec.nn.pairwise import PairwiseProducts

TOLERANCE = 1e-6


def reference_attention():
    module = AFMAttention(2, 2, random_state=0)
    module.params["W"][...] = np.eye(2)
    module.params["b"][...] = 0.0
    module.params["h"][...] = [1.0, 2.0]
    module.params["p"][...] = [1.0, 1.0]
    return module


REFERENCE_E = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])   # e1, e2, e3


def test_reference_weights_and_output():
    # pairs: e1*e2 = (0, 0), e1*e3 = (1, 0), e2*e3 = (0, 1)
    # W = I and b = 0, so hidden = ReLU(u) = u; scores h.u = (0, 1, 2) with h = (1, 2)
    # softmax(0, 1, 2) = (1, e, e^2) / (1 + e + e^2) = (0.09003057, 0.24472847, 0.66524096)
    # pooled = 0.24472847 * (1, 0) + 0.66524096 * (0, 1); output = p . pooled with p = (1, 1)
    #        = 0.24472847 + 0.66524096 = 0.90996943
    products = PairwiseProducts().forward(REFERENCE_E)
    module = reference_attention()
    out = module.forward(products)
    np.testing.assert_allclose(module.weights, [[0.09003057, 0.24472847, 0.66524096]],
                               atol=1e-8)
    np.testing.assert_allclose(out, [0.90996943], atol=1e-8)


def test_reference_rows_independent_of_batch():
    # Row 0 is the reference; row 1 is another input. Row 0 gives the same numbers whether
    # it comes alone (a batch of one) or in a batch of two.
    other = np.array([[[2.0, -1.0], [0.5, 3.0], [-1.0, 1.0]]])
    products = PairwiseProducts().forward(np.concatenate([REFERENCE_E, other]))
    module = reference_attention()
    out = module.forward(products)
    np.testing.assert_allclose(module.weights[0], [0.09003057, 0.24472847, 0.66524096],
                               atol=1e-8)
    np.testing.assert_allclose(out[0], 0.90996943, atol=1e-8)
    alone = module.forward(products[:1])
    np.testing.assert_allclose(alone, out[:1], rtol=1e-15)


def test_reference_gradient_of_projection():
    # d out / d p = pooled = (0.24472847, 0.66524096)
    module = reference_attention()
    module.forward(PairwiseProducts().forward(REFERENCE_E))
    module.backward(np.array([1.0]))
    np.testing.assert_allclose(module.grads["p"], [0.24472847, 0.66524096], atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), F=st.integers(1, 4), K=st.integers(1, 3), A=st.integers(1, 3),
       dropout=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2**31 - 1))
def test_afm_attention_gradcheck(B, F, K, A, dropout, seed):
    rng = np.random.default_rng(seed)
    products = rng.standard_normal((B, F * (F - 1) // 2, K))
    module = AFMAttention(K, A, dropout=dropout, random_state=seed)
    module.params["b"][...] = rng.normal(0.0, 0.1, size=A)
    result = check_gradients(module, [products], random_state=seed)
    assert result.passed(TOLERANCE), result


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 3), F=st.integers(2, 5), K=st.integers(1, 3),
       seed=st.integers(0, 2**31 - 1))
def test_output_matches_formula(B, F, K, seed):
    rng = np.random.default_rng(seed)
    products = rng.standard_normal((B, F * (F - 1) // 2, K))
    module = AFMAttention(K, 3, random_state=seed)
    W, b, h, p = (module.params[name] for name in ("W", "b", "h", "p"))
    out = module.forward(products)
    weights = np.zeros(products.shape[:2])
    for row in range(B):
        scores = [h @ np.maximum(u @ W + b, 0) for u in products[row]]
        weights[row] = softmax(np.array(scores))
    expected = np.einsum("bp,bpk,k->b", weights, products, p)
    np.testing.assert_allclose(module.weights, weights, rtol=1e-12)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(module.weights.sum(axis=1), np.ones(B), rtol=1e-12)


def test_no_pairs_gives_zero():
    module = AFMAttention(3, 2, random_state=0)
    out = module.forward(np.zeros((2, 0, 3)))
    np.testing.assert_array_equal(out, [0.0, 0.0])
    assert module.weights.shape == (2, 0)
    assert module.backward(np.ones(2)).shape == (2, 0, 3)


def test_dropout_only_in_training():
    rng = np.random.default_rng(0)
    products = rng.standard_normal((4, 6, 3))
    plain = AFMAttention(3, 2, random_state=5)
    dropped = AFMAttention(3, 2, dropout=0.5, random_state=5)
    dropped.load_state_dict(plain.state_dict())
    expected = plain.forward(products)
    assert not np.allclose(dropped.forward(products), expected)
    dropped.eval()
    np.testing.assert_array_equal(dropped.forward(products), expected)


def test_dropout_reproducible_from_random_state():
    products = np.random.default_rng(0).standard_normal((4, 6, 3))
    first = AFMAttention(3, 2, dropout=0.5, random_state=11).forward(products)
    second = AFMAttention(3, 2, dropout=0.5, random_state=11).forward(products)
    np.testing.assert_array_equal(first, second)


def test_float32_keeps_float32():
    module = AFMAttention(3, 2, dropout=0.2, random_state=0, dtype=np.float32)
    products = np.ones((2, 3, 3))
    assert module.forward(products).dtype == np.float32
    assert module.weights.dtype == np.float32
    assert module.backward(np.ones(2)).dtype == np.float32
    for name, grad in module.grads.items():
        assert grad.dtype == np.float32, name


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer, got 0"):
        AFMAttention(0, 2)
    with pytest.raises(ValueError, match="attention_dim must be a positive integer"):
        AFMAttention(3, -1)
    with pytest.raises(ValueError, match=r"dropout probability p must be in \[0, 1\)"):
        AFMAttention(3, 2, dropout=1.0)
    module = AFMAttention(3, 2, random_state=0)
    with pytest.raises(ValueError, match=r"products of shape \(B, P, K=3\), got shape \(2, 3, 4\)"):
        module.forward(np.zeros((2, 3, 4)))
