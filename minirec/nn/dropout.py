"""Inverted dropout."""

from __future__ import annotations

import numpy as np

from .base import Module, check_random_state


class Dropout(Module):
    """Zero each value with probability ``p`` in training and scale the rest by ``1 / (1 - p)``.

    The scaling happens in training ("inverted" dropout), so evaluation is the identity.
    The mask comes from the generator given as ``random_state``, never from NumPy's
    global state.
    """

    def __init__(self, p: float, *, random_state=None):
        super().__init__()
        if not isinstance(p, (int, float, np.floating)) or not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = check_random_state(random_state)
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= self.p
        self._mask = keep.astype(x.dtype) / (1.0 - self.p)
        return x * self._mask

    def backward(self, dout):
        if self._mask is None:
            return dout
        return dout * self._mask
