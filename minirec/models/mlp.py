"""MLPModel: field embeddings concatenated and fed to an MLP, the "MLP alone" baseline."""

from __future__ import annotations

import numpy as np

from ..data.schema import Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.embedding import FieldEmbedding
from ..nn.mlp import MLP
from .base import Model
from .fm import check_dropout, check_field_schema, check_hidden


class MLPModel(Model):
    """Embedding per field, concatenated, then hidden layers and one output unit.

    Math::

        logit = MLP(concat(e_1, ..., e_F))

    This is DeepFM's deep part on its own, so comparing the two shows what the FM part
    adds: the MLP has no explicit first-order or pairwise term and must learn both.

    Input: a batch dict of the schema's fields. Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        Sparse, multi and dense fields (a dense field's embedding is its value times its
        vector).
    embedding_dim : int
        K, the size of every field embedding.
    hidden : sequence of int
        Widths of the hidden layers, at least one.
    activation : str
        Hidden activation.
    dropout : float
        Dropout after each hidden activation, in training mode only.
    init_std : float
        Standard deviation of the normal initial embeddings.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64
    """

    name = "mlp"

    def __init__(self, schema: Schema, *, embedding_dim=8, hidden=(64, 32), activation="relu",
                 dropout=0.0, init_std=0.01, random_state=None, dtype=np.float64):
        fields = check_field_schema(schema, "MLPModel")
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        hidden = check_hidden(hidden)
        dropout = check_dropout(dropout)
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim, hidden=hidden,
                         activation=activation, dropout=dropout, init_std=init_std)
        rng = check_random_state(random_state)
        self.fields = fields
        self.embedding_dim = embedding_dim

        self.embedding = FieldEmbedding(fields, embedding_dim, init_std=init_std,
                                        random_state=rng, dtype=self.dtype)
        self.mlp = MLP(len(fields) * embedding_dim, hidden, activation=activation,
                       dropout=dropout, out_features=1, random_state=rng, dtype=self.dtype)

    def _forward(self, batch) -> np.ndarray:
        # 1. field embeddings
        E = self.embedding.forward(batch)                                 # (B, F, K)
        B, F, K = E.shape

        # 2. concatenate, then the MLP
        return self.mlp.forward(E.reshape(B, F * K))[:, 0]                # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                   # (B,)
        B, F, K = dlogits.shape[0], len(self.fields), self.embedding_dim

        # 2. the MLP, then back to the fields
        d_E = self.mlp.backward(dlogits[:, None]).reshape(B, F, K)        # (B, F, K)

        # 1. field embeddings
        return self.embedding.backward(d_E)
