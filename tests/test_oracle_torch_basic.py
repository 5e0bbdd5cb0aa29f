"""Compare the basic components with PyTorch autograd in float64.

Each test runs the same numbers through minirec and through PyTorch, then compares the
forward output and every gradient (inputs and parameters) to 1e-10.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is optional; these oracle tests need it")
F = torch.nn.functional

from minirec.nn.dice import Dice  # noqa: E402
from minirec.nn.embedding import Embedding, EmbeddingBag  # noqa: E402
from minirec.nn.linear import Linear  # noqa: E402
from minirec.nn.losses import BCEWithLogitsLoss, MSELoss  # noqa: E402
from minirec.nn.mlp import MLP  # noqa: E402
from minirec.nn.prelu import PReLU  # noqa: E402

TOLERANCE = 1e-10


def leaf(array):
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def assert_close(ours, theirs):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE, atol=TOLERANCE)


BAG_IDS = np.array([[3, 3, 0, 5],      # repeated id, padding
                    [0, 0, 0, 0],      # empty list
                    [1, 0, 2, 4],      # padding in the middle
                    [5, 4, 3, 2]])


def test_embedding_matches_torch():
    ids = np.array([[1, 4, 1], [0, 4, 2]])
    table = Embedding(5, 3, init_std=0.5, random_state=0)
    dout = np.random.default_rng(1).normal(size=(2, 3, 3))
    out = table.forward(ids)
    table.backward(dout)

    weight = leaf(table.params["weight"])
    torch_out = F.embedding(torch.tensor(ids), weight)
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(table.grads["weight"].to_dense(), weight.grad)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_matches_torch(mode):
    table = Embedding(6, 3, init_std=0.5, random_state=2)
    bag = EmbeddingBag(table, mode=mode)
    dout = np.random.default_rng(3).normal(size=(4, 3))
    out = bag.forward(BAG_IDS)
    bag.backward(dout)

    weight = leaf(table.params["weight"])
    torch_out = F.embedding_bag(torch.tensor(BAG_IDS), weight, mode=mode, padding_idx=0)
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(table.grads["weight"].to_dense(), weight.grad)


def test_weighted_embedding_bag_matches_torch():
    table = Embedding(6, 3, init_std=0.5, random_state=4)
    bag = EmbeddingBag(table, mode="sum")
    rng = np.random.default_rng(5)
    weights, dout = rng.normal(size=BAG_IDS.shape), rng.normal(size=(4, 3))
    out = bag.forward(BAG_IDS, weights)
    d_weights = bag.backward(dout)

    weight, torch_weights = leaf(table.params["weight"]), leaf(weights)
    torch_out = F.embedding_bag(torch.tensor(BAG_IDS), weight, mode="sum",
                                per_sample_weights=torch_weights, padding_idx=0)
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(table.grads["weight"].to_dense(), weight.grad)
    assert_close(d_weights, torch_weights.grad)


def test_weighted_mean_bag_with_offset_matches_torch_expression():
    # PyTorch's embedding_bag takes weights only in sum mode, so the mean of weighted
    # vectors is written out: sum_l m w E[offset + id] / max(count, 1).
    table = Embedding(9, 3, init_std=0.5, random_state=6)
    bag = EmbeddingBag(table, mode="mean", offset=3, num_ids=6)
    rng = np.random.default_rng(7)
    weights, dout = rng.normal(size=BAG_IDS.shape), rng.normal(size=(4, 3))
    out = bag.forward(BAG_IDS, weights)
    d_weights = bag.backward(dout)

    weight, torch_weights = leaf(table.params["weight"]), leaf(weights)
    ids = torch.tensor(BAG_IDS)
    mask = (ids != 0).double()
    count = mask.sum(dim=1).clamp(min=1)
    vectors = weight[ids + 3]
    torch_out = (mask * torch_weights).unsqueeze(-1).mul(vectors).sum(dim=1) / count[:, None]
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(table.grads["weight"].to_dense(), weight.grad)
    assert_close(d_weights, torch_weights.grad)


def test_linear_matches_torch():
    layer = Linear(4, 3, random_state=8)
    layer.params["b"][:] = [0.1, -0.2, 0.3]
    rng = np.random.default_rng(9)
    x, dout = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 3))
    out = layer.forward(x)
    dx = layer.backward(dout)

    torch_x, W, b = leaf(x), leaf(layer.params["W"]), leaf(layer.params["b"])
    torch_out = torch_x @ W + b
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(dx, torch_x.grad)
    assert_close(layer.grads["W"], W.grad)
    assert_close(layer.grads["b"], b.grad)


def torch_dice(s, alpha, eps):
    """Dice in training mode written with PyTorch operations (biased batch variance)."""
    flat = s.reshape(-1, s.shape[-1])
    mean = flat.mean(dim=0)
    var = ((flat - mean) ** 2).mean(dim=0)
    p = torch.sigmoid((s - mean) / torch.sqrt(var + eps))
    return p * s + (1 - p) * alpha * s


TORCH_ACTIVATIONS = {
    "relu": lambda h, alpha: torch.relu(h),
    "tanh": lambda h, alpha: torch.tanh(h),
    "sigmoid": lambda h, alpha: torch.sigmoid(h),
    "prelu": lambda h, alpha: F.prelu(h, alpha),
    "dice": lambda h, alpha: torch_dice(h, alpha, 1e-8),
}


@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
def test_mlp_matches_torch(activation):
    mlp = MLP(4, [5, 3], activation=activation, out_features=1, random_state=10)
    rng = np.random.default_rng(11)
    linears = [layer for layer in mlp.layers if isinstance(layer, Linear)]
    activations = [layer for layer in mlp.layers if layer.params.get("alpha") is not None]
    for layer in linears:
        layer.params["b"][:] = rng.normal(size=layer.params["b"].shape)
    for layer in activations:
        layer.params["alpha"][:] = rng.uniform(-1, 1, layer.num_features)
    x, dout = rng.normal(size=(6, 4)), rng.normal(size=(6, 1))
    out = mlp.forward(x)
    dx = mlp.backward(dout)

    torch_x = leaf(x)
    weights = [(leaf(layer.params["W"]), leaf(layer.params["b"])) for layer in linears]
    if activations:
        alphas = [leaf(layer.params["alpha"]) for layer in activations]
    else:
        alphas = [None] * (len(linears) - 1)       # relu, tanh and sigmoid have no slope
    h = torch_x
    for (W, b), alpha in zip(weights[:-1], alphas):
        h = TORCH_ACTIVATIONS[activation](h @ W + b, alpha)
    W, b = weights[-1]
    torch_out = h @ W + b
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(dx, torch_x.grad)
    for layer, (W, b) in zip(linears, weights):
        assert_close(layer.grads["W"], W.grad)
        assert_close(layer.grads["b"], b.grad)
    for layer, alpha in zip(activations, alphas):
        assert_close(layer.grads["alpha"], alpha.grad)


def test_prelu_matches_torch():
    prelu = PReLU(3)
    prelu.params["alpha"][:] = [0.1, -0.3, 0.6]
    rng = np.random.default_rng(12)
    x, dout = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    out = prelu.forward(x)
    dx = prelu.backward(dout)

    torch_x, alpha = leaf(x), leaf(prelu.params["alpha"])
    torch_out = F.prelu(torch_x, alpha)
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(dx, torch_x.grad)
    assert_close(prelu.grads["alpha"], alpha.grad)


@pytest.mark.parametrize("shape", [(6, 3), (2, 4, 3), (1, 3)])
def test_dice_training_matches_torch(shape):
    dice = Dice(3, eps=1e-8)
    dice.params["alpha"][:] = [0.2, -0.4, 0.7]
    rng = np.random.default_rng(13)
    s, dout = rng.normal(size=shape) * 2, rng.normal(size=shape)
    out = dice.forward(s)
    ds = dice.backward(dout)

    torch_s, alpha = leaf(s), leaf(dice.params["alpha"])
    torch_out = torch_dice(torch_s, alpha, 1e-8)
    torch_out.backward(torch.tensor(dout))
    assert_close(out, torch_out)
    assert_close(ds, torch_s.grad)
    assert_close(dice.grads["alpha"], alpha.grad)


def test_bce_matches_torch():
    rng = np.random.default_rng(14)
    logits = np.concatenate([rng.normal(size=6) * 5, [40.0, -40.0, 1000.0, -1000.0]])
    labels = np.array([1, 0, 1, 1, 0, 0.3, 1, 0, 0, 1], dtype=np.float64)
    loss = BCEWithLogitsLoss()
    value = loss.forward(logits, labels)
    d_logits = loss.backward()

    torch_logits = leaf(logits)
    torch_value = F.binary_cross_entropy_with_logits(torch_logits, torch.tensor(labels))
    torch_value.backward()
    assert value == pytest.approx(torch_value.item(), rel=TOLERANCE, abs=TOLERANCE)
    assert_close(d_logits, torch_logits.grad)


def test_mse_matches_torch():
    rng = np.random.default_rng(15)
    pred, target = rng.normal(size=7), rng.normal(size=7)
    loss = MSELoss()
    value = loss.forward(pred, target)
    d_pred = loss.backward()

    torch_pred = leaf(pred)
    torch_value = F.mse_loss(torch_pred, torch.tensor(target))
    torch_value.backward()
    assert value == pytest.approx(torch_value.item(), rel=TOLERANCE, abs=TOLERANCE)
    assert_close(d_pred, torch_pred.grad)
