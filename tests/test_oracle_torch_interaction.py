"""Interaction and attention components against PyTorch autograd of the same formulas.

Each test writes the component's formula in PyTorch, in float64, from the same parameters and
inputs, and compares the forward output, the input gradients and every parameter gradient
with minirec's hand-written passes to 1e-10.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip(
    "torch", reason="PyTorch is optional; these tests compare with its autograd")

from minirec.nn.afm_attention import AFMAttention  # noqa: E402
from minirec.nn.din_attention import DINAttention  # noqa: E402
from minirec.nn.fm import FactorizationMachine, FMInteraction  # noqa: E402
from minirec.nn.pairwise import BiInteraction, PairwiseProducts  # noqa: E402

TOLERANCE = dict(rtol=1e-10, atol=1e-10)


def leaf(array):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def torch_params(module):
    return {name: leaf(value) for name, value, _ in module.parameters()}


def backpropagate(torch_out, upstream):
    (torch_out * torch.from_numpy(upstream)).sum().backward()


def assert_close(actual, expected, name):
    np.testing.assert_allclose(actual, expected, err_msg=name, **TOLERANCE)


def assert_param_grads_match(module, params):
    for name, _, grad in module.parameters():
        assert params[name].grad is not None, name
        assert_close(grad, params[name].grad.numpy(), name)


def test_torch_is_float64():
    assert leaf([1.0]).dtype == torch.float64


@pytest.mark.parametrize("B, F, K", [(1, 2, 1), (3, 4, 3), (2, 1, 2)])
def test_fm_interaction(B, F, K):
    rng = np.random.default_rng(B * 100 + F * 10 + K)
    E, upstream = rng.standard_normal((B, F, K)), rng.standard_normal(B)
    module = FMInteraction()
    out = module.forward(E)
    d_E = module.backward(upstream)

    E_t = leaf(E)
    square_of_sum = E_t.sum(dim=1) ** 2
    sum_of_square = (E_t ** 2).sum(dim=1)
    out_t = 0.5 * (square_of_sum - sum_of_square).sum(dim=1)
    backpropagate(out_t, upstream)
    assert_close(out, out_t.detach().numpy(), "output")
    assert_close(d_E, E_t.grad.numpy(), "dE")


@pytest.mark.parametrize("B, n, k", [(1, 2, 1), (4, 5, 3)])
def test_factorization_machine(B, n, k):
    rng = np.random.default_rng(B * 100 + n * 10 + k)
    module = FactorizationMachine(n, k, init_std=0.5, random_state=1)
    module.params["w0"][...] = rng.standard_normal(1)
    module.params["w"][...] = rng.standard_normal(n)
    x, upstream = rng.standard_normal((B, n)), rng.standard_normal(B)
    out = module.forward(x)
    d_x = module.backward(upstream)

    params, x_t = torch_params(module), leaf(x)
    V = params["V"]
    # y = w0 + x.w + sum_{i<j} <v_i, v_j> x_i x_j, written with the explicit pair sum
    interactions = torch.triu((V @ V.T), diagonal=1)
    pairwise = torch.einsum("bi,ij,bj->b", x_t, interactions, x_t)
    out_t = params["w0"] + x_t @ params["w"] + pairwise
    backpropagate(out_t, upstream)
    assert_close(out, out_t.detach().numpy(), "output")
    assert_close(d_x, x_t.grad.numpy(), "dx")
    assert_param_grads_match(module, params)


@pytest.mark.parametrize("B, F, K", [(1, 2, 1), (3, 4, 3), (2, 1, 2)])
def test_pairwise_products_and_bi_interaction(B, F, K):
    rng = np.random.default_rng(B * 100 + F * 10 + K)
    E = rng.standard_normal((B, F, K))
    P = F * (F - 1) // 2
    upstream_pairs, upstream_bi = rng.standard_normal((B, P, K)), rng.standard_normal((B, K))

    pairwise = PairwiseProducts()
    out_pairs = pairwise.forward(E)
    d_E_pairs = pairwise.backward(upstream_pairs)
    bi = BiInteraction()
    out_bi = bi.forward(E)
    d_E_bi = bi.backward(upstream_bi)

    E_t = leaf(E)
    products_t = torch.stack([E_t[:, i] * E_t[:, j] for i in range(F) for j in range(i + 1, F)],
                             dim=1) if P else E_t[:, :0] * 0
    backpropagate(products_t, upstream_pairs)
    assert_close(out_pairs, products_t.detach().numpy(), "pairwise output")
    assert_close(d_E_pairs, E_t.grad.numpy(), "pairwise dE")

    E_t = leaf(E)
    bi_t = sum((E_t[:, i] * E_t[:, j] for i in range(F) for j in range(i + 1, F)),
               start=E_t[:, 0] * 0)
    backpropagate(bi_t, upstream_bi)
    assert_close(out_bi, bi_t.detach().numpy(), "bi-interaction output")
    assert_close(d_E_bi, E_t.grad.numpy(), "bi-interaction dE")


@pytest.mark.parametrize("B, P, K, A, dropout", [(1, 1, 2, 2, 0.0), (3, 6, 3, 4, 0.0),
                                                 (3, 6, 3, 4, 0.4), (2, 0, 2, 3, 0.0)])
def test_afm_attention(B, P, K, A, dropout):
    rng = np.random.default_rng(B * 1000 + P * 100 + K * 10 + A)
    module = AFMAttention(K, A, dropout=dropout, random_state=3)
    module.params["b"][...] = rng.normal(0.0, 0.1, size=A)
    products, upstream = rng.standard_normal((B, P, K)), rng.standard_normal(B)
    out = module.forward(products)
    # The dropout mask drawn by this forward, reused in the PyTorch formula (ones without).
    mask = module.dropout._mask if module.dropout._mask is not None else np.ones((B, P, K))
    d_products = module.backward(upstream)

    params, products_t = torch_params(module), leaf(products)
    hidden = torch.relu(products_t @ params["W"] + params["b"])
    weights = torch.softmax(hidden @ params["h"], dim=1)
    attended = weights[:, :, None] * products_t * torch.from_numpy(mask)
    out_t = attended.sum(dim=1) @ params["p"]
    backpropagate(out_t, upstream)
    assert_close(out, out_t.detach().numpy(), "output")
    assert_close(module.weights, weights.detach().numpy(), "weights")
    assert_close(d_products, products_t.grad.numpy(), "dproducts")
    assert_param_grads_match(module, params)


def torch_activation(name, s, params, prefix, valid):
    """The activation of the DIN unit's hidden layer, on every (b, t) of s (B, T, H)."""
    if name == "sigmoid":
        return torch.sigmoid(s)
    alpha = params[prefix + "alpha"]
    if name == "prelu":
        return torch.where(s > 0, s, alpha * s)
    # dice: batch statistics over the valid positions only (training mode). Without any valid
    # position every score is masked out, so count 1 only has to avoid 0 / 0.
    weight = torch.from_numpy(valid.astype(np.float64))[:, :, None]
    count = weight.sum().clamp(min=1.0)
    mean = (s * weight).sum(dim=(0, 1)) / count
    var = (((s - mean) ** 2) * weight).sum(dim=(0, 1)) / count
    p = torch.sigmoid((s - mean) / torch.sqrt(var + 1e-8))
    return s * (alpha + (1 - alpha) * p)


