"""NFM: bi-interaction pooling of the field embeddings followed by an MLP."""

from __future__ import annotations

import numpy as np

from ..data.schema import Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.dropout import Dropout
from ..nn.embedding import FieldEmbedding
from ..nn.linear import Linear
from ..nn.mlp import MLP
from ..nn.pairwise import BiInteraction
from .base import Model
from .fm import add_input_grads, check_dropout, check_field_schema, check_hidden


class NFM(Model):
    """Neural factorization machine: bias, first-order weights and an MLP over f_BI.

    Math, for field embeddings ``e_1 .. e_F`` and first-order weights ``w_f``::

        f_BI  = sum_{i<j} e_i * e_j = 0.5 * [ (sum_f e_f)^2 - sum_f e_f^2 ]     (B, K)
        z     = MLP(Dropout(f_BI))               hidden layers (none allowed)  (B, H)
        logit = w0 + sum_f w_f + h . z                                          (B,)

    With no hidden layer and ``h`` all ones this is exactly a factorization machine, the
    paper's NFM-0.

    Input: a batch dict of the schema's fields. Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        Sparse, multi and dense fields.
    embedding_dim : int
        K, the size of every field embedding.
    hidden : sequence of int
        Widths of the hidden layers above the bi-interaction; may be empty.
    activation : str
        Hidden activation.
    dropout : float
        Dropout on ``f_BI`` and after each hidden activation, in training mode only.
    init_std : float
        Standard deviation of the normal initial embeddings; ``w0`` and the first-order
        weights start at 0.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Notes
    -----
    The paper also applies batch normalization to ``f_BI`` and the hidden layers; it is left
    out here. The prediction vector ``h`` is a Linear layer without bias, since ``w0``
    already is the global bias.

    Reference: X. He and T.-S. Chua, "Neural Factorization Machines for Sparse Predictive
    Analytics", SIGIR 2017.
    """

    name = "nfm"

    def __init__(self, schema: Schema, *, embedding_dim=8, hidden=(64,), activation="relu",
                 dropout=0.0, init_std=0.01, random_state=None, dtype=np.float64):
        fields = check_field_schema(schema, "NFM")
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        hidden = check_hidden(hidden, allow_empty=True)
        dropout = check_dropout(dropout)
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim, hidden=hidden,
                         activation=activation, dropout=dropout, init_std=init_std)
        rng = check_random_state(random_state)
        self.fields = fields
        self.embedding_dim = embedding_dim

        self.add_param("w0", np.zeros(1, dtype=self.dtype))
        self.first_order = FieldEmbedding(fields, 1, init_std=0.0, random_state=rng,
                                          dtype=self.dtype)
        self.embedding = FieldEmbedding(fields, embedding_dim, init_std=init_std,
                                        random_state=rng, dtype=self.dtype)
        self.bi_interaction = BiInteraction()
        self.bi_dropout = Dropout(dropout, random_state=rng)
        if hidden:
            self.mlp = MLP(embedding_dim, hidden, activation=activation, dropout=dropout,
                           random_state=rng, dtype=self.dtype)
            width = self.mlp.out_features
        else:
            self.mlp = None
            width = embedding_dim
        self.prediction = Linear(width, 1, bias=False, random_state=rng, dtype=self.dtype)

    def _forward(self, batch) -> np.ndarray:
        # 1. field embeddings and first-order weights
        E = self.embedding.forward(batch)                                 # (B, F, K)
        first_order = self.first_order.forward(batch).sum(axis=(1, 2))   # (B,)

        # 2. bi-interaction pooling
        f_bi = self.bi_dropout.forward(self.bi_interaction.forward(E))   # (B, K)

        # 3. hidden layers
        z = self.mlp.forward(f_bi) if self.mlp is not None else f_bi     # (B, H)

        # 4. the logit
        return self.params["w0"][0] + first_order + self.prediction.forward(z)[:, 0]  # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                   # (B,)
        B, F = dlogits.shape[0], len(self.fields)

        # 4. the logit
        self.grads["w0"] += dlogits.sum(keepdims=True)                    # (1,)
        d_z = self.prediction.backward(dlogits[:, None])                  # (B, H)

        # 3. hidden layers
        d_f_bi = self.mlp.backward(d_z) if self.mlp is not None else d_z  # (B, K)

        # 2. bi-interaction pooling
        d_E = self.bi_interaction.backward(self.bi_dropout.backward(d_f_bi))  # (B, F, K)

        # 1. field embeddings and first-order weights
        input_grads = self.embedding.backward(d_E)
        d_first_order = np.broadcast_to(dlogits[:, None, None], (B, F, 1))
        return add_input_grads(input_grads, self.first_order.backward(d_first_order))
