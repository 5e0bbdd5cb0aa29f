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
        W, b, h, p = self.params["W"], self.params["b"], self.params["h"], self.params["p"]
        self._products = products

        # 1. attention network: one hidden ReLU layer per pair
        self._hidden_pre = products @ W + b                            # (B, P, A)
        self._hidden = np.maximum(self._hidden_pre, 0)                 # (B, P, A)

        # 2. one score per pair
        scores = self._hidden @ h                                      # (B, P)

        # 3. attention weights: softmax over the pairs
        self.weights = softmax(scores, axis=1)                         # (B, P)

        # 4. attention-weighted pair vectors, dropout, sum over the pairs
        attended = self.weights[:, :, None] * products                 # (B, P, K)
        # (einsum sums over the pairs several times faster than .sum(axis=1))
        self._pooled = np.einsum("bpk->bk", self.dropout.forward(attended))  # (B, K)

        # 5. projection to one number
        return self._pooled @ p                                        # (B,)

    def backward(self, dout):
        dout = np.asarray(dout, dtype=self.dtype)                      # (B,)
        products, weights = self._products, self.weights
        W, h, p = self.params["W"], self.params["h"], self.params["p"]

        # 5. projection
        self.grads["p"] += self._pooled.T @ dout                       # (K,)
        d_pooled = dout[:, None] * p                                   # (B, K)

        # 4. sum over the pairs, dropout, weighting
        d_attended = np.broadcast_to(d_pooled[:, None, :], products.shape)  # (B, P, K)
        d_attended = self.dropout.backward(d_attended)                 # (B, P, K)
        d_weights = np.einsum("bpk,bpk->bp", d_attended, products)     # (B, P)
        d_products = weights[:, :, None] * d_attended                  # (B, P, K)

        # 3. softmax
        d_scores = softmax_backward(weights, d_weights, axis=1)        # (B, P)

        # 2. scores
        self.grads["h"] += np.einsum("bpa,bp->a", self._hidden, d_scores)   # (A,)
        d_hidden = d_scores[:, :, None] * h                            # (B, P, A)

        # 1. hidden ReLU layer
        # multiplying by the 0/1 mask is many times faster than np.where(mask, d_hidden, 0)
        d_hidden_pre = d_hidden * (self._hidden_pre > 0)               # (B, P, A)
        # One (B P)-row matrix product each: several times faster than einsum or a batched
        # (B, P, A) @ (A, K) product.
        K, A = W.shape
        products_2d = products.reshape(-1, K)                          # (B P, K)
        d_hidden_pre_2d = d_hidden_pre.reshape(-1, A)                  # (B P, A)
        self.grads["W"] += products_2d.T @ d_hidden_pre_2d             # (K, A)
        self.grads["b"] += np.einsum("na->a", d_hidden_pre_2d)          # (A,)
        d_products += (d_hidden_pre_2d @ W.T).reshape(products.shape)  # (B, P, K)
        return d_products
