"""Losses on logits and predictions: binary cross-entropy and mean squared error.

A loss object is not a Module: it has no parameters, ``forward`` returns a Python float
(the batch mean) and ``backward()`` returns the gradient of that mean with respect to the
first argument of the last ``forward``.
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid


def _check_pair(first, second, first_name: str, second_name: str):
    """Return both arguments as float arrays of the first's dtype, checking shape and values."""
    first = np.asarray(first)
    second = np.asarray(second)
    if not np.issubdtype(first.dtype, np.floating):
        raise TypeError(f"{first_name} must be a float array, got dtype {first.dtype}")
    if second.shape != first.shape:
        raise ValueError(
            f"{second_name} must have the shape of {first_name} {first.shape}, got {second.shape}"
        )
    if not (np.issubdtype(second.dtype, np.number) or second.dtype == bool):
        raise TypeError(f"{second_name} must be a numeric array, got dtype {second.dtype}")
    if not np.all(np.isfinite(first)):
        raise ValueError(f"{first_name} contains NaN or infinite values")
    second = second.astype(first.dtype, copy=False)
    if not np.all(np.isfinite(second)):
        raise ValueError(f"{second_name} contains NaN or infinite values")
    return first, second


def bce_with_logits(z, y) -> np.ndarray:
    """Return the binary cross-entropy of each logit ``z`` against its label ``y``.

    ``loss = -y log(sigmoid(z)) - (1 - y) log(1 - sigmoid(z))``, computed as::

        loss = max(z, 0) - z * y + log1p(exp(-|z|))

    the same value rewritten so that ``exp`` only receives non-positive arguments. The
    result is finite and exact for any finite logit (``z = 1e4`` included) and never takes
    the log of 0. Labels may be soft (any value in [0, 1]). Output has the shape of ``z``.

    Worked values: ``z = 0`` gives ``0 - 0 + log1p(1) = ln 2`` for any label;
    ``z = 40, y = 1`` gives ``40 - 40 + log1p(exp(-40)) = 4.248e-18``.
    """
    z, y = _check_pair(z, y, "logits", "labels")
    _check_labels(y)
    return _bce_with_logits_unchecked(z, y)


def _check_labels(y) -> None:
    if y.size and (y.min() < 0 or y.max() > 1):
        bad = y[(y < 0) | (y > 1)][0]
        raise ValueError(f"labels must lie in [0, 1], got {bad}")


def _bce_with_logits_unchecked(z, y) -> np.ndarray:
    """Return the losses of :func:`bce_with_logits` for arrays already checked as it does."""
    # For |z| above about 745 (float64) or 104 (float32) exp(-|z|) rounds to 0, which is
    # the correctly rounded term; the underflow flag is expected there and not an error.
    with np.errstate(under="ignore"):
        softplus_tail = np.log1p(np.exp(-np.abs(z)))
    return np.maximum(z, 0) - z * y + softplus_tail


class BCEWithLogitsLoss:
    """Mean binary cross-entropy over a batch of logits ``(B,)`` (any shape works).

    ``forward(logits, labels)`` returns ``mean_b bce_with_logits(z_b, y_b)`` as a float.
    ``backward()`` returns ``d_logits = (sigmoid(z) - y) / B`` with ``B`` the number of
    logits, the gradient of that mean.
    """

    def __init__(self):
        self._logits = None
        self._labels = None

    def forward(self, logits, labels) -> float:
        z, y = _check_pair(logits, labels, "logits", "labels")
        _check_labels(y)
        if z.size == 0:
            raise ValueError("BCEWithLogitsLoss needs at least one logit, got an empty batch")
        self._logits, self._labels = z, y
        return float(_bce_with_logits_unchecked(z, y).mean())

    __call__ = forward

    def backward(self) -> np.ndarray:
        if self._logits is None:
            raise RuntimeError("BCEWithLogitsLoss.backward called before forward")
        z, y = self._logits, self._labels
        with np.errstate(under="ignore"):   # sigmoid(1e4) rounds to exactly 1, as it should
            probabilities = sigmoid(z)
        return ((probabilities - y) / z.size).astype(z.dtype, copy=False)


class MSELoss:
    """Mean squared error ``mean_b (pred_b - target_b)^2``, for rating targets.

    ``backward()`` returns ``d_pred = 2 (pred - target) / B`` with ``B`` the number of
    predictions.
    """

    def __init__(self):
        self._difference = None

    def forward(self, pred, target) -> float:
        pred, target = _check_pair(pred, target, "pred", "target")
        if pred.size == 0:
            raise ValueError("MSELoss needs at least one prediction, got an empty batch")
        self._difference = pred - target
        return float(np.mean(self._difference ** 2))

    __call__ = forward

    def backward(self) -> np.ndarray:
        if self._difference is None:
            raise RuntimeError("MSELoss.backward called before forward")
        return 2.0 * self._difference / self._difference.size
