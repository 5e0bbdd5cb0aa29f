"""DIN's local activation unit: attention pooling of a behaviour sequence for one candidate."""

from __future__ import annotations

import numpy as np

from .base import Module, check_dtype, check_positive_int, check_random_state
from .functional import masked_softmax, set_rows, softmax_backward
from .mlp import MLP


class DINAttention(Module):
    """Pool the user's behaviours, each weighted by its relevance to the candidate item.

    Math, for the candidate q (B, K) and behaviours k_t (B, T, K), of which the first
    ``lengths[b]`` in row b are valid::

        unit_input_t = [q, k_t, q - k_t, q * k_t]                 (B, T, 4K)
        score_t      = MLP(unit_input_t)                          (B, T)
        w_t          = score_t                 (normalize=False)
                     = masked softmax of score (normalize=True)
        pooled       = sum_{t < length} w_t k_t                   (B, K)

    The activation unit is an :class:`~minirec.nn.mlp.MLP` with hidden widths ``hidden``,
    activation ``activation`` and one linear output. A padded position (t >= length) gets
    weight exactly 0, and its key gets gradient exactly 0. A row with length 0 pools to
    zeros. After forward, ``weights`` contains w (B, T).

    Parameters
    ----------
    embedding_dim : int
        K, the size of the candidate and behaviour embeddings.
    hidden : sequence of int
        Hidden widths of the activation unit.
    activation : str
        Activation of the unit's hidden layers: ``sigmoid``, ``dice``, ``prelu`` or any name
        that :func:`~minirec.nn.activations.make_activation` accepts.
    normalize : bool
        False: the scores are the weights. True: a softmax over the valid positions.
    random_state : None, int or numpy.random.Generator
        Source of the unit's initial weights.
    dtype : float32 or float64

    Notes
    -----
    The paper (normalize=False) uses the unit's output directly as the weight. It drops the
    softmax on purpose, so that the sum of the weights keeps the intensity of the
    user's interest in the candidate. The authors' released code (``din/model.py`` in
    github.com/zhougr1993/DeepInterestNetwork) normalises the scores with a softmax over the
    valid positions (normalize=True). Both are offered, and the default follows the paper.
    Two details of that code are not copied. It divides the scores by sqrt(K) before the
    softmax, which the unit's output layer can learn as a scale. It fills padded scores with
    -2^32 + 1, so an empty history gets equal weights on the padding, where here it gets
    zeros.

    The unit runs only on the N valid (b, t) positions. So Dice computes its batch
    statistics over valid behaviours only, and padding cannot change any score.

    The unit's first layer is computed from the four K-row blocks of its weight instead of
    on the (N, 4K) concatenation (see :meth:`_first_layer_blocks`). The parameters are those
    of an ordinary :class:`~minirec.nn.linear.Linear` over ``[q, k, q - k, q * k]``, so
    ``unit.forward`` on that concatenation still gives the same scores, and weights set or
    loaded by hand keep their meaning. The layer's output, the unit's (N, H) hidden matrix,
    is kept in Fortran order, so that the unit's activation broadcasts its per-feature
    values along contiguous memory.

    Reference: G. Zhou et al., "Deep Interest Network for Click-Through Rate Prediction",
    KDD 2018.
    """

    def __init__(self, embedding_dim, hidden=(36,), *, activation="sigmoid", normalize=False,
                 random_state=None, dtype=np.float64):
        super().__init__()
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be True or False, got {normalize!r}")
        self.normalize = bool(normalize)
        self.activation = activation
        self.dtype = check_dtype(dtype)
        rng = check_random_state(random_state)
        self.unit = MLP(4 * self.embedding_dim, hidden, activation=activation, out_features=1,
                        random_state=rng, dtype=self.dtype)
        self.weights = None

    def _check_inputs(self, query, keys, lengths):
        query = np.asarray(query, dtype=self.dtype)
        keys = np.asarray(keys, dtype=self.dtype)
        K = self.embedding_dim
        if query.ndim != 2 or query.shape[1] != K:
            raise ValueError(
                f"DINAttention expects query of shape (B, K={K}), got shape {query.shape}"
            )
        if keys.ndim != 3 or keys.shape[0] != query.shape[0] or keys.shape[2] != K:
            raise ValueError(
                f"DINAttention expects keys of shape (B={query.shape[0]}, T, K={K}), "
                f"got shape {keys.shape}"
            )
        B, T, _ = keys.shape
        lengths = np.asarray(lengths)
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"lengths must be an integer array, got dtype {lengths.dtype}")
        if lengths.shape != (B,):
            raise ValueError(f"lengths must have shape (B,) = ({B},), got shape {lengths.shape}")
        bad = np.flatnonzero((lengths < 0) | (lengths > T))
        if bad.size:
            row = int(bad[0])
            raise ValueError(
                f"lengths[{row}] = {int(lengths[row])} is invalid: each length must be in "
                f"[0, {T}] (0 to the number of key positions T)"
            )
        # Lengths become int64: np.repeat rejects uint64 counts, and np.add.reduceat rejects
        # the uint64 run starts that np.cumsum returns for smaller unsigned types.
        return query, keys, lengths.astype(np.int64, copy=False)

    def _first_layer_blocks(self):
        """Return the first layer's weight blocks for the query, the keys and the product.

        The unit's first Linear reads ``[q, k, q - k, q * k] W + b`` with ``W`` (4K, H)
        made of the K-row blocks ``W_q, W_k, W_d, W_p``. Multiplying out the difference::

            [q, k, q - k, q * k] W = q W_q + k W_k + (q - k) W_d + (q * k) W_p
                                   = q (W_q + W_d) + k (W_k - W_d) + (q * k) W_p

        So the query's share ``q (W_q + W_d) + b`` is the same for every behaviour of a row
        and is computed once per row (B, H) instead of once per valid position (N, H), and
        the (N, 4K) concatenation is never built.
        """
        K = self.embedding_dim
        W = self.unit.layers[0].params["W"]                            # (4K, H)
        W_q, W_k, W_d, W_p = W[:K], W[K:2 * K], W[2 * K:3 * K], W[3 * K:]  # (K, H) each
        return W_q + W_d, W_k - W_d, W_p

    def forward(self, query, keys, lengths):
        query, keys, lengths = self._check_inputs(query, keys, lengths)
        B, T, K = keys.shape
        first = self.unit.layers[0]

        # 0. valid positions, as flat indices in row-major order. Only their keys are read
        #    (np.take, faster than fancy indexing), and padded keys are kept as zeros, so no
        #    padded value (even NaN) reaches the output.
        valid = np.arange(T)[None, :] < lengths[:, None]               # (B, T)
        flat_index = np.flatnonzero(valid)                             # (N,)
        k_rows = np.take(keys.reshape(B * T, K), flat_index, axis=0)   # (N, K)
        keys = np.zeros((B * T, K), dtype=self.dtype)
        set_rows(keys, flat_index, k_rows)
        keys = keys.reshape(B, T, K)                                   # (B, T, K)

        # 1. the unit's first layer on [q, k, q - k, q * k] for the valid positions, computed
        #    as q (W_q + W_d) + b  +  k (W_k - W_d)  +  (q * k) W_p (see _first_layer_blocks).
        W_query, W_key, W_product = self._first_layer_blocks()         # (K, H) each
        query_part = query @ W_query                                   # (B, H)
        if first.use_bias:
            query_part += first.params["b"]                            # (B, H)
        # Row b's valid positions are its first lengths[b], so np.repeat gives each one its
        # row's query. The hidden layer is built as (H, N) and used as its Fortran-order
        # transpose, so that Dice broadcasts its per-feature values along contiguous memory.
        q_rows = np.repeat(query, lengths, axis=0)                     # (N, K)
        products = q_rows * k_rows                                     # (N, K)
        hidden_t = np.repeat(query_part.T, lengths, axis=1)            # (H, N)
        hidden_t += W_key.T @ k_rows.T
        hidden_t += W_product.T @ products.T
        hidden = hidden_t.T                                            # (N, H), Fortran order

        # 2. the rest of the unit: one score per valid position, 0 elsewhere
        scores = np.zeros((B, T), dtype=self.dtype)                    # (B, T)
        if flat_index.size:
            for layer in self.unit.layers[1:]:
                hidden = layer.forward(hidden)                         # (N, H') ... (N, 1)
            scores.reshape(-1)[flat_index] = hidden[:, 0]

        # 3. weights
        if self.normalize:
            self.weights = masked_softmax(scores, valid, axis=1)       # (B, T)
        else:
            self.weights = scores                                      # (B, T)

        # 4. weighted sum of the keys
        self._keys, self._query = keys, query
        self._flat_index, self._lengths = flat_index, lengths
        self._q_rows, self._k_rows, self._products = q_rows, k_rows, products
        return np.einsum("bt,btk->bk", self.weights, keys)             # (B, K)

    def backward(self, dpooled):
        """Return the gradients of the query (B, K) and of the keys (B, T, K).

        Padded positions get exactly 0.
        """
        d_query, d_key_rows = self.backward_rows(dpooled)              # (B, K), (N, K)
        B, T, K = self._keys.shape
        d_keys = np.zeros((B * T, K), dtype=self.dtype)                # (B T, K)
        set_rows(d_keys, self._flat_index, d_key_rows)
        return d_query, d_keys.reshape(B, T, K)

    def backward_rows(self, dpooled):
        """Return the gradients of the query (B, K) and of the valid keys only (N, K).

        The rows follow the valid positions in row-major order, as ``keys[mask]`` lists them
        for the mask of the first ``lengths[b]`` positions of each row. DIN adds them to its
        embedding tables directly, without the (B, T, K) array of :meth:`backward`.
        """
        dpooled = np.asarray(dpooled, dtype=self.dtype)                # (B, K)
        keys, weights, flat_index = self._keys, self.weights, self._flat_index
        B, T, K = keys.shape
        first = self.unit.layers[0]

        # 4. weighted sum: dk_t = w_t dpooled at the valid positions (the first-layer part is
        #    added in step 1)
        d_weights = np.einsum("bk,btk->bt", dpooled, keys)             # (B, T)
        if flat_index.size == 0:
            return np.zeros((B, K), dtype=self.dtype), np.zeros((0, K), dtype=self.dtype)
        weight_rows = np.take(weights, flat_index)                     # (N,)
        d_k_rows = np.repeat(dpooled, self._lengths, axis=0)           # (N, K)
        d_k_rows *= weight_rows[:, None]

        # 3. weights
        if self.normalize:
            d_scores = softmax_backward(weights, d_weights, axis=1)    # (B, T)
        else:
            d_scores = d_weights                                       # (B, T)

        # 2. the rest of the unit, valid positions only
        d_hidden = np.take(d_scores, flat_index)[:, None]              # (N, 1)
        for layer in reversed(self.unit.layers[1:]):
            d_hidden = layer.backward(d_hidden)                        # ... (N, H)

        # 1. the first layer. Every valid behaviour of row b sends its share of the query
        #    part back to the same row b. The valid positions of row b are its first
        #    lengths[b], so they form one run of the (N,) rows, which starts at the sum of
        #    the earlier lengths, and reduceat adds each run.
        lengths = self._lengths
        present = lengths > 0                                          # (B,)
        starts = (np.cumsum(lengths) - lengths)[present]               # (rows with N > 0,)
        d_query_part = np.zeros((B, d_hidden.shape[1]), dtype=self.dtype)
        d_query_part[present] = np.add.reduceat(d_hidden, starts, axis=0)  # (B, H)

        # Weight blocks, with G_q = q^T d_query_part (over B rows) and G_k = k^T d_hidden
        # (over N rows): dW_q = G_q, dW_k = G_k, dW_p = (q * k)^T d_hidden, and
        # dW_d = G_q - G_k, because W_d enters the query and the key term with opposite signs.
        # k^T d_hidden is computed as (d_hidden^T k)^T, because BLAS runs that operand
        # order about twice as fast when d_hidden is in Fortran order.
        G_query = self._query.T @ d_query_part                         # (K, H)
        G_key = (d_hidden.T @ self._k_rows).T                          # (K, H)
        d_W = first.grads["W"]                                         # (4K, H)
        d_W[:K] += G_query
        d_W[K:2 * K] += G_key
        d_W[2 * K:3 * K] += G_query - G_key
        d_W[3 * K:] += (d_hidden.T @ self._products).T
        if first.use_bias:
            first.grads["b"] += np.einsum("bh->h", d_query_part)       # (H,)

        # Inputs, with d_products = d_hidden W_p^T (N, K):
        #   dk = d_hidden (W_k - W_d)^T + d_products * q
        #   dq = d_query_part (W_q + W_d)^T + the run sums of d_products * k
        W_query, W_key, W_product = self._first_layer_blocks()         # (K, H) each
        d_products = d_hidden @ W_product.T                            # (N, K)
        d_k_rows += d_hidden @ W_key.T
        d_k_rows += d_products * self._q_rows
        d_products *= self._k_rows                                     # (N, K), shares of dq
        d_query = d_query_part @ W_query.T                             # (B, K)
        d_query[present] += np.add.reduceat(d_products, starts, axis=0)
        return d_query, d_k_rows
