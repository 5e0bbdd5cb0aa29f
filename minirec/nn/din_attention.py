"""DIN's local activation unit: attention pooling of a behaviour sequence for one candidate."""

from __future__ import annotations

import numpy as np

from .base import Module, check_dtype, check_positive_int, check_random_state
from .functional import masked_softmax, softmax_backward
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
    The paper (normalize=False) uses the unit's output directly as the weight and says the
    softmax is dropped on purpose, so that the sum of the weights keeps the intensity of the
    user's interest in the candidate. The authors' released code (``din/model.py`` in
    github.com/zhougr1993/DeepInterestNetwork) normalises the scores with a softmax over the
    valid positions (normalize=True). Both are offered, and the default follows the paper.
    Two details of that code are not copied. It divides the scores by sqrt(K) before the
    softmax, which the unit's output layer can learn as a scale. It fills padded scores with
    -2^32 + 1, so an empty history gets equal weights on the padding, where here it gets
    zeros.

    The unit runs only on the valid (b, t) positions, gathered into one (N, 4K) matrix. So
    Dice computes its batch statistics over valid behaviours only, and padding cannot change
    any score.

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
        return query, keys, lengths

    def forward(self, query, keys, lengths):
        query, keys, lengths = self._check_inputs(query, keys, lengths)
        B, T, K = keys.shape

        # 0. valid positions; padded keys are zeroed so that nothing they contain (even NaN)
        #    reaches the output
        valid = np.arange(T)[None, :] < lengths[:, None]               # (B, T)
        keys = np.where(valid[:, :, None], keys, 0).astype(self.dtype, copy=False)
        batch_index, time_index = np.nonzero(valid)                    # (N,), (N,)
        flat_index = batch_index * T + time_index                      # (N,) rows of (B T, K)

        # 1. activation unit input for the valid positions: [q, k, q - k, q * k]
        #    (np.take gathers whole rows several times faster than fancy indexing)
        q_rows = np.take(query, batch_index, axis=0)                   # (N, K)
        k_rows = np.take(keys.reshape(B * T, K), flat_index, axis=0)   # (N, K)
        unit_input = np.concatenate(
            [q_rows, k_rows, q_rows - k_rows, q_rows * k_rows], axis=1)  # (N, 4K)

        # 2. one score per valid position, 0 elsewhere
        scores = np.zeros((B, T), dtype=self.dtype)                    # (B, T)
        if batch_index.size:
            scores[batch_index, time_index] = self.unit.forward(unit_input)[:, 0]

        # 3. weights
        if self.normalize:
            self.weights = masked_softmax(scores, valid, axis=1)       # (B, T)
        else:
            self.weights = scores                                      # (B, T)

        # 4. weighted sum of the keys
        self._valid, self._keys = valid, keys
        self._batch_index, self._time_index = batch_index, time_index
        self._flat_index, self._lengths = flat_index, lengths
        self._q_rows, self._k_rows = q_rows, k_rows
        return np.einsum("bt,btk->bk", self.weights, keys)             # (B, K)

    def backward(self, dpooled):
        dpooled = np.asarray(dpooled, dtype=self.dtype)                # (B, K)
        keys, weights = self._keys, self.weights
        batch_index, time_index = self._batch_index, self._time_index
        K = self.embedding_dim

        # 4. weighted sum: padded positions have w = 0, so their keys get exactly 0
        d_weights = np.einsum("bk,btk->bt", dpooled, keys)             # (B, T)
        d_keys = weights[:, :, None] * dpooled[:, None, :]             # (B, T, K)
        d_query = np.zeros((keys.shape[0], K), dtype=self.dtype)       # (B, K)
        if batch_index.size == 0:
            return d_query, d_keys

        # 3. weights
        if self.normalize:
            d_scores = softmax_backward(weights, d_weights, axis=1)    # (B, T)
        else:
            d_scores = d_weights                                       # (B, T)

        # 2. activation unit, valid positions only
        d_unit_out = d_scores[batch_index, time_index][:, None]        # (N, 1)
        d_unit_input = self.unit.backward(d_unit_out)                  # (N, 4K)

        # 1. split [q, k, q - k, q * k] back into the query and the keys
        d_q_part, d_k_part, d_difference, d_product = np.split(d_unit_input, 4, axis=1)
        d_q_rows = d_q_part + d_difference + d_product * self._k_rows  # (N, K)
        d_k_rows = d_k_part - d_difference + d_product * self._q_rows  # (N, K)
        d_keys.reshape(-1, K)[self._flat_index] += d_k_rows             # (B, T, K)

        # Every valid behaviour of row b sends its share back to the same query q_b. The
        # valid positions of row b are its first lengths[b], so they form one run of the
        # (N,) rows, which starts at the sum of the earlier lengths. reduceat adds each run.
        lengths = self._lengths
        present = lengths > 0                                          # (B,)
        starts = (np.cumsum(lengths) - lengths)[present]               # (rows with N > 0,)
        d_query[present] = np.add.reduceat(d_q_rows, starts, axis=0)   # (B, K)
        return d_query, d_keys
