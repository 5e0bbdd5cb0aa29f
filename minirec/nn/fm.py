"""Factorization machine: the pairwise term over field embeddings and the classic model.

Both classes rest on one identity (Rendle, "Factorization Machines", 2010). For vectors
``e_1 .. e_F`` of size K,

    sum_{i<j} <e_i, e_j> = 0.5 * sum_k [ (sum_i e_ik)^2 - sum_i e_ik^2 ]
                         = 0.5 * sum_k [ square_of_sum_k - sum_of_square_k ],

because the square of a sum contains every product ``e_ik e_jk`` twice (once as ``i, j`` and
once as ``j, i``) plus the squares ``e_ik^2``. It turns O(F^2 K) work into O(F K).
"""

from __future__ import annotations

import numpy as np

from .base import Module, check_dtype, check_positive_int, check_random_state


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


class FMInteraction(Module):
    """Second-order FM term over field embeddings: ``sum_{i<j} <e_i, e_j>`` per row.

    Math::

        square_of_sum = (sum_f E[:, f, :])^2          (B, K)
        sum_of_square = sum_f E[:, f, :]^2            (B, K)
        out = 0.5 * sum_k (square_of_sum - sum_of_square)    (B,)

    Input ``E`` of shape (B, F, K) has one embedding per field. A one-hot field gives its row
    of the table, a dense field its value times its vector, and a multi-valued field the sum
    or mean of its ids' rows. Output shape (B,). No parameters.

    Backward: ``d out / d E[b, f, :] = sum_i E[b, i, :] - E[b, f, :]``, the sum of the other
    fields' embeddings.

    Notes
    -----
    Pooling a multi-valued field first leaves out the products between ids of the same
    field: fields A = {a}, B = {b1, b2} give ``<a, b1 + b2>`` here, while the classic FM
    over the indicator vector also adds ``<b1, b2>``. This class computes the pooled form.

    Reference: S. Rendle, "Factorization Machines", ICDM 2010.
    """

    def forward(self, E):
        E = _as_float(E)
        if E.ndim != 3:
            raise ValueError(f"FMInteraction expects E of shape (B, F, K), got shape {E.shape}")
        self._E = E

        # (einsum sums over the field axis several times faster than E.sum(axis=1))
        # 1. square of the sum over fields
        self._sum_of_embeddings = np.einsum("bfk->bk", E)              # (B, K)
        square_of_sum = self._sum_of_embeddings ** 2                   # (B, K)

        # 2. sum over fields of the squares
        sum_of_square = np.einsum("bfk,bfk->bk", E, E)                 # (B, K)

        # 3. half the difference, summed over the embedding axis
        return 0.5 * (square_of_sum - sum_of_square).sum(axis=1)      # (B,)

    def backward(self, dout):
        # 3. -> 1. d out / d E_f = sum_i E_i - E_f
        d_E = self._sum_of_embeddings[:, None, :] - self._E            # (B, F, K)
        dout = np.asarray(dout, dtype=d_E.dtype)                       # (B,)
        return dout[:, None, None] * d_E                               # (B, F, K)


class FactorizationMachine(Module):
    """Classic factorization machine over a real-valued feature vector x.

    Math::

        y = w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j
          = w0 + x . w + 0.5 * sum_k [ (x V)_k^2 - (x^2 V^2)_k ]

    with ``square_of_sum = (x V)^2`` and ``sum_of_square = (x^2) (V^2)``, both (B, k); squares
    are element-wise. Input x (B, n_features), output y (B,).

    One model covers the input kinds of the paper. A one-hot categorical variable is a block
    of 0/1 entries of x, and a real-valued variable is one entry set to its value. A
    multi-valued variable sets several entries of its block, which the paper normalises to
    sum to 1. The field-level form over pooled embeddings is :class:`FMInteraction`.

    Gradients (with ``xv = x V``)::

        d y / d w0 = 1,   d y / d w_i = x_i,
        d y / d V_ik = x_i xv_k - x_i^2 V_ik,
        d y / d x_i = w_i + sum_k (xv_k V_ik - x_i V_ik^2).

    Parameters
    ----------
    n_features : int
        Length n of x.
    k : int
        Size of each factor vector ``v_i`` (a row of V).
    init_std : float
        Standard deviation of the normal initial V. ``w0`` (shape (1,)) and ``w`` start at 0.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Reference: S. Rendle, "Factorization Machines", ICDM 2010.
    """

    def __init__(self, n_features, k, *, init_std=0.01, random_state=None, dtype=np.float64):
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.k = check_positive_int("k", k)
        if isinstance(init_std, bool) or not isinstance(init_std, (int, float, np.floating)) \
                or not init_std >= 0:
            raise ValueError(f"init_std must be a non-negative number, got {init_std!r}")
        self.dtype = check_dtype(dtype)
        rng = check_random_state(random_state)
        self.add_param("w0", np.zeros(1, dtype=self.dtype))
        self.add_param("w", np.zeros(self.n_features, dtype=self.dtype))
        V = rng.normal(0.0, init_std, size=(self.n_features, self.k))
        self.add_param("V", V.astype(self.dtype))

    def forward(self, x):
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"FactorizationMachine expects x of shape (B, n_features={self.n_features}), "
                f"got shape {x.shape}"
            )
        w0, w, V = self.params["w0"], self.params["w"], self.params["V"]
        self._x = x

        # 1. bias and linear term
        linear = w0 + x @ w                                            # (B,)

        # 2. the two sides of the identity
        self._xv = x @ V                                               # (B, k)
        square_of_sum = self._xv ** 2                                  # (B, k)
        sum_of_square = (x ** 2) @ (V ** 2)                            # (B, k)

        # 3. pairwise term and output
        pairwise = 0.5 * (square_of_sum - sum_of_square).sum(axis=1)  # (B,)
        return linear + pairwise                                       # (B,)

    def backward(self, dout):
        dout = np.asarray(dout, dtype=self.dtype)                      # (B,)
        x, xv = self._x, self._xv
        w, V = self.params["w"], self.params["V"]

        # 3. -> 2. pairwise term: d/dV_ik = x_i xv_k - x_i^2 V_ik
        d_xv = dout[:, None] * xv                                      # (B, k)
        self.grads["V"] += x.T @ d_xv - ((x ** 2).T @ dout)[:, None] * V   # (n, k)
        d_x = d_xv @ V.T - dout[:, None] * x * (V ** 2).sum(axis=1)    # (B, n)

        # 1. bias and linear term
        self.grads["w0"] += dout.sum(keepdims=True)                    # (1,)
        self.grads["w"] += x.T @ dout                                  # (n,)
        d_x += dout[:, None] * w                                       # (B, n)
        return d_x
