"""DIN and its base model: a user's behaviours pooled by attention to the candidate, or summed."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..data.schema import DENSE, MULTI, SPARSE, Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.din_attention import DINAttention
from ..nn.embedding import FieldEmbedding
from ..nn.functional import set_rows
from ..nn.mlp import MLP
from .base import Model
from .fm import check_dropout, check_hidden

MLP_ACTIVATIONS = ("dice", "prelu")


class DINBase(Model):
    """Embedding and MLP with the behaviours sum-pooled into one fixed-length user vector.

    Math, for the embeddings ``e_f`` of the non-sequence fields (sparse, multi and dense)
    and the behaviour keys ``k_t`` of the first ``length`` positions::

        k_t    = [E_1[hist_1[t]], ..., E_S[hist_S[t]]]             (B, T, S K)
        pooled = sum_{t < length} k_t                               (B, S K)
        logit  = MLP([e_1, ..., e_F, pooled])                       (B,)

    where sequence ``s`` reads the table ``E_s`` of the sparse field named by its
    ``vocab_of`` (the candidate item's table for the item history, the category table for
    the category history). So the candidate and the behaviours share rows, and a row read by
    both receives the sum of both gradients.

    This is the "Base Model" of the DIN paper (embedding, sum pooling, MLP), which
    compresses the whole history into one vector whatever the candidate.

    Input: a batch dict of the schema (see :mod:`minirec.data.schema`). Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        At least one sequence field; every sequence field shares one length key, and all
        of them have the same padded width.
    embedding_dim : int
        K, the size of every embedding.
    hidden : sequence of int
        Hidden widths of the MLP (200, 80 in the paper).
    activation : ``"dice"`` or ``"prelu"``
        Activation of the MLP's hidden layers (the paper uses Dice).
    dropout : float
        Dropout after each hidden layer of the MLP, in training mode only.
    init_std : float
        Standard deviation of the normal initial embeddings.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Notes
    -----
    Positions at or after a row's length are padding, as the schema defines, whatever ids
    they contain: they are left out of the pooled vector and their rows get no gradient.
    A multi-valued field is pooled by :class:`~minirec.nn.embedding.FieldEmbedding` (sum),
    as the paper pools its multi-hot user and ad features.

    Reference: G. Zhou, X. Zhu, C. Song, Y. Fan, H. Zhu, X. Ma, Y. Yan, J. Jin, H. Li and
    K. Gai, "Deep Interest Network for Click-Through Rate Prediction", KDD 2018.
    """

    name = "din-base"

    def __init__(self, schema: Schema, *, embedding_dim=8, hidden=(200, 80), activation="dice",
                 dropout=0.0, init_std=0.01, random_state=None, dtype=np.float64, **config):
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        hidden = check_hidden(hidden)
        dropout = check_dropout(dropout)
        if activation not in MLP_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(MLP_ACTIVATIONS)}, got {activation!r}"
            )
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim, hidden=hidden,
                         activation=activation, dropout=dropout, init_std=init_std, **config)
        self.sequences = schema.sequence_fields
        if not self.sequences:
            raise ValueError(
                f"{type(self).__name__} needs at least one sequence field (the user's "
                f"behaviours); the schema has fields {[f.name for f in schema.fields]}"
            )
        length_keys = sorted({f.length for f in self.sequences})
        if len(length_keys) != 1:
            raise ValueError(
                f"{type(self).__name__} pools one behaviour sequence, so every sequence field "
                f"must share one length key; got length keys {length_keys}"
            )
        self.length_key = length_keys[0]
        self.fields = schema.of_kind(SPARSE, MULTI, DENSE)
        names = [f.name for f in self.fields]
        # Query position of each sequence: the candidate field whose table it shares.
        self.candidate_index = [names.index(f.vocab_of) for f in self.sequences]
        rng = check_random_state(random_state)
        K = embedding_dim
        F, S = len(self.fields), len(self.sequences)

        self.embedding = FieldEmbedding(self.fields, K, single_table=False, init_std=init_std,
                                        random_state=rng, dtype=self.dtype)
        self._build_pooling(S * K, rng)
        self.mlp = MLP(F * K + S * K, hidden, activation=activation, dropout=dropout,
                       out_features=1, random_state=rng, dtype=self.dtype)
        self._cache = None

    # -- pooling: sum here, attention in DIN ------------------------------------------------

    def _build_pooling(self, key_dim: int, rng) -> None:
        """Build the pooling's parameters; sum pooling has none, DIN builds its attention."""

    def _pool(self, query, keys, lengths, valid):
        return np.einsum("btd->bd", keys)                              # (B, S K), padding is 0

    def _pool_backward(self, d_pooled, lengths, flat_index):
        """Return the gradients of the query (B, S K) and of the valid keys (N, S K)."""
        d_query = np.zeros_like(d_pooled)                              # (B, S K)
        return d_query, np.repeat(d_pooled, lengths, axis=0)           # (N, S K)

    # -- forward and backward ---------------------------------------------------------------

    def _check_sequences(self, batch):
        widths = {f.name: batch[f.name].shape[1] for f in self.sequences}
        if len(set(widths.values())) > 1:
            raise ValueError(
                f"sequence fields sharing the length key {self.length_key!r} must have the same "
                f"padded width T; got widths {widths}"
            )

    def _forward(self, batch) -> np.ndarray:
        self._check_sequences(batch)
        lengths = np.asarray(batch[self.length_key]).astype(np.int64, copy=False)  # (B,)
        B, T = batch[self.sequences[0].name].shape
        K = self.embedding.embedding_dim

        # 1. embeddings of the non-sequence fields; the query is the candidate's part
        E = self.embedding.forward(batch)                              # (B, F, K)
        query = E[:, self.candidate_index, :].reshape(B, -1)           # (B, S K)

        # 2. behaviour keys, read from the candidate fields' tables at the valid positions
        #    only (flat indices in row-major order). Padded keys stay 0.
        valid = np.arange(T)[None, :] < lengths[:, None]               # (B, T)
        flat_index = np.flatnonzero(valid)                             # (N,)
        S = len(self.sequences)
        key_rows = np.empty((flat_index.size, S * K), dtype=self.dtype)  # (N, S K)
        key_ids = []
        for s, f in enumerate(self.sequences):
            table, offset = self.embedding.table_rows(f.vocab_of)
            ids = np.take(batch[f.name], flat_index).astype(np.int64) + offset  # (N,)
            key_rows[:, s * K:(s + 1) * K] = table.lookup(ids)         # (N, K)
            key_ids.append(ids)
        keys = np.zeros((B * T, S * K), dtype=self.dtype)              # (B T, S K)
        set_rows(keys, flat_index, key_rows)
        keys = keys.reshape(B, T, S * K)                               # (B, T, S K)

        # 3. one user vector per row
        pooled = self._pool(query, keys, lengths, valid)               # (B, S K)

        # 4. MLP on everything
        x = np.concatenate([E.reshape(B, -1), pooled], axis=1)         # (B, F K + S K)
        logits = self.mlp.forward(x)[:, 0]                             # (B,)

        self._cache = (lengths, flat_index, key_ids, B, K)
        return logits

    def _backward(self, dlogits) -> dict:
        lengths, flat_index, key_ids, B, K = self._cache
        F = len(self.fields)
        dlogits = np.asarray(dlogits, dtype=self.dtype)                # (B,)

        # 4. MLP
        d_x = self.mlp.backward(dlogits[:, None])                      # (B, F K + S K)
        d_E = d_x[:, :F * K].reshape(B, F, K).copy()                   # (B, F, K)
        d_pooled = d_x[:, F * K:]                                      # (B, S K)

        # 3. pooling
        d_query, d_key_rows = self._pool_backward(d_pooled, lengths, flat_index)  # (B, S K), (N, S K)

        # 2. behaviour keys: only valid positions send gradient to their rows
        for s, (f, ids) in enumerate(zip(self.sequences, key_ids)):
            table, _ = self.embedding.table_rows(f.vocab_of)
            table.add_grad(ids, d_key_rows[:, s * K:(s + 1) * K])      # (N, K)

        # 1. the query is part of the candidate fields' embeddings; one field at a time,
        #    because two sequences may share a candidate field (faster than np.add.at)
        for s, index in enumerate(self.candidate_index):
            d_E[:, index] += d_query[:, s * K:(s + 1) * K]             # (B, K)
        return self.embedding.backward(d_E)

    # -- what the trainer and lessons need ---------------------------------------------------

    def embedding_table_names(self) -> dict[str, str]:
        """Return the dotted parameter name of each field's embedding table.

        These are the names :class:`minirec.optim.MiniBatchAwareL2` takes as keys of its
        ``frequencies``.
        """
        by_id = {id(param): name for name, param, _ in self.parameters()}
        names = {}
        for f in self.fields:
            table, _ = self.embedding.table_rows(f.name)
            names[f.name] = by_id[id(table.params["weight"])]
        return names

    def table_frequencies(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Count how often each row of each sparse field's table is read in ``columns``.

        ``columns`` is a batch dict (for example ``splits.train.columns``). A candidate
        field's table counts its own ids plus the valid behaviours of the sequences that
        share it; padding positions are not counted. The result maps dotted parameter
        names to counts, ready for ``MiniBatchAwareL2(strength, frequencies)``.
        """
        self.schema.validate_batch(columns, argument="columns")
        lengths = np.asarray(columns[self.length_key])
        table_names = self.embedding_table_names()
        frequencies = {}
        for f in self.fields:
            if f.kind != SPARSE:
                continue
            ids = [np.asarray(columns[f.name]).reshape(-1)]
            for seq in self.sequences:
                if seq.vocab_of == f.name:
                    T = columns[seq.name].shape[1]
                    valid = np.arange(T)[None, :] < lengths[:, None]
                    ids.append(np.asarray(columns[seq.name])[valid])
            counts = np.bincount(np.concatenate(ids), minlength=f.vocab_size)
            frequencies[table_names[f.name]] = counts.astype(np.int64)
        return frequencies


class DIN(DINBase):
    """Deep Interest Network: the behaviours pooled by attention to the candidate.

    Math, with the query ``q`` the concatenated embeddings of the candidate fields (in the
    order of the sequence fields that share their tables) and ``k_t`` the concatenated
    behaviour embeddings in the same order::

        w_t    = a(q, k_t) = MLP_a([q, k_t, q - k_t, q * k_t])     (B, T)
        pooled = sum_{t < length} w_t k_t                           (B, S K)
        logit  = MLP([e_1, ..., e_F, pooled])                       (B,)

    The activation unit ``a`` is :class:`~minirec.nn.din_attention.DINAttention`; padded
    positions weigh exactly 0 and send no gradient, and an empty history pools to zeros.
    After a forward pass, :meth:`attention_weights` returns ``w`` (B, T).

    Parameters
    ----------
    schema, embedding_dim, hidden, activation, dropout, init_std, random_state, dtype
        As in :class:`DINBase`.
    attention_hidden : sequence of int
        Hidden widths of the activation unit (36 in the paper's figure).
    attention_activation : str, optional
        Activation of the activation unit; by default the same as ``activation``.
    attention_normalize : bool
        False (the paper): the unit's outputs are the weights. True (the authors' released
        code): a softmax over the valid positions.

    Notes
    -----
    The paper drops the softmax, so that the sum of the weights keeps how strongly the user
    is interested in the candidate. The authors' released code (``din/model.py`` in
    github.com/zhougr1993/DeepInterestNetwork) normalises with a masked softmax. The default
    follows the paper. The paper's figure puts PReLU or Dice in the activation unit, while
    that code uses sigmoid there. The default takes the MLP's activation, as in the figure.

    Reference: G. Zhou et al., "Deep Interest Network for Click-Through Rate Prediction",
    KDD 2018.
    """

    name = "din"

    def __init__(self, schema: Schema, *, embedding_dim=8, hidden=(200, 80), activation="dice",
                 attention_hidden=(36,), attention_activation=None, attention_normalize=False,
                 dropout=0.0, init_std=0.01, random_state=None, dtype=np.float64):
        if attention_activation is None:
            attention_activation = activation
        attention_hidden = check_hidden(attention_hidden, "attention_hidden")
        if not isinstance(attention_normalize, (bool, np.bool_)):
            raise TypeError(
                f"attention_normalize must be True or False, got {attention_normalize!r}"
            )
        self._attention_settings = (attention_hidden, attention_activation,
                                    bool(attention_normalize))
        super().__init__(schema, embedding_dim=embedding_dim, hidden=hidden,
                         activation=activation, dropout=dropout, init_std=init_std,
                         random_state=random_state, dtype=dtype,
                         attention_hidden=attention_hidden,
                         attention_activation=attention_activation,
                         attention_normalize=bool(attention_normalize))

    def _build_pooling(self, key_dim: int, rng) -> None:
        hidden, activation, normalize = self._attention_settings
        self.attention = DINAttention(key_dim, hidden, activation=activation,
                                      normalize=normalize, random_state=rng, dtype=self.dtype)

    def _pool(self, query, keys, lengths, valid):
        return self.attention.forward(query, keys, lengths)            # (B, S K)

    def _pool_backward(self, d_pooled, lengths, flat_index):
        return self.attention.backward_rows(d_pooled)                  # (B, S K), (N, S K)

    def attention_weights(self) -> np.ndarray:
        """Return the attention weights ``w`` (B, T) of the last forward pass."""
        if self.attention.weights is None:
            raise ValueError("attention_weights() needs a forward pass first")
        return self.attention.weights.copy()
