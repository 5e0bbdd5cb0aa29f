"""Tests of DINAttention, the local activation unit of the Deep Interest Network."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.gradcheck import check_gradients
from minirec.nn.din_attention import DINAttention

TOLERANCE = 1e-6

REFERENCE_QUERY = np.array([[1.0, 2.0]])
REFERENCE_KEYS = np.array([[[3.0, -1.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]]])
REFERENCE_LENGTHS = np.array([2])


def reference_unit(normalize):
    """Two sigmoid hidden units over [q, k, q - k, q * k] and one linear output."""
    module = DINAttention(2, hidden=(2,), activation="sigmoid", normalize=normalize,
                          random_state=0)
    first, _, last = module.unit.layers
    first.params["W"][:, 0] = [0.5, 0.0, 1.0, 0.0, 0.5, 0.0, 0.25, 0.0]
    first.params["W"][:, 1] = [0.0, 0.5, 0.0, -1.0, 0.0, 0.5, 0.0, 0.25]
    first.params["b"][...] = 0.0
    last.params["W"][...] = [[4.0], [-1.0]]
    last.params["b"][...] = -1.0
    return module


# Scores of the reference, by hand:
# k1 = (3, -1): [q, k, q - k, q * k] = (1, 2, 3, -1, -2, 3, 3, -2)
#   unit 1: 0.5*1 + 1*3 + 0.5*(-2) + 0.25*3 = 3.25;  unit 2: 0.5*2 - 1*(-1) + 0.5*3 + 0.25*(-2) = 3
#   score = 4 sigmoid(3.25) - sigmoid(3) - 1 = 4*0.96267311 - 0.95257413 - 1 = 1.89811832
# k2 = (0, 1): [q, k, q - k, q * k] = (1, 2, 0, 1, 1, 1, 0, 2)
#   unit 1: 0.5 + 0.5 = 1;  unit 2: 1 - 1 + 0.5 + 0.5 = 1
#   score = 4 sigmoid(1) - sigmoid(1) - 1 = 3*0.73105858 - 1 = 1.19317574


def test_reference_paper_mode():
    # weights = scores: 1.89811832 * (3, -1) + 1.19317574 * (0, 1)
    #         = (5.69435497, -1.89811832 + 1.19317574) = (5.69435497, -0.70494259)
    module = reference_unit(normalize=False)
    pooled = module.forward(REFERENCE_QUERY, REFERENCE_KEYS, REFERENCE_LENGTHS)
    np.testing.assert_allclose(pooled, [[5.69435497, -0.70494259]], atol=1e-8)
    np.testing.assert_allclose(module.weights, [[1.89811832, 1.19317574, 0.0, 0.0]], atol=1e-8)


def test_reference_softmax_mode():
    # w1 = 1 / (1 + exp(1.19317574 - 1.89811832)) = 1 / (1 + exp(-0.70494259)) = 0.66928270,
    # w2 = 1 - w1 = 0.33071730; pooled = w1 (3, -1) + w2 (0, 1) = (3 w1, -w1 + w2)
    #    = (2.00784809, -0.33856539)
    module = reference_unit(normalize=True)
    pooled = module.forward(REFERENCE_QUERY, REFERENCE_KEYS, REFERENCE_LENGTHS)
    np.testing.assert_allclose(pooled, [[2.00784809, -0.33856539]], atol=1e-8)
    np.testing.assert_allclose(module.weights.sum(), 1.0, rtol=1e-15)


@pytest.mark.parametrize("normalize", [False, True])
def test_reference_padding_gradients_exactly_zero(normalize):
    module = reference_unit(normalize)
    module.forward(REFERENCE_QUERY, REFERENCE_KEYS, REFERENCE_LENGTHS)
    d_query, d_keys = module.backward(np.array([[1.0, -2.0]]))
    assert np.all(module.weights[0, 2:] == 0.0)
    assert np.all(d_keys[0, 2:] == 0.0)
    assert np.all(d_keys[0, :2] != 0.0)
    assert np.all(np.isfinite(d_query))


@pytest.mark.parametrize("normalize", [False, True])
def test_reference_gradcheck(normalize):
    module = reference_unit(normalize)
    inputs = [REFERENCE_QUERY.copy(), REFERENCE_KEYS.copy(), REFERENCE_LENGTHS.copy()]
    result = check_gradients(module, inputs, differentiable=[0, 1])
    assert result.passed(TOLERANCE), result


@st.composite
def din_batches(draw):
    B = draw(st.integers(1, 3))
    T = draw(st.integers(1, 4))
    K = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(0, T), min_size=B, max_size=B))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    query = rng.standard_normal((B, K))
    keys = rng.standard_normal((B, T, K))
    return query, keys, np.array(lengths, dtype=np.int64), seed


@settings(max_examples=40, deadline=None)
@given(batch=din_batches(), activation=st.sampled_from(["sigmoid", "dice", "prelu"]),
       normalize=st.booleans())
def test_din_attention_gradcheck_and_padding(batch, activation, normalize):
    query, keys, lengths, seed = batch
    B, T, K = keys.shape
    module = DINAttention(K, hidden=(3,), activation=activation, normalize=normalize,
                          random_state=seed)
    result = check_gradients(module, [query, keys, lengths], differentiable=[0, 1],
                             random_state=seed)
    assert result.passed(TOLERANCE), result

    module.forward(query, keys, lengths)
    d_query, d_keys = module.backward(np.random.default_rng(seed).standard_normal((B, K)))
    padded = np.arange(T)[None, :] >= lengths[:, None]
    assert np.all(module.weights[padded] == 0.0)
    assert np.all(d_keys[padded] == 0.0)
    assert np.all(np.isfinite(d_query))
    assert np.all(np.isfinite(d_keys))
    if normalize:
        for row in range(B):
            expected = 1.0 if lengths[row] > 0 else 0.0
            np.testing.assert_allclose(module.weights[row].sum(), expected, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(batch=din_batches(), normalize=st.booleans())
def test_backward_rows_match_dense_keys(batch, normalize):
    query, keys, lengths, seed = batch
    B, T, K = keys.shape
    module = DINAttention(K, hidden=(3,), activation="dice", normalize=normalize,
                          random_state=seed)
    module.forward(query, keys, lengths)
    d_pooled = np.random.default_rng(seed).standard_normal((B, K))
    d_query_rows, d_key_rows = module.backward_rows(d_pooled)
    d_query, d_keys = module.backward(d_pooled)
    valid = np.arange(T)[None, :] < lengths[:, None]
    assert d_key_rows.shape == (int(lengths.sum()), K)
    np.testing.assert_array_equal(d_key_rows, d_keys[valid])
    np.testing.assert_array_equal(d_query_rows, d_query)


@pytest.mark.parametrize("normalize", [False, True])
def test_empty_history_pools_to_zero(normalize):
    rng = np.random.default_rng(3)
    query, keys = rng.standard_normal((2, 3)), rng.standard_normal((2, 4, 3))
    module = DINAttention(3, hidden=(4,), activation="dice", normalize=normalize,
                          random_state=0)
    pooled = module.forward(query, keys, np.array([0, 0]))
    np.testing.assert_array_equal(pooled, np.zeros((2, 3)))
    d_query, d_keys = module.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(d_query, np.zeros((2, 3)))
    np.testing.assert_array_equal(d_keys, np.zeros((2, 4, 3)))


@pytest.mark.parametrize("activation", ["sigmoid", "dice"])
def test_padding_content_does_not_matter(activation):
    # Padded keys are never read: NaN or huge values there change nothing, and Dice's
    # batch statistics (training mode) come from the valid positions only.
    rng = np.random.default_rng(4)
    query, keys = rng.standard_normal((3, 2)), rng.standard_normal((3, 5, 2))
    lengths = np.array([2, 5, 0])
    dirty = keys.copy()
    dirty[0, 2:] = 1e6
    dirty[2] = np.nan
    module = DINAttention(2, hidden=(4,), activation=activation, normalize=True,
                          random_state=1)
    clean_out = module.forward(query, keys, lengths)
    clean_grads = module.backward(np.ones((3, 2)))
    dirty_out = module.forward(query, dirty, lengths)
    dirty_grads = module.backward(np.ones((3, 2)))
    np.testing.assert_array_equal(clean_out, dirty_out)
    for clean, dirty_grad in zip(clean_grads, dirty_grads):
        np.testing.assert_array_equal(clean, dirty_grad)


def test_dice_statistics_over_valid_positions():
    rng = np.random.default_rng(5)
    query, keys = rng.standard_normal((2, 2)), rng.standard_normal((2, 3, 2))
    lengths = np.array([1, 2])
    module = DINAttention(2, hidden=(3,), activation="dice", random_state=2)
    first_linear, dice = module.unit.layers[0], module.unit.layers[1]
    dice.momentum = 0.0                      # running_mean becomes the last batch mean
    module.forward(query, keys, lengths)
    valid_rows = [(0, 0), (1, 0), (1, 1)]
    unit_input = np.array([np.concatenate([query[b], keys[b, t], query[b] - keys[b, t],
                                           query[b] * keys[b, t]]) for b, t in valid_rows])
    hidden_pre = unit_input @ first_linear.params["W"] + first_linear.params["b"]
    np.testing.assert_allclose(dice.buffers["running_mean"], hidden_pre.mean(axis=0),
                               rtol=1e-12)


def test_unit_input_is_query_key_difference_product():
    # With a linear unit the score is a linear function of [q, k, q - k, q * k]; setting one
    # block of the weights at a time isolates each block.
    q, k = np.array([[2.0, -1.0]]), np.array([[[0.5, 3.0]]])
    blocks = {0: q[0], 1: k[0, 0], 2: q[0] - k[0, 0], 3: q[0] * k[0, 0]}
    for block, expected in blocks.items():
        module = DINAttention(2, hidden=(1,), activation="identity", random_state=0)
        first, _, last = module.unit.layers
        first.params["W"][...] = 0.0
        first.params["W"][2 * block:2 * block + 2, 0] = [1.0, 10.0]
        last.params["W"][...] = 1.0
        last.params["b"][...] = 0.0
        module.forward(q, k, np.array([1]))
        np.testing.assert_allclose(module.weights, [[expected[0] + 10 * expected[1]]])


def test_float32_keeps_float32():
    module = DINAttention(2, hidden=(3,), activation="dice", normalize=True, random_state=0,
                          dtype=np.float32)
    query = np.ones((2, 2))
    keys = np.arange(12.0).reshape(2, 3, 2)
    pooled = module.forward(query, keys, np.array([2, 3]))
    assert pooled.dtype == np.float32
    assert module.weights.dtype == np.float32
    d_query, d_keys = module.backward(np.ones((2, 2)))
    assert d_query.dtype == np.float32
    assert d_keys.dtype == np.float32
    for name, _, grad in module.parameters():
        assert grad.dtype == np.float32, name


def test_rejects_bad_lengths():
    module = DINAttention(2, hidden=(3,), random_state=0)
    query, keys = np.zeros((2, 2)), np.zeros((2, 3, 2))
    with pytest.raises(ValueError, match=r"lengths\[1\] = -1 is invalid.*\[0, 3\]"):
        module.forward(query, keys, np.array([1, -1]))
    with pytest.raises(ValueError, match=r"lengths\[0\] = 4 is invalid.*\[0, 3\]"):
        module.forward(query, keys, np.array([4, 1]))
    with pytest.raises(TypeError, match="lengths must be an integer array, got dtype float64"):
        module.forward(query, keys, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(B,\) = \(2,\), got shape"):
        module.forward(query, keys, np.array([1, 2, 3]))


def test_rejects_bad_shapes_and_arguments():
    module = DINAttention(2, hidden=(3,), random_state=0)
    with pytest.raises(ValueError, match=r"query of shape \(B, K=2\), got shape \(2, 3\)"):
        module.forward(np.zeros((2, 3)), np.zeros((2, 3, 2)), np.array([1, 1]))
    with pytest.raises(ValueError, match=r"keys of shape \(B=2, T, K=2\), got shape \(1, 3, 2\)"):
        module.forward(np.zeros((2, 2)), np.zeros((1, 3, 2)), np.array([1, 1]))
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer, got 0"):
        DINAttention(0)
    with pytest.raises(TypeError, match="normalize must be True or False, got 'yes'"):
        DINAttention(2, normalize="yes")
    with pytest.raises(ValueError, match="activation must be one of"):
        DINAttention(2, activation="swish")