@st.composite
def din_batches(draw):
    B = draw(st.integers(1, 3))
    T = draw(st.integers(1, 4))
    K = draw(st.integers(1, 3))
    lengths = np.array(draw(st.lists(st.integers(0, T), min_size=B, max_size=B)))
    return B, T, K, lengths, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=30, deadline=None)
@given(batch=din_batches(), activation=st.sampled_from(["sigmoid", "prelu", "dice"]),
       normalize=st.booleans())
def test_din_attention(batch, activation, normalize):
    check_din_attention(*batch, activation, normalize)


@pytest.mark.parametrize("activation", ["sigmoid", "prelu", "dice"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("lengths", [[2, 0, 4], [0, 0, 0], [1, 4, 3]])
def test_din_attention_fixed_lengths(lengths, normalize, activation):
    check_din_attention(3, 4, 2, np.array(lengths), 17, activation, normalize)


def check_din_attention(B, T, K, lengths, seed, activation, normalize):
    rng = np.random.default_rng(seed)
    module = DINAttention(K, hidden=(3,), activation=activation, normalize=normalize,
                          random_state=seed)
    query, keys = rng.standard_normal((B, K)), rng.standard_normal((B, T, K))
    upstream = rng.standard_normal((B, K))
    pooled = module.forward(query, keys, lengths)
    d_query, d_keys = module.backward(upstream)

    # The same formula over the whole (B, T) grid; padded positions are masked afterwards.
    params, query_t, keys_t = torch_params(module), leaf(query), leaf(keys)
    valid = np.arange(T)[None, :] < lengths[:, None]
    valid_t = torch.from_numpy(valid)
    q = query_t[:, None, :].expand(B, T, K)
    unit_input = torch.cat([q, keys_t, q - keys_t, q * keys_t], dim=2)
    hidden_pre = unit_input @ params["unit.layers.0.W"] + params["unit.layers.0.b"]
    hidden = torch_activation(activation, hidden_pre, params, "unit.layers.1.", valid)
    scores = (hidden @ params["unit.layers.2.W"] + params["unit.layers.2.b"])[:, :, 0]
    if normalize:
        # A very negative fill gives exp(...) = 0 exactly; the mask zeroes empty rows.
        filled = torch.where(valid_t, scores, torch.full_like(scores, -1e300))
        weights = torch.softmax(filled, dim=1) * valid_t
    else:
        weights = torch.where(valid_t, scores, torch.zeros_like(scores))
    pooled_t = torch.einsum("bt,btk->bk", weights, keys_t)
    backpropagate(pooled_t, upstream)

    assert_close(pooled, pooled_t.detach().numpy(), "pooled")
    assert_close(module.weights, weights.detach().numpy(), "weights")
    assert_close(d_query, query_t.grad.numpy(), "dquery")
    assert_close(d_keys, keys_t.grad.numpy(), "dkeys")
    assert_param_grads_match(module, params)
