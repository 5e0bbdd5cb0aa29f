"""Tests that components give the same numbers whatever the memory layout of their arrays.

Several components compute in a transposed layout internally: PairwiseProducts and
AFMAttention run batch-last on (K, P, B), DINAttention hands its activation unit a
Fortran-order (N, H) matrix, and Linear's one-output backward follows the input's layout.
Each test here feeds C-order, Fortran-order, strided and transposed arrays and compares
the result with a plain NumPy reference written on the (B, ...) definition, or with the
central-difference gradient check. The optimizer, SparseGrad, id-range and loss tests cover
the in-place Adam update, the 16-bit sort keys of SparseGrad.coalesce, ids_in_range and
the single input check of BCEWithLogitsLoss.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.data.schema import Field, ids_in_range
from minirec.gradcheck import check_gradients
from minirec.models.cases_attention import tiny_behaviour_batch, tiny_behaviour_schema
from minirec.models.din import DIN
from minirec.nn.activations import Sigmoid
from minirec.nn.afm_attention import AFMAttention
from minirec.nn.base import Module, SparseGrad
from minirec.nn.dice import Dice
from minirec.nn.din_attention import DINAttention
from minirec.nn.embedding import FieldEmbedding
from minirec.nn.linear import Linear
from minirec.nn.losses import BCEWithLogitsLoss
from minirec.nn.pairwise import PairwiseProducts
from minirec.nn.prelu import PReLU
from minirec.optim import SGD, Adagrad, Adam

TOLERANCE = 1e-6
FLOAT_DTYPES = (np.float32, np.float64)
INTEGER_DTYPES = (np.int8, np.int16, np.int32, np.int64,
                  np.uint8, np.uint16, np.uint32, np.uint64)


def layouts(array: np.ndarray) -> dict[str, np.ndarray]:
    """Return copies of ``array`` with equal values in four memory layouts.

    ``C`` and ``F`` are contiguous, ``strided`` is every second entry of a larger array
    (contiguous in neither order), and ``transposed`` is the reversed-axes view of a
    C-order array of the reversed shape.
    """
    array = np.asarray(array)
    larger = np.zeros(tuple(2 * size + 1 for size in array.shape), dtype=array.dtype)
    every_second = tuple(slice(1, None, 2) for _ in array.shape)
    larger[every_second] = array
    reversed_axes = tuple(reversed(range(array.ndim)))
    return {
        "C": np.ascontiguousarray(array),
        "F": np.asfortranarray(array),
        "strided": larger[every_second],
        "transposed": np.ascontiguousarray(array.transpose(reversed_axes)).transpose(
            reversed_axes),
    }


def tolerance_for(dtype) -> dict:
    """Return assert_allclose tolerances for results computed in ``dtype``."""
    if np.dtype(dtype) == np.float32:
        return {"rtol": 2e-4, "atol": 2e-5}
    return {"rtol": 1e-10, "atol": 1e-12}


def dense_grads(module: Module) -> dict[str, np.ndarray]:
    """Return every parameter gradient of ``module`` as a dense float64 copy."""
    grads = {}
    for name, _, grad in module.parameters():
        if isinstance(grad, SparseGrad):
            grads[name] = grad.to_dense().astype(np.float64)
        else:
            grads[name] = np.array(grad, dtype=np.float64)
    return grads


def assert_grads_close(actual: dict, expected: dict, **tolerance) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], err_msg=name, **tolerance)


# --------------------------------------------------------------------------------------
# PairwiseProducts
# --------------------------------------------------------------------------------------

def reference_pair_products(E):
    """Return (B, P, K) products ``E[:, i] * E[:, j]`` for i < j in lexicographic order."""
    first, second = np.triu_indices(E.shape[1], k=1)
    return E[:, first, :] * E[:, second, :]


def reference_pair_products_backward(E, dout):
    """Return dE (B, F, K), where field i receives dout_ij * e_j and field j dout_ij * e_i."""
    F = E.shape[1]
    first, second = np.triu_indices(F, k=1)
    first_of_pair = np.eye(F)[first]                               # (P, F)
    second_of_pair = np.eye(F)[second]                             # (P, F)
    to_first = np.einsum("bpk,pf->bfk", dout * E[:, second, :], first_of_pair)
    to_second = np.einsum("bpk,pf->bfk", dout * E[:, first, :], second_of_pair)
    return to_first + to_second


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 4), F=st.integers(1, 5), K=st.integers(1, 3),
       dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**16))
def test_pairwise_products_any_layout(B, F, K, dtype, seed):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((B, F, K)).astype(dtype)
    P = F * (F - 1) // 2
    dout = rng.standard_normal((B, P, K)).astype(dtype)
    expected = reference_pair_products(E.astype(np.float64))
    expected_d_E = reference_pair_products_backward(E.astype(np.float64),
                                                    dout.astype(np.float64))

    for E_layout, E_input in layouts(E).items():
        for dout_layout, dout_input in layouts(dout).items():
            module = PairwiseProducts()
            products = module.forward(E_input)
            d_E = module.backward(dout_input)
            case = f"E {E_layout}, dout {dout_layout}"
            assert products.shape == (B, P, K), case
            assert products.dtype == dtype, case
            assert d_E.shape == (B, F, K), case
            assert d_E.dtype == dtype, case
            np.testing.assert_allclose(products, expected, err_msg=case, **tolerance_for(dtype))
            np.testing.assert_allclose(d_E, expected_d_E, err_msg=case, **tolerance_for(dtype))


@pytest.mark.parametrize("F", [1, 2, 4])
def test_pairwise_products_gradcheck_batch_one(F):
    rng = np.random.default_rng(F)
    E = rng.standard_normal((1, F, 3))
    E[0, -1] = E[0, 0]              # a repeated field vector
    result = check_gradients(PairwiseProducts(), [E])
    assert result.passed(TOLERANCE), result


def test_pairwise_products_output_independent_of_input():
    # The (B, P, K) output is a transposed view of internal memory. It must not alias E,
    # so changing E after forward leaves the output as it was.
    rng = np.random.default_rng(0)
    E = rng.standard_normal((3, 4, 2))
    expected = reference_pair_products(E)
    for layout, E_input in layouts(E).items():
        products = PairwiseProducts().forward(E_input)
        E_input[...] = 100.0
        np.testing.assert_allclose(products, expected, rtol=1e-12, err_msg=layout)


# --------------------------------------------------------------------------------------
# AFMAttention
# --------------------------------------------------------------------------------------

def reference_afm(module, U, dout, mask=None):
    """Return (out, weights, dU, parameter grads) of AFM attention on (B, P, K) products.

    ``mask`` (B, P, K) is the inverted-dropout scale applied to ``a_ij u_ij``, and None
    means no dropout.
    """
    W, b, h, p = (module.params[name].astype(np.float64) for name in ("W", "b", "h", "p"))
    B, P, K = U.shape
    mask = np.ones((B, P, K)) if mask is None else mask

    hidden_pre = np.einsum("bpk,ka->bpa", U, W) + b                # (B, P, A)
    hidden = np.maximum(hidden_pre, 0)
    scores = hidden @ h                                            # (B, P)
    if P:
        exp_scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights = exp_scores / exp_scores.sum(axis=1, keepdims=True)
    else:
        weights = np.zeros((B, 0))
    pooled = np.einsum("bp,bpk,bpk->bk", weights, U, mask)        # (B, K)
    out = pooled @ p                                               # (B,)

    d_pooled = dout[:, None] * p                                   # (B, K)
    d_attended = d_pooled[:, None, :] * mask                       # (B, P, K)
    d_weights = np.einsum("bpk,bpk->bp", d_attended, U)
    d_U = weights[:, :, None] * d_attended
    d_scores = weights * (d_weights - np.sum(weights * d_weights, axis=1, keepdims=True))
    d_hidden_pre = d_scores[:, :, None] * h * (hidden_pre > 0)     # (B, P, A)
    d_U = d_U + d_hidden_pre @ W.T
    grads = {
        "W": np.einsum("bpk,bpa->ka", U, d_hidden_pre),
        "b": d_hidden_pre.sum(axis=(0, 1)),
        "h": np.einsum("bpa,bp->a", hidden, d_scores),
        "p": pooled.T @ dout,
    }
    return out, weights, d_U, grads


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 4), P=st.integers(0, 6), K=st.integers(1, 3), A=st.integers(1, 4),
       dtype=st.sampled_from(FLOAT_DTYPES), training=st.booleans(),
       seed=st.integers(0, 2**16))
def test_afm_attention_any_layout(B, P, K, A, dtype, training, seed):
    # In evaluation mode dropout 0.4 must do nothing. In training mode dropout is 0 here,
    # and test_afm_dropout_mask_per_entry covers a training mask.
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((B, P, K)).astype(dtype)
    dout = rng.standard_normal(B).astype(dtype)
    dropout = 0.0 if training else 0.4
    reference_module = AFMAttention(K, A, dropout=dropout, random_state=seed, dtype=dtype)
    expected = reference_afm(reference_module, U.astype(np.float64), dout.astype(np.float64))
    out_expected, weights_expected, d_U_expected, grads_expected = expected

    for layout, U_input in layouts(U).items():
        module = AFMAttention(K, A, dropout=dropout, random_state=seed, dtype=dtype)
        if not training:
            module.eval()
        out = module.forward(U_input)
        weights = module.weights.copy()
        d_U = module.backward(dout)
        tolerance = tolerance_for(dtype)
        assert out.shape == (B,), layout
        assert out.dtype == dtype, layout
        assert d_U.shape == (B, P, K), layout
        assert d_U.dtype == dtype, layout
        np.testing.assert_allclose(out, out_expected, err_msg=layout, **tolerance)
        np.testing.assert_allclose(weights, weights_expected, err_msg=layout, **tolerance)
        np.testing.assert_allclose(d_U, d_U_expected, err_msg=layout, **tolerance)
        assert_grads_close(dense_grads(module), grads_expected, **tolerance)


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 4), F=st.integers(1, 5), K=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_afm_chain_from_pairwise_products(B, F, K, seed):
    # PairwiseProducts hands AFMAttention its transposed view, and the chain must equal
    # the reference on the (B, P, K) definition for E in any layout.
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((B, F, K))
    dout = rng.standard_normal(B)
    reference_module = AFMAttention(K, 3, random_state=seed)
    U = reference_pair_products(E)
    out_expected, _, d_U_expected, grads_expected = reference_afm(reference_module, U, dout)
    d_E_expected = reference_pair_products_backward(E, d_U_expected)

    for layout, E_input in layouts(E).items():
        pairwise = PairwiseProducts()
        attention = AFMAttention(K, 3, random_state=seed)
        out = attention.forward(pairwise.forward(E_input))
        d_E = pairwise.backward(attention.backward(dout))
        np.testing.assert_allclose(out, out_expected, rtol=1e-10, atol=1e-12, err_msg=layout)
        np.testing.assert_allclose(d_E, d_E_expected, rtol=1e-10, atol=1e-12, err_msg=layout)
        assert_grads_close(dense_grads(attention), grads_expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", ["C", "F", "strided", "transposed"])
def test_afm_dropout_mask_per_entry(layout):
    # In training, dropout scales each entry (b, p, k) of a_ij u_ij by its own mask value.
    # The reference draws the mask from a copy of the module's generator, one uniform per
    # entry of the (B, P, K) array in row-major order, as Dropout does on that shape. A
    # mask drawn on the internal (K, P, B) layout would pair the values with other entries.
    rng = np.random.default_rng(11)
    B, P, K, p = 3, 4, 2, 0.4
    U = rng.standard_normal((B, P, K))
    dout = rng.standard_normal(B)
    module = AFMAttention(K, 3, dropout=p, random_state=5)
    mask_generator = np.random.default_rng()
    mask_generator.bit_generator.state = module.dropout.rng.bit_generator.state
    mask = (mask_generator.random((B, P, K)) >= p) / (1.0 - p)
    assert 0 < np.count_nonzero(mask) < mask.size     # some entries dropped, some kept
    out_expected, _, d_U_expected, grads_expected = reference_afm(module, U, dout, mask)

    out = module.forward(layouts(U)[layout])
    d_U = module.backward(dout)
    np.testing.assert_allclose(out, out_expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d_U, d_U_expected, rtol=1e-12, atol=1e-14)
    assert_grads_close(dense_grads(module), grads_expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("training", [True, False])
def test_afm_attention_gradcheck_with_dropout(training):
    rng = np.random.default_rng(2)
    module = AFMAttention(3, 4, dropout=0.3, random_state=4)
    if not training:
        module.eval()
    result = check_gradients(module, [rng.standard_normal((2, 3, 3))])
    assert result.passed(TOLERANCE), result


# --------------------------------------------------------------------------------------
# DINAttention
# --------------------------------------------------------------------------------------

def reference_unit_layer(layer, x):
    """Apply one layer of DIN's activation unit to the (N, width) matrix ``x``, in float64."""
    if isinstance(layer, Linear):
        return x @ layer.params["W"].astype(np.float64) + layer.params["b"]
    if isinstance(layer, Sigmoid):
        return 1.0 / (1.0 + np.exp(-x))
    if isinstance(layer, PReLU):
        return np.where(x > 0, x, layer.params["alpha"] * x)
    if isinstance(layer, Dice):
        # Training mode uses the statistics of the N valid positions (biased variance).
        mean = x.mean(axis=0)
        variance = ((x - mean) ** 2).mean(axis=0)
        gate = 1.0 / (1.0 + np.exp(-(x - mean) / np.sqrt(variance + layer.eps)))
        alpha = layer.params["alpha"].astype(np.float64)
        return x * (alpha + (1.0 - alpha) * gate)
    raise TypeError(f"no reference for layer {type(layer).__name__}")


