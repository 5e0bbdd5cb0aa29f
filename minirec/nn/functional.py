"""Stateless functions shared by the layers: softmax, masked softmax, log-sigmoid, row writes.

Each function keeps a floating input's dtype (float32 stays float32); other inputs are
converted to float64.
"""

from __future__ import annotations

import numpy as np


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def softmax(x, axis: int = -1) -> np.ndarray:
    """Return ``exp(x_i) / sum_j exp(x_j)`` along ``axis``, stable for large inputs.

    Softmax does not change when a constant is subtracted from every entry, so the row
    maximum is subtracted first and ``exp`` never overflows: ``softmax((1000, 1001, 1002))``
    equals ``softmax((0, 1, 2)) = (0.0900, 0.2447, 0.6652)``. An empty axis returns an empty
    array.
    """
    x = _as_float(x)
    if x.shape[axis] == 0:
        return x.copy()
    shifted = x - np.max(x, axis=axis, keepdims=True)
    exp_shifted = np.exp(shifted)
    return exp_shifted / np.sum(exp_shifted, axis=axis, keepdims=True)


def masked_softmax(x, mask, axis: int = -1) -> np.ndarray:
    """Return the softmax of ``x`` along ``axis`` over the positions where ``mask`` is True.

    Masked positions (``mask`` False) get exactly 0, whatever value ``x`` has there (even NaN or
    inf), and a row with no valid position gets all zeros instead of NaN. ``mask`` must be a
    boolean array that broadcasts to ``x``'s shape.
    """
    x = _as_float(x)
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array (True = valid), got dtype {mask.dtype}")
    try:
        mask = np.broadcast_to(mask, x.shape)
    except ValueError as error:
        raise ValueError(
            f"mask of shape {mask.shape} does not broadcast to x of shape {x.shape}"
        ) from error
    if x.shape[axis] == 0:
        return np.zeros_like(x)

    # 1. the maximum over valid positions only; a row without any takes 0 as its shift
    row_max = np.max(x, axis=axis, keepdims=True, where=mask, initial=-np.inf)
    row_max = np.where(np.isfinite(row_max), row_max, 0).astype(x.dtype, copy=False)

    # 2. exponentials, exactly 0 at masked positions; masked entries are replaced by the
    #    row maximum first, so exp is never applied to them
    shifted = np.where(mask, x, row_max) - row_max
    exp_shifted = np.where(mask, np.exp(shifted), 0).astype(x.dtype, copy=False)

    # 3. normalise; an all-masked row divides 0 by 1
    total = np.sum(exp_shifted, axis=axis, keepdims=True)
    return exp_shifted / np.where(total > 0, total, 1)


def softmax_backward(weights, d_weights, axis: int = -1) -> np.ndarray:
    """Return the gradient of a softmax's input from its output ``weights`` and ``d_weights``.

    With ``a = softmax(s)``, ``dL/ds_i = a_i (dL/da_i - sum_j a_j dL/da_j)``. The same formula
    serves :func:`masked_softmax`: a masked position has ``a_i = 0`` and so gets exactly 0,
    provided ``d_weights`` is finite there.
    """
    weighted_total = np.sum(weights * d_weights, axis=axis, keepdims=True)
    return weights * (d_weights - weighted_total)


def log_sigmoid(z) -> np.ndarray:
    """Return ``log(1 / (1 + exp(-z)))`` without overflow or ``log(0)`` for any finite ``z``.

    The identity ``log sigmoid(z) = min(z, 0) - log(1 + exp(-|z|))`` only ever takes ``exp``
    of a non-positive number, so ``log_sigmoid(-1000)`` is ``-1000`` rather than ``-inf``.
    """
    z = _as_float(z)
    return np.minimum(z, 0) - np.log1p(np.exp(-np.abs(z)))


def set_rows(table: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` (R, K) into ``table[rows]`` for unique rows (R,), same as fancy indexing.

    A C-contiguous table is viewed as one opaque item per row, so that NumPy copies each
    row as a block instead of K single entries: about twice as fast as ``table[rows] =
    values`` for (1900, 8) float32 rows of a 16,000-row table.
    """
    if table.ndim == 2 and table.flags.c_contiguous and table.shape[1]:
        values = np.ascontiguousarray(values, dtype=table.dtype)
        row_type = np.dtype((np.void, table.shape[1] * table.dtype.itemsize))
        table_rows = table.view(row_type).reshape(table.shape[0])              # (N,)
        table_rows[rows] = values.view(row_type).reshape(values.shape[0])    # (R,)
    else:
        table[rows] = values
