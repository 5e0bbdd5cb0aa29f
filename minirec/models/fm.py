"""FM: the factorization machine over the fields of a schema."""

from __future__ import annotations

import numpy as np

from ..data.schema import Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.embedding import FieldEmbedding
from ..nn.fm import FMInteraction
from .base import Model


def check_field_schema(schema: Schema, model_name: str) -> list:
    """Return the schema's fields, raising ValueError if it has none or contains a sequence.

    The factorization-machine family reads sparse, multi and dense fields only; a
    behaviour sequence belongs to DIN.
    """
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a minirec Schema, got {type(schema).__name__}")
    if schema.sequence_fields:
        raise ValueError(
            f"{model_name} takes sparse, multi and dense fields; the schema has sequence "
            f"field(s) {[f.name for f in schema.sequence_fields]}. Select the other fields "
            "first, for example with TaskSplits.select"
        )
    if len(schema) == 0:
        raise ValueError(f"{model_name} needs a schema with at least one field, got none")
    return list(schema.fields)


def check_hidden(hidden, argument: str = "hidden", *, allow_empty: bool = False) -> list[int]:
    """Return the hidden layer widths as a list of ints, raising ValueError if invalid."""
    if isinstance(hidden, (int, np.integer)) or hidden is None or isinstance(hidden, str):
        raise ValueError(f"{argument} must be a list of layer widths, got {hidden!r}")
    widths = list(hidden)
    if not widths and not allow_empty:
        raise ValueError(f"{argument} must list at least one layer width, got {hidden!r}")
    return [check_positive_int(f"{argument}[{index}]", width) for index, width in enumerate(widths)]


def check_dropout(dropout) -> float:
    """Return ``dropout`` as a float, raising ValueError unless it lies in [0, 1)."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)) \
            or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    return float(dropout)


def add_input_grads(total: dict, more: dict) -> dict:
    """Add the input gradients in ``more`` into ``total`` (both dicts of field name -> array)."""
    for name, grad in more.items():
        total[name] = total[name] + grad if name in total else grad
    return total


class FM(Model):
    """Factorization machine: bias, first-order weights and factorized pairwise terms.

    Math, for F fields with first-order weights ``w_f`` and latent vectors ``v_f``::

        logit = w0 + sum_f w_f + sum_{i<j} <v_i, v_j>
              = w0 + sum_f w_f + 0.5 * sum_k [ (sum_f v_fk)^2 - sum_f v_fk^2 ]

    A sparse field reads the rows of its id and a multi field pools the rows of its ids.
    A dense field scales its own weight and vector by its value ``x_f``.

    Input: a batch dict of the schema's fields. Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        Sparse, multi and dense fields.
    embedding_dim : int
        K, the size of each latent vector.
    init_std : float
        Standard deviation of the normal initial latent vectors; ``w0`` and the first-order
        weights start at 0.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Attributes
    ----------
    first_order : FieldEmbedding
        The weights ``w`` as one-wide vectors, one table with per-field offsets.
    embedding : FieldEmbedding
        The latent vectors ``v``, one table with per-field offsets.
    pair_names : list of str
        ``"fieldA x fieldB"`` for each pair ``i < j`` in lexicographic order, the columns of
        :meth:`pair_interactions`.

    Notes
    -----
    The paper writes the model over a feature vector ``x``; for one-hot fields ``x_i = 1``
    on one entry per field, so the sums run over fields as above. A multi field enters as
    the pooled vector of its ids, which leaves out the products between two ids of the same
    field (the paper's model over the indicator vector would include them).

    Reference: S. Rendle, "Factorization Machines", ICDM 2010.
    """

    name = "fm"

    def __init__(self, schema: Schema, *, embedding_dim=8, init_std=0.01, random_state=None,
                 dtype=np.float64):
        fields = check_field_schema(schema, "FM")
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim, init_std=init_std)
        rng = check_random_state(random_state)
        self.fields = fields
        self.embedding_dim = embedding_dim

        self.add_param("w0", np.zeros(1, dtype=self.dtype))
        self.first_order = FieldEmbedding(fields, 1, init_std=0.0, random_state=rng,
                                          dtype=self.dtype)
        self.embedding = FieldEmbedding(fields, embedding_dim, init_std=init_std,
                                        random_state=rng, dtype=self.dtype)
        self.interaction = FMInteraction()
        names = [f.name for f in fields]
        self.pair_names = [f"{names[i]} x {names[j]}"
                           for i in range(len(names)) for j in range(i + 1, len(names))]

    def _forward(self, batch) -> np.ndarray:
        # 1. first-order term sum_f w_f
        first_order = self.first_order.forward(batch).sum(axis=(1, 2))   # (B,)

        # 2. latent vectors
        E = self.embedding.forward(batch)                                 # (B, F, K)

        # 3. pairwise term sum_{i<j} <v_i, v_j>
        pairwise = self.interaction.forward(E)                            # (B,)

        # 4. the logit
        return self.params["w0"][0] + first_order + pairwise             # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                   # (B,)
        B, F = dlogits.shape[0], len(self.fields)

        # 4. the logit
        self.grads["w0"] += dlogits.sum(keepdims=True)                    # (1,)

        # 3. pairwise term
        d_E = self.interaction.backward(dlogits)                          # (B, F, K)

        # 2. latent vectors; a dense field's value gets a gradient from both of its uses
        input_grads = self.embedding.backward(d_E)

        # 1. first-order term: every w_f receives dlogit
        d_first_order = np.broadcast_to(dlogits[:, None, None], (B, F, 1))
        return add_input_grads(input_grads, self.first_order.backward(d_first_order))

    def pair_interactions(self, batch) -> np.ndarray:
        """Return ``<v_i, v_j>`` for every field pair and row, shape (B, P).

        Column ``p`` is the pair ``pair_names[p]``; the row sums are the pairwise term of the
        logit. This runs the embedding layer's forward pass, so it replaces what a pending
        ``backward`` would read: call it after ``backward``, not between.
        """
        self.schema.validate_batch(batch)
        E = self.embedding.forward(batch)                                 # (B, F, K)
        rows, cols = np.triu_indices(len(self.fields), k=1)               # (P,), (P,)
        return np.einsum("bpk,bpk->bp", E[:, rows, :], E[:, cols, :])    # (B, P)