def reference_din(module, query, keys, lengths):
    """Return (pooled, weights) of DIN attention from the [q, k, q - k, q * k] definition."""
    B, T, K = keys.shape
    valid = np.arange(T)[None, :] < lengths[:, None]               # (B, T)
    batch_index, time_index = np.nonzero(valid)
    scores = np.zeros((B, T))
    if batch_index.size:
        q = query[batch_index]                                     # (N, K)
        k = keys[batch_index, time_index]                          # (N, K)
        x = np.concatenate([q, k, q - k, q * k], axis=1)           # (N, 4K)
        for layer in module.unit.layers:
            x = reference_unit_layer(layer, x)
        scores[batch_index, time_index] = x[:, 0]
    if module.normalize:
        shifted = np.where(valid, scores, -np.inf)
        row_max = np.where(valid.any(axis=1), shifted.max(axis=1), 0.0)
        exp_scores = np.where(valid, np.exp(scores - row_max[:, None]), 0.0)
        totals = exp_scores.sum(axis=1, keepdims=True)
        weights = exp_scores / np.where(totals > 0, totals, 1.0)
    else:
        weights = scores
    clean_keys = np.where(valid[:, :, None], keys, 0.0)
    return np.einsum("bt,btk->bk", weights, clean_keys), weights


@st.composite
def din_problems(draw):
    """A DIN attention problem: shapes, lengths with 0 and T among them, and unit options."""
    B = draw(st.integers(1, 3))
    T = draw(st.integers(1, 4))
    K = draw(st.integers(1, 3))
    lengths = np.array(draw(st.lists(st.integers(0, T), min_size=B, max_size=B)))
    return {
        "B": B, "T": T, "K": K, "lengths": lengths,
        "hidden": draw(st.sampled_from([(5,), (6, 4)])),
        "activation": draw(st.sampled_from(["sigmoid", "prelu", "dice"])),
        "normalize": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def din_inputs(problem, dtype=np.float64, padding_value=None):
    """Return query (B, K), keys (B, T, K) and dpooled (B, K) drawn from the problem's seed."""
    rng = np.random.default_rng(problem["seed"])
    B, T, K = problem["B"], problem["T"], problem["K"]
    query = rng.standard_normal((B, K)).astype(dtype)
    keys = rng.standard_normal((B, T, K)).astype(dtype)
    d_pooled = rng.standard_normal((B, K)).astype(dtype)
    if padding_value is not None:
        padded = np.arange(T)[None, :] >= problem["lengths"][:, None]
        keys[padded] = padding_value
    return query, keys, d_pooled


def make_din(problem, dtype=np.float64):
    return DINAttention(problem["K"], problem["hidden"], activation=problem["activation"],
                        normalize=problem["normalize"], random_state=problem["seed"],
                        dtype=dtype)


@settings(max_examples=20, deadline=None)
@given(problem=din_problems())
def test_din_attention_any_layout(problem):
    # Padded keys contain NaN, which must reach neither the output nor any gradient.
    query, keys, d_pooled = din_inputs(problem, padding_value=np.nan)
    lengths = problem["lengths"]
    pooled_expected, weights_expected = reference_din(make_din(problem), query, keys, lengths)
    padded = np.arange(problem["T"])[None, :] >= lengths[:, None]

    baseline = None
    for query_layout, query_input in layouts(query).items():
        for keys_layout, keys_input in layouts(keys).items():
            for d_layout, d_input in layouts(d_pooled).items():
                case = f"query {query_layout}, keys {keys_layout}, dpooled {d_layout}"
                module = make_din(problem)
                pooled = module.forward(query_input, keys_input, lengths)
                np.testing.assert_allclose(pooled, pooled_expected, rtol=1e-10, atol=1e-12,
                                           err_msg=case)
                np.testing.assert_allclose(module.weights, weights_expected, rtol=1e-10,
                                           atol=1e-12, err_msg=case)
                d_query, d_keys = module.backward(d_input)
                assert np.all(np.isfinite(d_query)), case
                assert np.all(d_keys[padded] == 0.0), case
                result = (d_query, d_keys, dense_grads(module))
                if baseline is None:
                    baseline = result
                    continue
                np.testing.assert_allclose(d_query, baseline[0], rtol=1e-10, atol=1e-12,
                                           err_msg=case)
                np.testing.assert_allclose(d_keys, baseline[1], rtol=1e-10, atol=1e-12,
                                           err_msg=case)
                assert_grads_close(result[2], baseline[2], rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(problem=din_problems())
def test_din_attention_gradcheck(problem):
    query, keys, _ = din_inputs(problem)
    inputs = [query, keys, problem["lengths"]]
    result = check_gradients(make_din(problem), inputs, differentiable=[0, 1])
    assert result.passed(TOLERANCE), result


@settings(max_examples=10, deadline=None)
@given(problem=din_problems())
def test_din_attention_float32(problem):
    query, keys, d_pooled = din_inputs(problem, dtype=np.float32)
    lengths = problem["lengths"]
    module32 = make_din(problem, dtype=np.float32)
    module64 = make_din(problem)
    pooled_expected, _ = reference_din(module64, query.astype(np.float64),
                                       keys.astype(np.float64), lengths)
    module64.forward(query.astype(np.float64), keys.astype(np.float64), lengths)
    expected = module64.backward(d_pooled.astype(np.float64))
    for layout, keys_input in layouts(keys).items():
        module32.zero_grad()
        pooled = module32.forward(query, keys_input, lengths)
        d_query, d_keys = module32.backward(d_pooled)
        assert pooled.dtype == np.float32, layout
        assert d_query.dtype == np.float32, layout
        assert d_keys.dtype == np.float32, layout
        scale = max(1.0, float(np.abs(pooled_expected).max()))
        np.testing.assert_allclose(pooled, pooled_expected, rtol=1e-3, atol=1e-4 * scale,
                                   err_msg=layout)
        for got, want in zip((d_query, d_keys), expected):
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * scale, err_msg=layout)


@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("hidden", [(5,), (6, 4)])
def test_din_lengths_any_integer_dtype(dtype, hidden):
    # The lengths only count positions, so their integer type must not change anything,
    # and unsigned lengths must not crash forward or backward.
    rng = np.random.default_rng(3)
    B, T, K = 4, 3, 2
    query = rng.standard_normal((B, K))
    keys = rng.standard_normal((B, T, K))
    d_pooled = rng.standard_normal((B, K))
    lengths = np.array([2, 0, 3, 1])

    expected_module = DINAttention(K, hidden, activation="dice", random_state=1)
    pooled_expected = expected_module.forward(query, keys, lengths)
    d_query_expected, d_keys_expected = expected_module.backward(d_pooled)

    module = DINAttention(K, hidden, activation="dice", random_state=1)
    pooled = module.forward(query, keys, lengths.astype(dtype))
    d_query, d_keys = module.backward(d_pooled)
    np.testing.assert_array_equal(pooled, pooled_expected)
    np.testing.assert_array_equal(d_query, d_query_expected)
    np.testing.assert_array_equal(d_keys, d_keys_expected)
    assert_grads_close(dense_grads(module), dense_grads(expected_module), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64],
                         ids=lambda dtype: np.dtype(dtype).name)
