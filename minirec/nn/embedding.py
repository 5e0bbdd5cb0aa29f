"""Embedding tables: single lookups, pooled id lists and one vector per schema field.

A table is a matrix ``weight`` of shape ``(N, K)``; looking up id ``i`` reads row ``i``.
Its gradient is a :class:`~minirec.nn.base.SparseGrad` containing only the rows used in the
batch, and an id repeated in a batch (or read by two lookups) receives the sum of its
gradients.

Id conventions follow :mod:`minirec.data.schema`: id 0 is padding and id 1 is the unknown
value. Only :class:`EmbeddingBag` treats id 0 specially (a padded position adds nothing and
receives no gradient); a single-valued lookup reads row 0 like any other row.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..data.schema import DENSE, MULTI, SPARSE, Field, ids_in_range
from .base import Module, check_dtype, check_positive_int, check_random_state

POOLING_MODES = ("sum", "mean")


def check_ids(ids, num_ids: int, owner: str) -> np.ndarray:
    """Return ``ids`` as an int64 array, raising unless every id lies in ``[0, num_ids)``.

    ``owner`` names the ids in the message (``"field 'genre'"``). Negative ids are rejected
    instead of wrapping around to the last rows, as NumPy indexing would do.
    """
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids of {owner} must be an integer array, got dtype {ids.dtype}")
    if not ids_in_range(ids, num_ids):
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= num_ids:
            bad = low if low < 0 else high
            raise ValueError(
                f"{owner} contains id {bad}, which is out of range: valid ids are "
                f"0 to {num_ids - 1} ({num_ids} rows)"
            )
    return ids.astype(np.int64, copy=False)


class Embedding(Module):
    """Lookup table: ``E[i] = weight[i]`` for every id ``i``.

    Input: integer ids of any shape ``S``. Output: ``S + (K,)``.

    Parameters
    ----------
    num_embeddings : int
        Number of rows ``N``; valid ids are ``0 .. N - 1``.
    embedding_dim : int
        Vector size ``K``.
    init_std : float
        Standard deviation of the normal initial values (mean 0).
    name : str, optional
        Named in error messages, for example the field the table serves.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    ``forward``/``backward`` serve a table read once per batch. A table read several times
    in one forward pass (DIN reads the item table for the candidate and for the history)
    uses the stateless pair :meth:`lookup` and :meth:`add_grad` instead, once per read.
    """

    def __init__(self, num_embeddings, embedding_dim, *, init_std=0.01, name=None,
                 random_state=None, dtype=np.float64):
        super().__init__()
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        if not isinstance(init_std, (int, float, np.floating)) or not init_std >= 0:
            raise ValueError(f"init_std must be a non-negative number, got {init_std!r}")
        self.dtype = check_dtype(dtype)
        self.name = name
        rng = check_random_state(random_state)
        weight = rng.normal(0.0, init_std, size=(self.num_embeddings, self.embedding_dim))
        self.add_param("weight", weight.astype(self.dtype), sparse=True)
        self._ids = None

    @property
    def owner(self) -> str:
        """Phrase naming this table in error messages."""
        return f"Embedding {self.name!r}" if self.name else "Embedding"

    def lookup(self, ids) -> np.ndarray:
        """Check ``ids`` against the table size and return their rows, shape ``ids.shape + (K,)``."""
        ids = check_ids(ids, self.num_embeddings, self.owner)
        # np.take copies whole rows and is several times faster than weight[ids] here.
        return np.take(self.params["weight"], ids, axis=0)        # (*S, K)

    def add_grad(self, ids, dout) -> None:
        """Add ``dout`` (``ids.shape + (K,)``) into the gradient of the rows ``ids``."""
        ids = np.asarray(ids)
        K = self.embedding_dim
        if np.shape(dout) != ids.shape + (K,):
            raise ValueError(
                f"{self.owner}: gradient of shape {np.shape(dout)} does not match ids of shape "
                f"{ids.shape}; expected {ids.shape + (K,)}"
            )
        self.grads["weight"].add(ids.reshape(-1), np.reshape(dout, (-1, K)))

    def forward(self, ids) -> np.ndarray:
        vectors = self.lookup(ids)                                 # (*S, K)
        self._ids = np.asarray(ids)
        return vectors

    def backward(self, dout) -> None:
        """Add the sparse gradient of the rows read by the last forward; no input gradient."""
        self.add_grad(self._ids, dout)
        return None


class EmbeddingBag(Module):
    """Pool the vectors of a padded id list per row, skipping padding id 0.

    With mask ``m[b, l] = (ids[b, l] != 0)``, optional real weights ``w`` (1 when absent)
    and ``n[b] = sum_l m[b, l]`` (the number of real ids in row b)::

        sum:   out[b] = sum_l m[b, l] w[b, l] E[offset + ids[b, l]]
        mean:  out[b] = sum_l m[b, l] w[b, l] E[offset + ids[b, l]] / max(n[b], 1)

    A row with no real id (an empty list) gives the zero vector in both modes.

    Input: ids ``(B, L)`` of this field, weights ``(B, L)`` or None. Output: ``(B, K)``.

    Parameters
    ----------
    table : Embedding
        The table read; it is a child module, so its weight is a parameter of this bag.
    mode : ``"sum"`` or ``"mean"``
    offset : int
        Row of the table where this field's id 0 sits. Padding is detected from the field's
        own ids, before the offset is added.
    num_ids : int, optional
        Number of ids of the field (default: the table rows from ``offset`` on).
    name : str, optional
        Named in error messages (default: the table's name).

    Notes
    -----
    In ``mean`` mode the weights scale each vector but do not enter the denominator, which
    counts the real ids. PyTorch's ``EmbeddingBag`` accepts per-id weights only in ``sum``
    mode; here both modes accept them, so the caller chooses what a weight means.
    """

    def __init__(self, table: Embedding, *, mode="sum", offset=0, num_ids=None, name=None):
        super().__init__()
        if not isinstance(table, Embedding):
            raise TypeError(f"table must be an Embedding, got {type(table).__name__}")
        if mode not in POOLING_MODES:
            raise ValueError(f"mode must be one of {', '.join(POOLING_MODES)}, got {mode!r}")
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not (
                0 <= offset < table.num_embeddings):
            raise ValueError(
                f"offset must be an integer in 0 to {table.num_embeddings - 1}, got {offset!r}"
            )
        rows_left = table.num_embeddings - int(offset)
        num_ids = rows_left if num_ids is None else check_positive_int("num_ids", num_ids)
        if num_ids > rows_left:
            raise ValueError(
                f"num_ids={num_ids} with offset={offset} needs {offset + num_ids} table rows, "
                f"but the table has {table.num_embeddings}"
            )
        self.table = table
        self.mode = mode
        self.offset = int(offset)
        self.num_ids = num_ids
        self.name = name if name is not None else table.name
        self._cache = None

    @property
    def owner(self) -> str:
        """Phrase naming this bag in error messages."""
        return f"field {self.name!r}" if self.name else "EmbeddingBag"

    def forward(self, ids, weights=None) -> np.ndarray:
        ids = check_ids(ids, self.num_ids, self.owner)
        if ids.ndim != 2:
            raise ValueError(f"ids of {self.owner} must have shape (B, L), got {ids.shape}")
        B, L = ids.shape
        dtype = self.table.dtype
        if weights is not None:
            weights = np.asarray(weights)
            if weights.shape != ids.shape:
                raise ValueError(
                    f"weights of {self.owner} must have the shape of its ids {ids.shape}, "
                    f"got {weights.shape}"
                )
            weights = weights.astype(dtype, copy=False)

        # 1. mask of real ids and the per-position scale m * w / denominator
        mask = ids != 0                                            # (B, L)
        count = mask.sum(axis=1)                                   # (B,)
        scale = mask.astype(dtype)                                 # (B, L)
        if weights is not None:
            scale = scale * weights
        if self.mode == "mean":
            denominator = np.maximum(count, 1).astype(dtype)      # (B,)
            scale = scale / denominator[:, None]
        else:
            denominator = None

        # 2. gather and pool; padded positions read a real row but get scale 0
        vectors = np.take(self.table.params["weight"], ids + self.offset, axis=0)  # (B, L, K)
        pooled = np.einsum("bl,blk->bk", scale, vectors)           # (B, K)

        self._cache = (ids, mask, weights, denominator, vectors)
        return pooled.astype(dtype, copy=False)

    def backward(self, dout):
        """Add the table gradient; return the gradient of the weights (``None`` without them)."""
        ids, mask, weights, denominator, vectors = self._cache
        B, L = ids.shape

        # 2. d_vectors[b, l] = scale[b, l] * dout[b], computed for the N real ids only, so
        #    padding id 0 receives no gradient (and no (B, L, K) array is built).
        scale = np.ones_like(ids, dtype=dout.dtype) if weights is None else weights
        if denominator is not None:
            scale = scale / denominator[:, None]                   # (B, L)
        row_of_id = np.nonzero(mask)[0]                            # (N,) the b of each real id
        d_vectors = scale[mask][:, None] * np.take(dout, row_of_id, axis=0)  # (N, K)
        self.table.add_grad(ids[mask] + self.offset, d_vectors)

        # 1. d_weights[b, l] = m[b, l] <dout[b], E[ids[b, l]]> / denominator[b]
        if weights is None:
            return None
        d_weights = np.einsum("bk,blk->bl", dout, vectors)         # (B, L)
        if denominator is not None:
            d_weights = d_weights / denominator[:, None]
        return np.where(mask, d_weights, 0).astype(weights.dtype, copy=False)


class FieldEmbedding(Module):
    """One K-vector per field of a schema, stacked as ``(B, F, K)``.

    - sparse field: ``e = V[offset + id]``;
    - multi field: the padded id list pooled by :class:`EmbeddingBag` (sum or mean), with
      optional per-id real weights;
    - dense field: ``e = x * v_field``, the field's own vector scaled by its value (the
      factorization machine treatment of a real-valued input).

    Input: a batch dict (see :mod:`minirec.data.schema`) holding every field given, and
    optionally ``weights``, a dict from multi field name to real weights ``(B, L)``.
    Output: ``(B, F, K)`` with the fields in the order given.

    Parameters
    ----------
    fields : list of Field
        Sparse, multi and dense fields; sequence fields are read through
        :meth:`table_rows` of the field whose vocabulary they share.
    embedding_dim : int
        Vector size ``K``.
    single_table : bool
        True: one table ``table`` with the fields' rows stacked at per-field offsets (a
        dense field takes one row). False: one :class:`Embedding` per field in ``tables``.
        Both give the same numbers for the same rows.
    pooling : ``"sum"`` or ``"mean"``
        Pooling of multi fields.
    init_std : float
        Standard deviation of the normal initial values.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    ``backward(dout (B, F, K))`` returns a dict from field name to the gradient of that
    field's real-valued input: ``(B,)`` for each dense field and ``(B, L)`` for each multi
    field given weights. It is empty when there are none.
    """

    def __init__(self, fields: Sequence[Field], embedding_dim, *, single_table=True,
                 pooling="sum", init_std=0.01, random_state=None, dtype=np.float64):
        super().__init__()
        fields = list(fields)
        if not fields:
            raise ValueError("fields must list at least one Field, got an empty list")
        for field in fields:
            if not isinstance(field, Field):
                raise TypeError(f"fields must be Field objects, got {type(field).__name__}")
            if field.kind not in (SPARSE, MULTI, DENSE):
                raise ValueError(
                    f"field {field.name!r} has kind {field.kind!r}; FieldEmbedding takes "
                    f"sparse, multi and dense fields (read a sequence through table_rows of "
                    f"the field named by its vocab_of)"
                )
        names = [field.name for field in fields]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"field names must be unique; repeated: {repeated}")
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
        self.fields = tuple(fields)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.dtype = check_dtype(dtype)
        self.single_table = bool(single_table)
        self.pooling = pooling
        rng = check_random_state(random_state)

        # Rows per field: its vocabulary, or one row for a dense field's vector.
        sizes = {f.name: 1 if f.kind == DENSE else int(f.vocab_size) for f in fields}
        self.offsets: dict[str, int] = {}
        if self.single_table:
            starts = np.concatenate([[0], np.cumsum([sizes[name] for name in names])])
            self.offsets = {name: int(start) for name, start in zip(names, starts[:-1])}
            self.table = Embedding(int(starts[-1]), embedding_dim, init_std=init_std,
                                   name="FieldEmbedding.table", random_state=rng, dtype=dtype)
        else:
            self.offsets = {name: 0 for name in names}
            self.tables = {
                name: Embedding(sizes[name], embedding_dim, init_std=init_std, name=name,
                                random_state=rng, dtype=dtype)
                for name in names
            }
        self.bags = {
            f.name: EmbeddingBag(self.table_rows(f.name)[0], mode=pooling,
                                 offset=self.offsets[f.name], num_ids=sizes[f.name],
                                 name=f.name)
            for f in fields if f.kind == MULTI
        }
        self._cache = None

    def table_rows(self, field_name: str) -> tuple[Embedding, int]:
        """Return the table holding ``field_name``'s rows and the row of its id 0."""
        if field_name not in self.offsets:
            raise ValueError(
                f"no field {field_name!r} in this FieldEmbedding; fields are "
                f"{[f.name for f in self.fields]}"
            )
        table = self.table if self.single_table else self.tables[field_name]
        return table, self.offsets[field_name]

    def forward(self, batch: Mapping[str, np.ndarray], weights=None) -> np.ndarray:
        if not isinstance(batch, Mapping):
            raise TypeError(f"batch must be a dict of arrays, got {type(batch).__name__}")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(self.bags))
        if unknown:
            raise ValueError(
                f"weights given for {unknown}; weights apply to multi fields {list(self.bags)}"
            )
        missing = [f.name for f in self.fields if f.name not in batch]
        if missing:
            raise ValueError(f"batch is missing field(s) {missing}")
        first = self.fields[0].name
        B = np.shape(batch[first])[0] if np.ndim(batch[first]) else None

        columns = {}
        cache = []
        # With a single table, the sparse fields are gathered together after the loop, in
        # one np.take of (B, S) rows instead of one call per field.
        shared_fields, shared_rows = [], []
        for f_index, field in enumerate(self.fields):
            value = np.asarray(batch[field.name])
            expected_ndim = 2 if field.kind == MULTI else 1
            if value.ndim != expected_ndim or value.shape[0] != B:
                expected = "(B, L)" if field.kind == MULTI else "(B,)"
                raise ValueError(
                    f"field {field.name!r} must have shape {expected} with B={B}, the batch "
                    f"size of field {first!r}; got shape {value.shape}"
                )
            table, offset = self.table_rows(field.name)

            # 1. one vector per row of this field
            if field.kind == SPARSE:
                ids = check_ids(value, field.vocab_size, f"field {field.name!r}")
                cache.append(ids)
                if self.single_table:
                    shared_fields.append(f_index)
                    shared_rows.append(ids + offset)
                else:
                    columns[f_index] = np.take(table.params["weight"], ids + offset, axis=0)
            elif field.kind == MULTI:
                columns[f_index] = self.bags[field.name].forward(value, weights.get(field.name))
                cache.append(None)
            else:
                if not np.issubdtype(value.dtype, np.floating):
                    raise ValueError(
                        f"dense field {field.name!r} must be a float array, got dtype "
                        f"{value.dtype}"
                    )
                x = value.astype(self.dtype, copy=False)                       # (B,)
                columns[f_index] = x[:, None] * table.params["weight"][offset]  # (B, K)
                cache.append(x)

        # 2. stack the fields
        shared = None
        if shared_fields:
            rows = np.stack(shared_rows, axis=1)                               # (B, S)
            shared = (shared_fields, rows)
            vectors = np.take(self.table.params["weight"], rows, axis=0)      # (B, S, K)
        if len(shared_fields) == len(self.fields):
            E = vectors                                                        # (B, F, K)
        else:
            E = np.empty((B, len(self.fields), self.embedding_dim), dtype=self.dtype)
            if shared_fields:
                E[:, shared_fields] = vectors
            for f_index, vector in columns.items():
                E[:, f_index] = vector                                         # (B, K)
        self._cache = (cache, shared)
        return E

    def backward(self, dout) -> dict:
        cache, shared = self._cache
        input_grads = {}
        if shared is not None:
            # the single table's sparse fields, as one block of (B, S) rows
            shared_fields, rows = shared
            if len(shared_fields) == len(self.fields):
                self.table.add_grad(rows, dout)                                # (B, F, K)
            else:
                self.table.add_grad(rows, dout[:, shared_fields])              # (B, S, K)
        for f_index, (field, saved) in enumerate(zip(self.fields, cache)):
            d_vector = dout[:, f_index, :]                                     # (B, K)
            table, offset = self.table_rows(field.name)
            if field.kind == SPARSE:
                if shared is None:
                    table.add_grad(saved + offset, d_vector)
            elif field.kind == MULTI:
                d_weights = self.bags[field.name].backward(d_vector)
                if d_weights is not None:
                    input_grads[field.name] = d_weights                       # (B, L)
            else:
                x = saved
                # e = x * v: dv = sum_b dout[b] x[b], dx[b] = <dout[b], v>
                table.add_grad(np.full(x.shape, offset), x[:, None] * d_vector)
                input_grads[field.name] = d_vector @ table.params["weight"][offset]  # (B,)
        return input_grads
