"""Residual unit of Deep Crossing: two layers added back onto their input, then ReLU."""

from __future__ import annotations

import numpy as np

from .activations import ReLU
from .base import Module, check_positive_int, check_random_state
from .linear import Linear


class ResidualUnit(Module):
    """``out = ReLU(x + W1 ReLU(W0 x + b0) + b1)``, the input and output of one size.

    Math::

        h   = ReLU(x W0 + b0)          (B, H)
        r   = h W1 + b1                (B, D)
        out = ReLU(x + r)              (B, D)

    Input ``(B, D)``, output ``(B, D)``. The skip connection gives ``x`` a direct path to
    the output, so the two layers learn the residual ``r = out - x`` (before the last ReLU).

    Parameters
    ----------
    in_features : int
        D, the size of the input and the output.
    hidden_features : int
        H, the width of the inner layer.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Reference: Y. Shan, T. R. Hoens, J. Jiao, H. Wang, D. Yu and J. C. Mao, "Deep Crossing:
    Web-Scale Modeling without Manually Crafted Combinatorial Features", KDD 2016.
    """

    def __init__(self, in_features, hidden_features, *, random_state=None, dtype=np.float64):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.hidden_features = check_positive_int("hidden_features", hidden_features)
        rng = check_random_state(random_state)
        self.inner = Linear(self.in_features, self.hidden_features, random_state=rng,
                            dtype=dtype)
        self.inner_activation = ReLU()
        self.outer = Linear(self.hidden_features, self.in_features, random_state=rng,
                            dtype=dtype)
        self.output_activation = ReLU()

    def forward(self, x):
        # 1. inner layer
        h = self.inner_activation.forward(self.inner.forward(x))          # (B, H)

        # 2. residual
        r = self.outer.forward(h)                                         # (B, D)

        # 3. skip connection and ReLU
        return self.output_activation.forward(x + r)                      # (B, D)

    def backward(self, dout):
        # 3. skip connection and ReLU: the sum passes its gradient to both terms
        d_sum = self.output_activation.backward(dout)                     # (B, D)

        # 2. residual
        d_h = self.outer.backward(d_sum)                                  # (B, H)

        # 1. inner layer, plus the skip path
        d_x = self.inner.backward(self.inner_activation.backward(d_h))    # (B, D)
        return d_x + d_sum                                                # (B, D)