def test_din_model_lengths_any_integer_dtype(dtype):
    # The schema accepts any integer length array, so the model must train on each.
    batch = tiny_behaviour_batch()
    expected_model = DIN(tiny_behaviour_schema(), embedding_dim=2, hidden=(5, 3),
                         attention_hidden=(6, 4), random_state=0)
    logits_expected = expected_model.forward(batch)
    expected_model.backward(np.ones_like(logits_expected))

    batch["hist_length"] = batch["hist_length"].astype(dtype)
    model = DIN(tiny_behaviour_schema(), embedding_dim=2, hidden=(5, 3),
                attention_hidden=(6, 4), random_state=0)
    logits = model.forward(batch)
    model.backward(np.ones_like(logits))
    np.testing.assert_array_equal(logits, logits_expected)
    assert_grads_close(dense_grads(model), dense_grads(expected_model), rtol=0, atol=0)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("activation", ["sigmoid", "prelu", "dice"])
def test_din_all_histories_empty(normalize, activation):
    rng = np.random.default_rng(4)
    B, T, K = 3, 4, 2
    module = DINAttention(K, (6, 4), activation=activation, normalize=normalize,
                          random_state=2)
    for layout, keys in layouts(rng.standard_normal((B, T, K))).items():
        module.zero_grad()
        pooled = module.forward(rng.standard_normal((B, K)), keys, np.zeros(B, dtype=np.int32))
        d_query, d_keys = module.backward(rng.standard_normal((B, K)))
        assert np.all(pooled == 0.0), layout
        assert np.all(module.weights == 0.0), layout
        assert np.all(d_query == 0.0), layout
        assert np.all(d_keys == 0.0), layout
        for name, grad in dense_grads(module).items():
            assert np.all(grad == 0.0), f"{layout}: {name}"


