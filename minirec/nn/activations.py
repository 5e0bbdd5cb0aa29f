"""Element-wise activations without parameters: ReLU, Sigmoid, Tanh and Identity.

PReLU and Dice carry parameters and live in their own files; :func:`make_activation`
builds any of them from its name.
"""

from __future__ import annotations

import numpy as np

from .base import Module


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Return ``1 / (1 + exp(-z))`` without overflow for any finite ``z``.

    For ``z >= 0`` the formula is used as written; for ``z < 0`` the equal form
    ``exp(z) / (1 + exp(z))`` keeps ``exp`` from overflowing. Both cases are the one
    expression ``exp(min(z, 0)) / (1 + exp(-|z|))``, whose ``exp`` calls only see
    non-positive arguments. It runs on whole arrays, which is several times faster than
    selecting the two cases with boolean masks.
    """
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.result_type(z, np.float32))
    return np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))


class Identity(Module):
    """``f(x) = x``; used where a layer takes an activation but none is wanted."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class ReLU(Module):
    """``f(x) = max(x, 0)``; the gradient at exactly 0 is taken as 0."""

    def forward(self, x):
        self._positive = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, dout):
        # Multiplying by the 0/1 mask is many times faster than np.where(mask, dout, 0).
        return dout * self._positive


class Sigmoid(Module):
    """``f(x) = 1 / (1 + exp(-x))``, with ``f'(x) = f(x) (1 - f(x))``."""

    def forward(self, x):
        self._y = sigmoid(x)
        return self._y

    def backward(self, dout):
        return dout * self._y * (1 - self._y)


class Tanh(Module):
    """``f(x) = tanh(x)``, with ``f'(x) = 1 - f(x)^2``."""

    def forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def backward(self, dout):
        return dout * (1 - self._y ** 2)


ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity", "prelu", "dice")


def make_activation(name: str, num_features: int, *, dtype=np.float64) -> Module:
    """Build the activation called ``name`` for vectors of ``num_features`` values."""
    key = str(name).lower()
    if key == "relu":
        return ReLU()
    if key == "sigmoid":
        return Sigmoid()
    if key == "tanh":
        return Tanh()
    if key in ("identity", "linear", "none"):
        return Identity()
    if key == "prelu":
        from .prelu import PReLU
        return PReLU(num_features, dtype=dtype)
    if key == "dice":
        from .dice import Dice
        return Dice(num_features, dtype=dtype)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")
