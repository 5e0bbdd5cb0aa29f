"""Attention-based pooling of AFM over the pairwise products of field embeddings."""

from __future__ import annotations

import numpy as np

from .base import Module, check_dtype, check_positive_int, check_random_state
from .dropout import Dropout
from .functional import softmax, softmax_backward


class AFMAttention(Module):
    """Weight each pairwise interaction by a learned attention score, pool and project.

    Math, for the pair vectors ``u_ij = v_i * v_j`` (the output of
    :class:`~minirec.nn.pairwise.PairwiseProducts`)::

        hidden_ij = ReLU(u_ij W + b)                         (B, P, A)
        score_ij  = hidden_ij . h                            (B, P)
        a_ij      = softmax over the pairs of score_ij       (B, P)
        pooled    = sum_ij dropout(a_ij u_ij)                (B, K)
        out       = pooled . p                               (B,)

    Input ``products`` (B, P, K); output (B,). After forward, ``weights`` contains the
    attention weights a (B, P) for inspection.

    Parameters
    ----------
    embedding_dim : int
        K, the size of each pair vector.
    attention_dim : int
        A, the width of the attention network's hidden layer.
    dropout : float
        Probability of zeroing an entry of the attention-weighted pair vectors in training.
    random_state : None, int or numpy.random.Generator
        Source of the initial weights (Glorot uniform for W, h and p, zeros for b) and of
        the dropout masks.
    dtype : float32 or float64

    Notes
    -----
    The paper applies dropout to the pair-wise interaction layer. Here the dropout mask acts
    on the attention-weighted pair vectors ``a_ij u_ij``, after the attention network has
    scored the clean pair vectors and before the sum and the projection p. With no pairs
    (one field) the output is 0.

    The code runs the same steps on transposed arrays, (K, P, B) and (A, P B), so that
    broadcasts run along the batch, and ``weights`` is a transposed view. The values and
    shapes are those above.

    Reference: J. Xiao, H. Ye, X. He, H. Zhang, F. Wu and T.-S. Chua, "Attentional
    Factorization Machines: Learning the Weight of Feature Interactions via Attention
    Networks", IJCAI 2017.
    """

    def __init__(self, embedding_dim, attention_dim, *, dropout=0.0, random_state=None,
                 dtype=np.float64):
        super().__init__()
        K = self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        A = self.attention_dim = check_positive_int("attention_dim", attention_dim)
        self.dtype = check_dtype(dtype)
        rng = check_random_state(random_state)

        def glorot(fan_in, fan_out, shape):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-limit, limit, size=shape).astype(self.dtype)

        self.add_param("W", glorot(K, A, (K, A)))
        self.add_param("b", np.zeros(A, dtype=self.dtype))
        self.add_param("h", glorot(A, 1, (A,)))
        self.add_param("p", glorot(K, 1, (K,)))
        self.dropout = Dropout(dropout, random_state=rng)
        self.weights = None

    def forward(self, products):
        products = np.asarray(products, dtype=self.dtype)
        if products.ndim != 3 or products.shape[2] != self.embedding_dim:
            raise ValueError(
                f"AFMAttention expects products of shape (B, P, K={self.embedding_dim}), "
                f"got shape {products.shape}"
            )
        B, P, K = products.shape
        W, b, h, p = self.params["W"], self.params["b"], self.params["h"], self.params["p"]

        # The steps run batch-last, on (K, P, B) and (A, P B), so that per-pair and
        # per-feature broadcasts run along B contiguous entries instead of K or A. The
        # output of PairwiseProducts is already in this layout, so this transpose is free.
        products_t = products.transpose(2, 1, 0).reshape(K, P * B)     # (K, P B)
        self._shape, self._products_t = (B, P, K), products_t

        # 1. attention network: one hidden ReLU layer per pair
        hidden_pre = W.T @ products_t                                  # (A, P B)
        hidden_pre += b[:, None]
        self._hidden_pre = hidden_pre
        self._hidden = np.maximum(hidden_pre, 0)                       # (A, P B)

        # 2. one score per pair
        scores = (h @ self._hidden).reshape(P, B)                      # (P, B)

        # 3. attention weights: softmax over the pairs
        weights_t = softmax(scores, axis=0)                            # (P, B)
        self.weights = weights_t.T                                     # (B, P)

        # 4. attention-weighted pair vectors, dropout, sum over the pairs
        attended = weights_t * products_t.reshape(K, P, B)             # (K, P, B)
        attended = self.dropout.forward(attended.transpose(2, 1, 0)).transpose(2, 1, 0)
        self._pooled_t = np.einsum("kpb->kb", attended)                # (K, B)

        # 5. projection to one number
        return p @ self._pooled_t                                      # (B,)

    def backward(self, dout):
        dout = np.asarray(dout, dtype=self.dtype)                      # (B,)
        B, P, K = self._shape
        products_t, weights_t = self._products_t, self.weights.T       # (K, P B), (P, B)
        W, h, p = self.params["W"], self.params["h"], self.params["p"]

        # 5. projection
        self.grads["p"] += self._pooled_t @ dout                       # (K,)
        d_pooled_t = p[:, None] * dout                                 # (K, B)

        # 4. sum over the pairs, dropout, weighting
        d_attended = np.broadcast_to(d_pooled_t[:, None, :], (K, P, B))  # (K, P, B)
        d_attended = self.dropout.backward(d_attended.transpose(2, 1, 0)).transpose(2, 1, 0)
        products_kpb = products_t.reshape(K, P, B)                     # (K, P, B)
        d_weights_t = np.einsum("kpb,kpb->pb", d_attended, products_kpb)  # (P, B)
        d_products_t = weights_t * d_attended                          # (K, P, B)

        # 3. softmax
        d_scores = softmax_backward(weights_t, d_weights_t, axis=0)    # (P, B)

        # 2. scores
        d_scores = d_scores.reshape(P * B)                             # (P B,)
        self.grads["h"] += self._hidden @ d_scores                     # (A,)
        d_hidden_pre = h[:, None] * d_scores                           # (A, P B)

        # 1. hidden ReLU layer
        # multiplying by the 0/1 mask is many times faster than np.where(mask, d_hidden, 0)
        d_hidden_pre *= self._hidden_pre > 0                           # (A, P B)
        self.grads["W"] += products_t @ d_hidden_pre.T                 # (K, A)
        self.grads["b"] += np.einsum("an->a", d_hidden_pre)            # (A,)
        d_products_t += (W @ d_hidden_pre).reshape(K, P, B)            # (K, P, B)
        return d_products_t.transpose(2, 1, 0)                         # (B, P, K)