# --------------------------------------------------------------------------------------
# Linear, Dice and PReLU on Fortran-order input
# --------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 6), in_features=st.integers(1, 5), out_features=st.integers(1, 2),
       dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**16))
def test_linear_backward_any_layout(N, in_features, out_features, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, in_features)).astype(dtype)
    dout = rng.standard_normal((N, out_features)).astype(dtype)
    for x_layout, x_input in layouts(x).items():
        for d_layout, d_input in layouts(dout).items():
            case = f"x {x_layout}, dout {d_layout}"
            layer = Linear(in_features, out_features, random_state=seed, dtype=dtype)
            W = layer.params["W"].astype(np.float64)
            W_before = layer.params["W"].copy()
            y = layer.forward(x_input)
            dx = layer.backward(d_input)
            tolerance = tolerance_for(dtype)
            assert dx.shape == (N, in_features), case
            assert dx.dtype == dtype, case
            np.testing.assert_allclose(y, x @ W + layer.params["b"], err_msg=case, **tolerance)
            np.testing.assert_allclose(dx, dout.astype(np.float64) @ W.T, err_msg=case,
                                       **tolerance)
            np.testing.assert_allclose(layer.grads["W"], x.T.astype(np.float64) @ dout,
                                       err_msg=case, **tolerance)
            np.testing.assert_allclose(layer.grads["b"], dout.sum(axis=0), err_msg=case,
                                       **tolerance)
            # A caller may change the returned gradient in place, so it must not alias W.
            dx += 1.0
            np.testing.assert_array_equal(layer.params["W"], W_before, err_msg=case)


