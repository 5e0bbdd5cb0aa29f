"""Parametric ReLU with one learned slope per feature."""

from __future__ import annotations

import numpy as np

from .base import Module, check_dtype, check_positive_int


class PReLU(Module):
    """``f(x) = x`` for ``x > 0`` and ``f(x) = alpha * x`` otherwise, per feature.

    The slope ``alpha`` has one entry per feature of the last axis. Input and output shape
    ``(..., H)``. Gradients::

        df/dx = 1 if x > 0 else alpha
        df/dalpha = 0 if x > 0 else x     (summed over every leading axis)

    At exactly ``x = 0`` the negative branch is taken, where both branches give ``f = 0``.

    Parameters
    ----------
    num_features : int
        Size ``H`` of the last axis.
    init : float
        Initial slope of every feature.
    dtype : float32 or float64

    Reference: He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance
    on ImageNet Classification", 2015.
    """

    def __init__(self, num_features, *, init=0.25, dtype=np.float64):
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        if not isinstance(init, (int, float, np.floating)) or not np.isfinite(init):
            raise ValueError(f"init must be a finite number, got {init!r}")
        self.dtype = check_dtype(dtype)
        self.add_param("alpha", np.full(self.num_features, init, dtype=self.dtype))
        self._x = None

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"PReLU expects inputs whose last axis is num_features={self.num_features}, "
                f"got shape {x.shape}"
            )
        self._x = x
        self._positive = x > 0
        return np.where(self._positive, x, self.params["alpha"] * x)        # (..., H)

    def backward(self, dout):
        x, positive = self._x, self._positive
        H = self.num_features
        negative_part = np.where(positive, 0, x * dout)                    # (..., H)
        self.grads["alpha"] += np.einsum("nh->h", negative_part.reshape(-1, H))  # (H,)
        return np.where(positive, dout, self.params["alpha"] * dout)        # (..., H)
