"""Wide & Deep: a linear model over ids and cross-product ids beside an MLP over embeddings."""

from __future__ import annotations

import numpy as np

from ..data.schema import SPARSE, Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.embedding import Embedding, FieldEmbedding
from ..nn.mlp import MLP
from .base import Model
from .fm import check_dropout, check_field_schema, check_hidden

# A cross table without hashing has V_a * V_b rows; past this many (80 MB of float64
# weights), cross_buckets must be given.
MAX_CROSS_ROWS = 10_000_000
# Fibonacci hashing: 2^64 divided by the golden ratio, the usual odd multiplier.
HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def cross_ids(ids_a: np.ndarray, ids_b: np.ndarray, vocab_size_b: int,
              buckets: int | None = None) -> np.ndarray:
    """Return one id per row for the pair of ids ``(a, b)``.

    Without ``buckets`` the id is ``a * vocab_size_b + b``: every pair of ids of the two
    fields gets its own id, so the cross vocabulary is the product ``V_a * V_b``. With
    ``buckets`` that product id is hashed into ``0 .. buckets - 1``: multiplied by
    0x9E3779B97F4A7C15 modulo 2^64, the top 32 bits kept, then taken modulo ``buckets``.
    Different pairs may then share a bucket and its weight.
    """
    combined = ids_a.astype(np.int64) * int(vocab_size_b) + ids_b.astype(np.int64)  # (B,)
    if buckets is None:
        return combined
    mixed = (combined.astype(np.uint64) * HASH_MULTIPLIER) >> np.uint64(32)         # (B,)
    return (mixed % np.uint64(buckets)).astype(np.int64)