@pytest.mark.parametrize("make_activation", [lambda H: Dice(H), lambda H: PReLU(H)],
                         ids=["dice", "prelu"])
@pytest.mark.parametrize("training", [True, False])
def test_dice_prelu_fortran_input(make_activation, training):
    # DINAttention hands these activations a Fortran-order (N, H) matrix.
    rng = np.random.default_rng(6)
    s = rng.standard_normal((7, 4)) * 2.0 + 0.5
    dout = rng.standard_normal((7, 4))
    results = {}
    for layout in ("C", "F", "strided"):
        module = make_activation(4)
        module.params["alpha"][...] = [0.1, -0.3, 0.25, 0.6]
        if isinstance(module, Dice):
            module.buffers["running_mean"][...] = [0.2, -0.1, 0.0, 0.4]
            module.buffers["running_var"][...] = [1.5, 0.5, 2.0, 1.0]
        if not training:
            module.eval()
        out = module.forward(layouts(s)[layout])
        d_s = module.backward(layouts(dout)[layout])
        results[layout] = (out, d_s, module.grads["alpha"].copy(),
                           dict(getattr(module, "buffers", {})))
    expected_out, expected_d_s, expected_alpha, expected_buffers = results["C"]
    for layout in ("F", "strided"):
        out, d_s, d_alpha, buffers = results[layout]
        np.testing.assert_allclose(out, expected_out, rtol=1e-12, err_msg=layout)
        np.testing.assert_allclose(d_s, expected_d_s, rtol=1e-12, atol=1e-14, err_msg=layout)
        np.testing.assert_allclose(d_alpha, expected_alpha, rtol=1e-12, err_msg=layout)
        for name, value in expected_buffers.items():
            np.testing.assert_allclose(buffers[name], value, rtol=1e-12, err_msg=layout)


# --------------------------------------------------------------------------------------
# FieldEmbedding with sparse, multi and dense fields
# --------------------------------------------------------------------------------------

FIELD_MIXES = [
    ("sparse",),
    ("sparse", "sparse", "sparse"),
    ("dense",),
    ("multi",),
    ("sparse", "dense"),
    ("multi", "sparse"),
    ("dense", "sparse", "multi", "sparse"),
    ("sparse", "multi", "dense", "dense", "sparse"),
]


def field_mix(kinds, B, rng, id_dtype, weighted):
    """Return fields, a batch with repeated ids and padding, and multi-field weights."""
    fields, batch, weights = [], {}, {}
    for index, kind in enumerate(kinds):
        name = f"{kind}{index}"
        vocab_size = 3 + index
        if kind == "sparse":
            ids = rng.integers(0, vocab_size, B)
            ids[-1] = ids[0]                                       # a repeated id
            # every second entry of a longer array, so the id column is not contiguous
            longer = np.zeros(2 * B, dtype=id_dtype)
            longer[::2] = ids
            batch[name] = longer[::2]
            fields.append(Field(name, "sparse", vocab_size=vocab_size))
        elif kind == "multi":
            ids = rng.integers(0, vocab_size, (B, 3))
            ids[0] = [1, 1, 0]                                     # repeat and padding
            batch[name] = np.asfortranarray(ids.astype(id_dtype))
            if weighted:
                weights[name] = rng.standard_normal((B, 3))
            fields.append(Field(name, "multi", vocab_size=vocab_size, max_len=3))
        else:
            batch[name] = rng.standard_normal(B)
            fields.append(Field(name, "dense"))
    return fields, batch, weights


def reference_field_embedding(module, batch, weights, dout):
    """Return (E, per-table dense grads by table id, input grads) from the definitions."""
    B = dout.shape[0]
    K = module.embedding_dim
    E = np.zeros((B, len(module.fields), K))
    table_grads: dict[int, np.ndarray] = {}
    input_grads = {}
    for f_index, field in enumerate(module.fields):
        table, offset = module.table_rows(field.name)
        weight = table.params["weight"].astype(np.float64)
        d_table = table_grads.setdefault(id(table), np.zeros_like(weight))
        d_vector = dout[:, f_index, :]                             # (B, K)
        value = batch[field.name]
        if field.kind == "sparse":
            rows = value.astype(np.int64) + offset
            E[:, f_index] = weight[rows]
            np.add.at(d_table, rows, d_vector)
        elif field.kind == "multi":
            ids = value.astype(np.int64)
            real = (ids != 0).astype(np.float64)                   # (B, L)
            scale = real * weights.get(field.name, np.ones(ids.shape))
            denominator = np.ones(B)
            if module.pooling == "mean":
                denominator = np.maximum(real.sum(axis=1), 1.0)
            scale = scale / denominator[:, None]
            vectors = weight[ids + offset]                         # (B, L, K)
            E[:, f_index] = np.einsum("bl,blk->bk", scale, vectors)
            np.add.at(d_table, (ids + offset).reshape(-1),
                      (scale[:, :, None] * d_vector[:, None, :]).reshape(-1, K))
            if field.name in weights:
                d_weights = real * np.einsum("bk,blk->bl", d_vector, vectors)
                input_grads[field.name] = d_weights / denominator[:, None]
        else:
            E[:, f_index] = value[:, None] * weight[offset]
            d_table[offset] += d_vector.T @ value
            input_grads[field.name] = d_vector @ weight[offset]
    return E, table_grads, input_grads


