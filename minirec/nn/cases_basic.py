"""Gradient-check cases for the basic components, used by tests and ``minirec gradcheck``.

Each case is ``(name, module, inputs, kwargs)``: the caller runs
``check_gradients(module, inputs, name=name, **kwargs)``. Everything is float64 with small
fixed seeds, so a case gives the same numbers on every run.
"""

from __future__ import annotations

import numpy as np

from ..data.schema import Field
from .activations import ReLU, Sigmoid, Tanh
from .base import Module
from .dice import Dice
from .dropout import Dropout
from .embedding import Embedding, EmbeddingBag, FieldEmbedding
from .linear import Linear
from .losses import BCEWithLogitsLoss, MSELoss
from .mlp import MLP
from .prelu import PReLU


class BCELossCheck(Module):
    """Mean binary cross-entropy against fixed labels, as a module for gradient checks.

    ``forward(logits)`` returns the loss as a 0-d array and ``backward(dout)`` returns
    ``dout * d_loss/d_logits``.
    """

    def __init__(self, labels):
        super().__init__()
        self.labels = np.asarray(labels)
        self.loss = BCEWithLogitsLoss()

    def forward(self, logits):
        return np.asarray(self.loss.forward(logits, self.labels))

    def backward(self, dout):
        return dout * self.loss.backward()


class MSELossCheck(Module):
    """Mean squared error against a fixed target, as a module for gradient checks."""

    def __init__(self, target):
        super().__init__()
        self.target = np.asarray(target)
        self.loss = MSELoss()

    def forward(self, pred):
        return np.asarray(self.loss.forward(pred, self.target))

    def backward(self, dout):
        return dout * self.loss.backward()


def _field_embedding_case(single_table: bool, pooling: str, seed: int):
    fields = [
        Field("user", "sparse", vocab_size=5),
        Field("genre", "multi", vocab_size=6, max_len=4),
        Field("price", "dense"),
    ]
    module = FieldEmbedding(fields, 3, single_table=single_table, pooling=pooling,
                            init_std=0.5, random_state=seed)
    rng = np.random.default_rng(seed)
    batch = {
        "user": np.array([2, 2, 0, 4]),                             # id 2 repeated
        "genre": np.array([[3, 3, 5, 0],                            # repeated id, padding
                           [0, 0, 0, 0],                            # empty list
                           [1, 0, 2, 0],                            # padding in the middle
                           [5, 4, 3, 2]]),
        "price": rng.normal(size=4),
    }
    return module, [batch], {"differentiable": ["price"]}


def gradcheck_cases() -> list[tuple[str, Module, list, dict]]:
    """Return one gradient-check case for each basic component."""
    cases = []

    def normal(seed, *shape):
        return np.random.default_rng(seed).normal(size=shape)

    # Embedding tables
    ids = np.array([[1, 4, 1], [0, 4, 2]])                          # repeated ids 1 and 4
    cases.append(("Embedding", Embedding(5, 3, init_std=0.5, random_state=1), [ids], {}))

    bag_ids = np.array([[2, 2, 0, 5], [0, 0, 0, 0], [1, 3, 4, 0]])  # repeats, empty row
    table = Embedding(6, 3, init_std=0.5, random_state=2)
    cases.append(("EmbeddingBag(sum, weights)", EmbeddingBag(table, mode="sum"),
                  [bag_ids, normal(3, 3, 4)], {}))
    table = Embedding(9, 3, init_std=0.5, random_state=4)
    cases.append(("EmbeddingBag(mean, offset 3)",
                  EmbeddingBag(table, mode="mean", offset=3, num_ids=6),
                  [bag_ids, normal(5, 3, 4)], {}))

    module, inputs, kwargs = _field_embedding_case(True, "sum", 6)
    cases.append(("FieldEmbedding(single table, sum)", module, inputs, kwargs))
    module, inputs, kwargs = _field_embedding_case(False, "mean", 7)
    cases.append(("FieldEmbedding(per-field tables, mean)", module, inputs, kwargs))

    # Dense layers and activations
    cases.append(("Linear", Linear(4, 3, random_state=8), [normal(9, 5, 4)], {}))
    for seed, activation in enumerate(("relu", "tanh", "sigmoid", "prelu", "dice"), start=10):
        mlp = MLP(4, [5, 3], activation=activation, out_features=1, random_state=seed)
        cases.append((f"MLP({activation})", mlp, [normal(seed + 20, 6, 4)], {}))
    cases.append(("ReLU", ReLU(), [normal(40, 4, 3)], {}))
    cases.append(("Sigmoid", Sigmoid(), [normal(41, 4, 3)], {}))
    cases.append(("Tanh", Tanh(), [normal(42, 4, 3)], {}))

    prelu = PReLU(3)
    prelu.params["alpha"][:] = [0.1, -0.3, 0.6]
    cases.append(("PReLU", prelu, [normal(43, 2, 4, 3)], {}))

    dice = Dice(3)
    dice.params["alpha"][:] = [0.2, -0.4, 0.7]
    cases.append(("Dice(training)", dice, [normal(44, 2, 5, 3)], {}))
    dice_eval = Dice(3).eval()
    dice_eval.params["alpha"][:] = [0.2, -0.4, 0.7]
    dice_eval.buffers["running_mean"][:] = [0.1, -0.2, 0.3]
    dice_eval.buffers["running_var"][:] = [0.5, 1.5, 2.0]
    cases.append(("Dice(evaluation)", dice_eval, [normal(45, 4, 3)], {}))

    cases.append(("Dropout(p=0.3)", Dropout(0.3, random_state=46), [normal(47, 5, 4)], {}))

    # Losses
    logits = normal(48, 6) * 3
    labels = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.3])              # one soft label
    cases.append(("BCEWithLogitsLoss", BCELossCheck(labels), [logits], {}))
    cases.append(("MSELoss", MSELossCheck(normal(49, 6)), [normal(50, 6)], {}))
    return cases