class WideDeep(Model):
    """Wide part (first-order weights of the ids and of cross-product ids) plus a deep MLP.

    Math, for categorical fields with weights ``w_f``, crosses ``c`` with weights ``u_c``,
    embeddings ``e_f`` and dense values ``x_d``::

        y_wide = sum_f w_f[id_f] + sum_c u_c[cross_id_c]
        y_deep = MLP(concat(e_1, ..., e_C, x_1, ..., x_D))    hidden layers, one output unit
        logit  = y_wide + y_deep

    A cross ``(a, b)`` turns the ids of two sparse fields into one id (see
    :func:`cross_ids`): the product vocabulary ``V_a * V_b`` by default, or ``cross_buckets``
    hashed buckets. Each cross has its own weight table.

    Input: a batch dict of the schema's fields. Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        At least one sparse or multi field; dense fields feed the deep part only.
    embedding_dim : int
        K, the size of every categorical field's embedding.
    hidden : sequence of int
        Widths of the deep part's hidden layers, at least one.
    activation : str
        Hidden activation of the deep part.
    dropout : float
        Dropout after each hidden activation, in training mode only.
    cross_features : sequence of (str, str)
        Pairs of sparse fields whose ids are crossed in the wide part, such as
        ``[("user_id", "movie_id")]``.
    cross_buckets : int, optional
        Hash every cross into this many buckets instead of the product vocabulary.
    init_std : float
        Standard deviation of the normal initial embeddings; wide weights start at 0.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Attributes
    ----------
    cross_names : list of str
        ``"a x b"`` for each cross, in the order of ``cross_tables``.

    Notes
    -----
    The paper trains the wide part with FTRL and L1 regularization and the deep part with
    AdaGrad. Here one optimizer trains both. The paper's crosses are AND-conjunctions of
    binary features. For two one-hot fields that is one indicator per pair of ids, and the
    product id above numbers those indicators.

    Reference: H.-T. Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
    """

    name = "wide-deep"

    def __init__(self, schema: Schema, *, embedding_dim=8, hidden=(64, 32), activation="relu",
                 dropout=0.0, cross_features=(), cross_buckets=None, init_std=0.01,
                 random_state=None, dtype=np.float64):
        check_field_schema(schema, "WideDeep")
        if not schema.categorical_fields:
            raise ValueError(
                "WideDeep needs at least one sparse or multi field for its wide part; the "
                f"schema has only dense fields {[f.name for f in schema]}"
            )
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        hidden = check_hidden(hidden)
        dropout = check_dropout(dropout)
        if cross_buckets is not None:
            cross_buckets = check_positive_int("cross_buckets", cross_buckets)
        crosses = self._check_crosses(schema, cross_features, cross_buckets)
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim, hidden=hidden,
                         activation=activation, dropout=dropout,
                         cross_features=[list(pair) for pair in crosses],
                         cross_buckets=cross_buckets, init_std=init_std)
        rng = check_random_state(random_state)
        self.embedding_dim = embedding_dim
        self.categorical_fields = schema.categorical_fields
        self.dense_fields = schema.dense_fields
        self.crosses = crosses
        self.cross_buckets = cross_buckets

        # wide part
        self.wide = FieldEmbedding(self.categorical_fields, 1, init_std=0.0, random_state=rng,
                                   dtype=self.dtype)
        self.cross_names = [f"{a} x {b}" for a, b in crosses]
        self.cross_tables = [
            Embedding(self._cross_rows(schema, a, b), 1, init_std=0.0, name=f"{a} x {b}",
                      random_state=rng, dtype=self.dtype)
            for a, b in crosses
        ]

        # deep part
        self.embedding = FieldEmbedding(self.categorical_fields, embedding_dim,
                                        init_std=init_std, random_state=rng, dtype=self.dtype)
        width = len(self.categorical_fields) * embedding_dim + len(self.dense_fields)
        self.deep = MLP(width, hidden, activation=activation, dropout=dropout, out_features=1,
                        random_state=rng, dtype=self.dtype)

    @staticmethod
    def _check_crosses(schema: Schema, cross_features, cross_buckets) -> list[tuple[str, str]]:
        if isinstance(cross_features, (str, bytes)) or cross_features is None:
            raise ValueError(f"cross_features must be a list of (field, field) pairs, "
                             f"got {cross_features!r}")
        sparse_names = [f.name for f in schema.sparse_fields]
        crosses = []
        for pair in cross_features:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise ValueError(f"cross_features entry {pair!r} must be a pair of field names")
            a, b = pair
            for name in (a, b):
                if name not in sparse_names:
                    raise ValueError(
                        f"cross_features entry {tuple(pair)!r} names {name!r}, which is not a "
                        f"sparse field; crosses take sparse fields {sparse_names}"
                    )
            if a == b:
                raise ValueError(f"cross_features entry {tuple(pair)!r} crosses a field with "
                                 "itself; name two different fields")
            if (a, b) in crosses or (b, a) in crosses:
                raise ValueError(f"cross_features repeats the pair {tuple(pair)!r}")
            if cross_buckets is None:
                rows = schema[a].vocab_size * schema[b].vocab_size
                if rows > MAX_CROSS_ROWS:
                    raise ValueError(
                        f"cross_features entry {tuple(pair)!r} needs {rows} rows "
                        f"({schema[a].vocab_size} x {schema[b].vocab_size}), more than "
                        f"{MAX_CROSS_ROWS}; set cross_buckets to hash it into fewer rows"
                    )
            crosses.append((a, b))
        return crosses

    def _cross_rows(self, schema: Schema, a: str, b: str) -> int:
        if self.cross_buckets is not None:
            return self.cross_buckets
        return schema[a].vocab_size * schema[b].vocab_size

    def _forward(self, batch) -> np.ndarray:
        B = np.shape(batch[self.schema.fields[0].name])[0]
        C, K = len(self.categorical_fields), self.embedding_dim

        # 1. wide part: first-order weights of the ids and of the cross ids
        y_wide = self.wide.forward(batch).sum(axis=(1, 2))               # (B,)
        for (a, b), table in zip(self.crosses, self.cross_tables):
            ids = cross_ids(batch[a], batch[b], self.schema[b].vocab_size, self.cross_buckets)
            y_wide = y_wide + table.forward(ids)[:, 0]                    # (B,)

        # 2. deep part: embeddings stacked with the dense values, then the MLP
        E = self.embedding.forward(batch)                                 # (B, C, K)
        parts = [E.reshape(B, C * K)]                                     # (B, C K)
        for field in self.dense_fields:
            parts.append(batch[field.name].astype(self.dtype)[:, None])   # (B, 1)
        y_deep = self.deep.forward(np.concatenate(parts, axis=1))[:, 0]  # (B,)

        # 3. the logit
        return y_wide + y_deep                                            # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                   # (B,)
        B = dlogits.shape[0]
        C, K = len(self.categorical_fields), self.embedding_dim

        # 2. deep part
        d_deep_input = self.deep.backward(dlogits[:, None])               # (B, C K + D)
        input_grads = {field.name: d_deep_input[:, C * K + index]         # (B,)
                       for index, field in enumerate(self.dense_fields)}
        self.embedding.backward(d_deep_input[:, :C * K].reshape(B, C, K))

        # 1. wide part: every weight used in a row receives that row's dlogit
        for table in self.cross_tables:
            table.backward(dlogits[:, None])                              # (B, 1)
        self.wide.backward(np.broadcast_to(dlogits[:, None, None], (B, C, 1)))
        return input_grads