@pytest.mark.parametrize("kinds", FIELD_MIXES, ids=lambda kinds: "+".join(kinds))
@pytest.mark.parametrize("single_table", [True, False])
def test_field_embedding_mixed_fields_reference(kinds, single_table):
    rng = np.random.default_rng(len(kinds))
    for dtype, B, pooling, id_dtype, weighted in [
            (np.float64, 4, "sum", np.int64, True),
            (np.float64, 1, "mean", np.uint8, False),
            (np.float32, 3, "mean", np.int32, True),
            (np.float64, 5, "mean", np.uint64, True)]:
        fields, batch, weights = field_mix(kinds, B, rng, id_dtype, weighted)
        dout = rng.standard_normal((B, len(fields), 3)).astype(dtype)
        for layout, d_input in layouts(dout).items():
            case = f"{dtype.__name__}, B={B}, {pooling}, ids {np.dtype(id_dtype)}, {layout}"
            module = FieldEmbedding(fields, 3, single_table=single_table, pooling=pooling,
                                    init_std=1.0, random_state=7, dtype=dtype)
            expected_E, expected_tables, expected_inputs = reference_field_embedding(
                module, batch, weights, dout.astype(np.float64))
            E = module.forward(batch, weights)
            input_grads = module.backward(d_input)
            tolerance = tolerance_for(dtype)
            assert E.shape == (B, len(fields), 3), case
            assert E.dtype == dtype, case
            np.testing.assert_allclose(E, expected_E, err_msg=case, **tolerance)
            tables = {id(table): table for table in
                      (module.table_rows(field.name)[0] for field in fields)}
            assert tables.keys() == expected_tables.keys(), case
            for key, table in tables.items():
                np.testing.assert_allclose(table.grads["weight"].to_dense(),
                                           expected_tables[key], err_msg=case, **tolerance)
            assert input_grads.keys() == expected_inputs.keys(), case
            for name, grad in expected_inputs.items():
                np.testing.assert_allclose(input_grads[name], grad, err_msg=f"{case}: {name}",
                                           **tolerance)


@pytest.mark.parametrize("kinds", [("sparse", "sparse"), ("sparse", "dense", "sparse")],
                         ids=["sparse only", "mixed"])
@pytest.mark.parametrize("bad_id, id_dtype", [(-1, np.int8), (-1, np.int64), (5, np.uint8),
                                              (5, np.int64), (-128, np.int8)])
def test_field_embedding_rejects_bad_ids(kinds, bad_id, id_dtype):
    fields = [Field(f"f{index}", kind, vocab_size=5 if kind == "sparse" else 0)
              for index, kind in enumerate(kinds)]
    batch = {field.name: (np.array([1, 2, 3], dtype=id_dtype) if field.kind == "sparse"
                          else np.array([0.5, 1.0, -1.0])) for field in fields}
    last = fields[-1].name
    batch[last] = np.array([1, bad_id, 3], dtype=id_dtype)
    module = FieldEmbedding(fields, 2, single_table=True, random_state=0)
    with pytest.raises(ValueError, match=f"field '{last}' contains id {bad_id},"):
        module.forward(batch)


# --------------------------------------------------------------------------------------
# SparseGrad near the 16-bit and 32-bit sort keys, and the optimizers' row check
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_rows", [20, 65535, 65536, 65537, 200_000, 2**33])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda dtype: np.dtype(dtype).name)
def test_coalesce_near_16_bit_rows(num_rows, dtype):
    rng = np.random.default_rng(num_rows)
    edges = np.array([0, 1, 255, 256, 65534, 65535, 65536, 65537, num_rows - 1])
    edges = edges[edges < num_rows]
    for K in (1, 3):
        for size in (1, 7, 40):
            rows = np.where(rng.random(size) < 0.6, rng.choice(edges, size),
                            rng.integers(0, num_rows, size))
            values = rng.standard_normal((size, K)).astype(dtype)
            grad = SparseGrad(num_rows, K, dtype)
            split = size // 2
            grad.add(rows[:split], values[:split])
            grad.add(rows[split:], values[split:])
            got_rows, got_values = grad.coalesce()

            expected_rows = np.unique(rows)
            expected_values = np.zeros((expected_rows.size, K))
            np.add.at(expected_values, np.searchsorted(expected_rows, rows),
                      values.astype(np.float64))
            assert got_rows.dtype == np.int64
            assert got_values.dtype == dtype
            np.testing.assert_array_equal(got_rows, expected_rows)
            np.testing.assert_allclose(got_values, expected_values, **tolerance_for(dtype))


class Table(Module):
    """One embedding table ``weight`` (N, K) with a sparse gradient."""

    def __init__(self, num_rows, dim=2):
        super().__init__()
        weight = np.random.default_rng(0).standard_normal((num_rows, dim))
        self.add_param("weight", weight, sparse=True)


@pytest.mark.parametrize("make_optimizer", [lambda m: Adam(m, 0.1), lambda m: SGD(m, 0.1),
                                            lambda m: Adagrad(m, 0.1)],
                         ids=["adam", "sgd", "adagrad"])
@pytest.mark.parametrize("num_rows, rows", [
    (10, [-1]),
    (10, [10]),
    (10, [2, -1, 2]),
    (65536, [65536]),
    (65536, [3, 65536]),
    (65536, [-65536]),
    (65536, [-1, 65535]),
    (70000, [-(2**16) + 1]),
    (20, [0] * 25 + [20]),          # more contributions than rows: the bincount path
])
def test_optimizers_reject_rows_outside_table(make_optimizer, num_rows, rows):
    model = Table(num_rows)
    before = model.params["weight"].copy()
    model.grads["weight"].add(rows, np.ones((len(rows), 2)))
    optimizer = make_optimizer(model)
    with pytest.raises(ValueError, match="sparse gradient of 'weight' has rows .* outside"):
        optimizer.step()
    np.testing.assert_array_equal(model.params["weight"], before)


