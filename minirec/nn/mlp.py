"""Multi-layer perceptron: Linear layers with an activation and dropout between them."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .activations import make_activation
from .base import Module, check_positive_int, check_random_state
from .dropout import Dropout
from .linear import Linear


class MLP(Module):
    """Stack ``Linear -> activation -> Dropout`` once per hidden width.

    With ``out_features`` set, a last Linear layer without activation maps the final hidden
    vector to ``out_features`` values (1 for a logit). Input ``(..., in_features)``; output
    ``(..., hidden[-1])`` or ``(..., out_features)``.

    Parameters
    ----------
    in_features : int
    hidden : sequence of int
        Widths of the hidden layers, at least one.
    activation : str
        One of ``relu``, ``sigmoid``, ``tanh``, ``identity``, ``prelu``, ``dice``.
    dropout : float
        Dropout probability after each hidden activation (0 turns it off).
    out_features : int or None
    random_state : None, int or numpy.random.Generator
        Used for the initial weights and the dropout masks.
    dtype : float32 or float64
    """

    def __init__(self, in_features, hidden: Sequence[int], *, activation="relu", dropout=0.0,
                 out_features=None, random_state=None, dtype=np.float64):
        super().__init__()
        rng = check_random_state(random_state)
        hidden = list(hidden) if hidden is not None else []
        if not hidden:
            raise ValueError("hidden must list at least one layer width, got an empty list")
        for index, width in enumerate(hidden):
            check_positive_int(f"hidden[{index}]", width)
        self.layers: list[Module] = []
        width_in = check_positive_int("in_features", in_features)
        for width in hidden:
            self.layers.append(Linear(width_in, width, random_state=rng, dtype=dtype))
            self.layers.append(make_activation(activation, width, dtype=dtype))
            if dropout:
                self.layers.append(Dropout(dropout, random_state=rng))
            width_in = width
        if out_features is not None:
            self.layers.append(Linear(width_in, out_features, random_state=rng, dtype=dtype))
            width_in = out_features
        self.out_features = width_in

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
