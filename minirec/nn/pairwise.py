"""Element-wise products of field embeddings: every pair kept (AFM) or their sum (NFM)."""

from __future__ import annotations

import numpy as np

from .base import Module, check_positive_int


def _as_embeddings(E, layer: str) -> np.ndarray:
    E = np.asarray(E)
    if not np.issubdtype(E.dtype, np.floating):
        E = E.astype(np.float64)
    if E.ndim != 3:
        raise ValueError(f"{layer} expects E of shape (B, F, K), got shape {E.shape}")
    return E


class PairwiseProducts(Module):
    """All element-wise products ``e_i * e_j`` of two different fields, ``i < j``.

    Math::

        out[:, p, :] = E[:, i_p, :] * E[:, j_p, :]    for (i_p, j_p) = pairs[p]

    Input E (B, F, K); output (B, P, K) with P = F (F - 1) / 2. ``pairs`` lists the field
    pairs (i, j), i < j, in lexicographic order: (0, 1), (0, 2), ..., (1, 2), ... It is set
    at construction when ``num_fields`` is given, otherwise by the first forward. One field
    gives P = 0 and an output of shape (B, 0, K). No parameters.

    Backward: field f receives ``dout_p * e_j`` from every pair p = (f, j) and
    ``dout_p * e_i`` from every pair p = (i, f).

    The output is a transposed view of a (K, P, B) array, the layout
    :class:`~minirec.nn.afm_attention.AFMAttention` computes in; use
    ``np.ascontiguousarray`` where a C-order copy is needed.

    Parameters
    ----------
    num_fields : int, optional
        F; when given, forward rejects inputs with another number of fields.

    Reference: J. Xiao et al., "Attentional Factorization Machines: Learning the Weight of
    Feature Interactions via Attention Networks", IJCAI 2017 (the pair-wise interaction layer).
    """

    def __init__(self, num_fields=None):
        super().__init__()
        self.num_fields = None
        self.pairs: list[tuple[int, int]] = []
        self._fields_fixed = num_fields is not None
        if self._fields_fixed:
            self._set_pairs(check_positive_int("num_fields", num_fields))

    def _set_pairs(self, F: int) -> None:
        self.num_fields = F
        rows, cols = np.triu_indices(F, k=1)       # row-major order is lexicographic
        self._rows, self._cols = rows, cols        # (P,), (P,)
        self.pairs = [(int(i), int(j)) for i, j in zip(rows, cols)]

    def forward(self, E):
        E = _as_embeddings(E, "PairwiseProducts")
        B, F, K = E.shape
        if self._fields_fixed and F != self.num_fields:
            raise ValueError(
                f"PairwiseProducts was built for num_fields={self.num_fields}, got E of "
                f"shape {E.shape} with {F} fields"
            )
        if F != self.num_fields:
            self._set_pairs(F)
        # The products are computed batch-last, (K, P, B) in memory, and returned as the
        # (B, P, K) transpose. Broadcasts then run along B contiguous entries instead of K,
        # here, in the backward pass and in AFMAttention, which works in the same layout.
        E_t = np.ascontiguousarray(E.transpose(2, 1, 0))               # (K, F, B)
        self._E_t = E_t
        # np.take gathers the fields several times faster than fancy indexing
        products_t = np.take(E_t, self._rows, axis=1)                  # (K, P, B)
        products_t *= np.take(E_t, self._cols, axis=1)
        return products_t.transpose(2, 1, 0)                           # (B, P, K)

    def backward(self, dout):
        E_t = self._E_t                                                # (K, F, B)
        dout_t = np.asarray(dout, dtype=E_t.dtype).transpose(2, 1, 0)  # (K, P, B)
        F = E_t.shape[1]
        d_E_t = np.zeros_like(E_t)                                     # (K, F, B)
        # Pairs are in lexicographic order, so the pairs (i, i+1), ..., (i, F-1) of field i
        # form one block of F-1-i pairs. One block at a time is several times faster than
        # np.add.at over the pair axis.
        start = 0
        for i in range(F - 1):
            stop = start + F - 1 - i
            block = dout_t[:, start:stop, :]                           # (K, F-1-i, B)
            # e_i receives dout_ij * e_j, and each e_j receives dout_ij * e_i
            d_E_t[:, i, :] += np.einsum("kjb,kjb->kb", block, E_t[:, i + 1:, :])   # (K, B)
            d_E_t[:, i + 1:, :] += block * E_t[:, i:i + 1, :]          # (K, F-1-i, B)
            start = stop
        return np.ascontiguousarray(d_E_t.transpose(2, 1, 0))          # (B, F, K)


class BiInteraction(Module):
    """Bi-interaction pooling of NFM: the sum of all pairwise products, in O(F K).

    Math::

        out = sum_{i<j} e_i * e_j = 0.5 * [ (sum_i e_i)^2 - sum_i e_i^2 ]
            = 0.5 * (square_of_sum - sum_of_square)

    with element-wise squares. Input E (B, F, K); output (B, K), the FM identity without the
    final sum over k. No parameters.

    Backward: ``d out_k / d E[b, f, k] = sum_i E[b, i, k] - E[b, f, k]``.

    Reference: X. He and T.-S. Chua, "Neural Factorization Machines for Sparse Predictive
    Analytics", SIGIR 2017.
    """

    def forward(self, E):
        E = _as_embeddings(E, "BiInteraction")
        self._E = E

        # 1. square of the sum over fields
        self._sum_of_embeddings = E.sum(axis=1)                        # (B, K)
        square_of_sum = self._sum_of_embeddings ** 2                   # (B, K)

        # 2. sum over fields of the squares
        sum_of_square = (E ** 2).sum(axis=1)                           # (B, K)

        # 3. half the difference
        return 0.5 * (square_of_sum - sum_of_square)                   # (B, K)

    def backward(self, dout):
        # 3. -> 1. d out / d E_f = sum_i E_i - E_f, per embedding coordinate
        dout = np.asarray(dout, dtype=self._E.dtype)                   # (B, K)
        return dout[:, None, :] * (self._sum_of_embeddings[:, None, :] - self._E)  # (B, F, K)