@pytest.mark.parametrize("make_optimizer", [lambda m: Adam(m, 0.1), lambda m: SGD(m, 0.1),
                                            lambda m: Adagrad(m, 0.1)],
                         ids=["adam", "sgd", "adagrad"])
@pytest.mark.parametrize("num_rows, rows, expected_changed", [
    (65536, [65535, 3, 65535], [3, 65535]),         # 16-bit sort keys, 65535 the last row
    (65537, [65536, 65535, 65536], [65535, 65536]),  # 65536 needs two 16-bit passes
])
def test_optimizers_update_rows_near_16_bits(make_optimizer, num_rows, rows, expected_changed):
    model = Table(num_rows)
    before = model.params["weight"].copy()
    model.grads["weight"].add(rows, np.ones((len(rows), 2)))
    make_optimizer(model).step()
    changed = np.flatnonzero(np.any(model.params["weight"] != before, axis=1))
    np.testing.assert_array_equal(changed, expected_changed)


# --------------------------------------------------------------------------------------
# Adam against a textbook implementation
# --------------------------------------------------------------------------------------

class DenseAndTable(Module):
    """A dense parameter ``w`` (4, 2) and a table ``table`` (6, 3) with a sparse gradient."""

    def __init__(self, dtype=np.float64):
        super().__init__()
        rng = np.random.default_rng(0)
        self.add_param("w", rng.standard_normal((4, 2)).astype(dtype))
        self.add_param("table", rng.standard_normal((6, 3)).astype(dtype), sparse=True)


def adam_schedule(num_steps, seed):
    """Return per-step (dense grad, rows, row grads, lr, betas), changing lr and betas.

    Row 0 is in every step, so its step count passes 1024 in a long run. The second
    half's betas (0.99, 0.9999) keep both bias corrections away from 1 beyond step 1024
    (0.99^1300 = 2e-6 and 0.9999^1300 = 0.88), so a wrong correction there shows.
    """
    rng = np.random.default_rng(seed)
    steps = []
    for step in range(num_steps):
        rows = np.concatenate([[0], rng.integers(0, 3 if step % 2 else 6, rng.integers(0, 5))])
        lr = 0.01 * (1 + step % 3)
        betas = (0.9, 0.999) if step < num_steps // 2 else (0.99, 0.9999)
        steps.append((rng.standard_normal((4, 2)), rows,
                      rng.standard_normal((rows.size, 3)), lr, betas))
    return steps


def textbook_adam(schedule, eps, weight_decay):
    """Return (w, table) after the schedule, with Adam written out per parameter and row."""
    model = DenseAndTable()
    w = model.params["w"].copy()
    table = model.params["table"].copy()
    m_w, v_w, t_w = np.zeros_like(w), np.zeros_like(w), 0
    m_table, v_table, t_table = np.zeros_like(table), np.zeros_like(table), np.zeros(6, int)
    for w_grad, rows, row_grads, lr, (beta1, beta2) in schedule:
        g = w_grad + weight_decay * w
        t_w += 1
        m_w = beta1 * m_w + (1 - beta1) * g
        v_w = beta2 * v_w + (1 - beta2) * g * g
        m_hat = m_w / (1 - beta1 ** t_w)
        v_hat = v_w / (1 - beta2 ** t_w)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)

        summed = np.zeros_like(table)
        np.add.at(summed, rows, row_grads)
        for row in np.unique(rows):                  # lazy: only the rows in the batch
            g = summed[row] + weight_decay * table[row]
            t_table[row] += 1
            t = t_table[row]
            m_table[row] = beta1 * m_table[row] + (1 - beta1) * g
            v_table[row] = beta2 * v_table[row] + (1 - beta2) * g * g
            m_hat = m_table[row] / (1 - beta1 ** t)
            v_hat = v_table[row] / (1 - beta2 ** t)
            table[row] = table[row] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w, table, t_table


def run_adam(schedule, dtype=np.float64, weight_decay=0.0, restart_at=()):
    """Run minirec's Adam over the schedule, rebuilding model and optimizer from their
    state dicts before each step listed in ``restart_at``."""
    model = DenseAndTable(dtype)
    optimizer = Adam(model, lr=schedule[0][3], weight_decay=weight_decay)
    for step, (w_grad, rows, row_grads, lr, betas) in enumerate(schedule):
        if step in restart_at:
            model_state, optimizer_state = model.state_dict(), optimizer.state_dict()
            model = DenseAndTable(dtype)
            model.load_state_dict(model_state)
            optimizer = Adam(model, lr=lr, weight_decay=weight_decay)
            optimizer.load_state_dict(optimizer_state)
        optimizer.lr = lr
        optimizer.betas = betas
        optimizer.zero_grad()
        model.grads["w"][...] = w_grad
        model.grads["table"].add(rows, row_grads)
        optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_matches_textbook_long_run(weight_decay):
    schedule = adam_schedule(1300, seed=1)
    model, optimizer = run_adam(schedule, weight_decay=weight_decay)
    w, table, row_steps = textbook_adam(schedule, 1e-8, weight_decay)
    assert row_steps[0] == 1300                       # beyond the first 1024-step table
    np.testing.assert_array_equal(optimizer.state["table"]["step"], row_steps)
    np.testing.assert_allclose(model.params["w"], w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.params["table"], table, rtol=1e-9, atol=1e-12)


def test_adam_float32_matches_textbook():
    schedule = adam_schedule(60, seed=2)
    model, _ = run_adam(schedule, dtype=np.float32, weight_decay=0.01)
    w, table, _ = textbook_adam(schedule, 1e-8, 0.01)
    assert model.params["w"].dtype == np.float32
    assert model.params["table"].dtype == np.float32
    np.testing.assert_allclose(model.params["w"], w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.params["table"], table, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("restart_at", [(1,), (7, 20), (1030,), (500, 1100, 1299)])
def test_adam_state_round_trip_mid_run(restart_at):
    # A run rebuilt from state dicts part-way must equal the uninterrupted run exactly,
    # including restarts after a row's step count has passed 1024.
    schedule = adam_schedule(1300 if max(restart_at) > 100 else 40, seed=3)
    uninterrupted, _ = run_adam(schedule, weight_decay=0.01)
    restarted, _ = run_adam(schedule, weight_decay=0.01, restart_at=restart_at)
    for name, value in uninterrupted.state_dict().items():
        np.testing.assert_array_equal(restarted.state_dict()[name], value, err_msg=name)


# --------------------------------------------------------------------------------------
# ids_in_range and BCEWithLogitsLoss
# --------------------------------------------------------------------------------------

ID_DTYPES = INTEGER_DTYPES + (">i4", ">i8", "<i2")


@st.composite
def id_arrays(draw):
    """An integer array of any signed or unsigned dtype, with dtype limits among its values."""
    dtype = np.dtype(draw(st.sampled_from(ID_DTYPES)))
    info = np.iinfo(dtype)
    value = st.one_of(st.integers(int(info.min), int(info.max)),
                      st.sampled_from([int(info.min), int(info.max), 0, 1]),
                      st.integers(max(int(info.min), -3), min(int(info.max), 300)))
    values = draw(st.lists(value, min_size=0, max_size=12))
    return np.array(values, dtype=dtype)


@settings(max_examples=80, deadline=None)
@given(ids=id_arrays(),
       num_ids=st.one_of(st.integers(1, 300),
                         st.sampled_from([127, 128, 129, 255, 256, 32767, 32768, 65535,
                                          65536, 2**31 - 1, 2**31, 2**31 + 1, 2**63,
                                          2**63 + 1, 2**64])))
def test_ids_in_range_matches_reference(ids, num_ids):
    expected = all(0 <= int(value) < num_ids for value in ids.tolist())
    candidates = {"C": ids, "strided": layouts(ids)["strided"]}
    if ids.size % 2 == 0 and ids.size:
        candidates["F 2-D"] = np.asfortranarray(ids.reshape(2, -1))
        candidates["transposed 2-D"] = ids.reshape(2, -1).T
    for layout, array in candidates.items():
        assert ids_in_range(array, num_ids) is expected, layout


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, ">i2"],
                         ids=lambda dtype: np.dtype(dtype).str)
def test_ids_in_range_signed_edges(dtype):
    # ids_in_range reads signed ids as unsigned, where -1 becomes 2^bits - 1. Near
    # 2^(bits - 1) and 2^bits ids, a wrong bound would accept a negative id or reject a
    # valid one.
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    bits = 8 * dtype.itemsize
    values = sorted({int(info.min), int(info.min) + 1, -(2 ** (bits - 2)), -2, -1, 0, 1,
                     2 ** (bits - 2), int(info.max) - 1, int(info.max)})
    if bits == 8:
        values = list(range(-128, 128))
    sizes = [1, 2 ** (bits - 1) - 1, 2 ** (bits - 1), 2 ** (bits - 1) + 1,
             3 * 2 ** (bits - 2), 2 ** bits - 1, 2 ** bits, 2 ** bits + 1]
    for num_ids in sizes:
        for value in values:
            array = np.array([0, value], dtype=dtype)
            expected = 0 <= value < num_ids
            assert ids_in_range(array, num_ids) is expected, (value, num_ids)


def reference_bce(logits, labels):
    z = logits.astype(np.float64)
    y = labels.astype(np.float64)
    loss = np.mean(np.logaddexp(0.0, z) - z * y)
    gradient = (1.0 / (1.0 + np.exp(-z)) - y) / z.size
    return loss, gradient


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("label_dtype", [bool, np.int64, np.float32, np.float64],
                         ids=["bool", "int64", "float32", "float64"])
def test_bce_loss_any_layout(dtype, label_dtype):
    rng = np.random.default_rng(8)
    logits = (rng.standard_normal((5, 3)) * 4.0).astype(dtype)
    logits[0, 0], logits[1, 1] = 60.0, -60.0
    labels = rng.integers(0, 2, (5, 3)).astype(label_dtype)
    loss_expected, gradient_expected = reference_bce(logits, labels)
    for z_layout, z in layouts(logits).items():
        for y_layout, y in layouts(labels).items():
            case = f"logits {z_layout}, labels {y_layout}"
            loss = BCEWithLogitsLoss()
            value = loss.forward(z, y)
            gradient = loss.backward()
            assert gradient.dtype == dtype, case
            assert gradient.shape == logits.shape, case
            np.testing.assert_allclose(value, loss_expected, err_msg=case,
                                       **tolerance_for(dtype))
            np.testing.assert_allclose(gradient, gradient_expected, err_msg=case,
                                       **tolerance_for(dtype))


@pytest.mark.parametrize("logits, labels, error, message", [
    (np.zeros(3), np.array([0.0, 1.5, 1.0]), ValueError, r"labels must lie in \[0, 1\], got 1.5"),
    (np.zeros(3), np.array([0, -1, 1]), ValueError, r"labels must lie in \[0, 1\], got -1"),
    (np.array([0.0, np.nan, 1.0]), np.ones(3), ValueError, "logits contains NaN or infinite"),
    (np.zeros(3), np.array([0.0, np.inf, 1.0]), ValueError, "labels contains NaN or infinite"),
    (np.zeros(0), np.zeros(0), ValueError, "at least one logit"),
    (np.zeros(3), np.zeros(4), ValueError, r"labels must have the shape of logits \(3,\)"),
    (np.zeros(3, dtype=np.int64), np.zeros(3), TypeError, "logits must be a float array"),
    (np.zeros(3), np.array(["0", "1", "0"]), TypeError, "labels must be a numeric array"),
])
def test_bce_loss_rejects_bad_input(logits, labels, error, message):
    loss = BCEWithLogitsLoss()
    with pytest.raises(error, match=message):
        loss.forward(logits, labels)
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()
