"""DeepFM: a factorization machine and an MLP side by side on one shared embedding."""

from __future__ import annotations

import numpy as np

from ..data.schema import Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.embedding import FieldEmbedding
from ..nn.fm import FMInteraction
from ..nn.mlp import MLP
from .base import Model
from .fm import add_input_grads, check_dropout, check_field_schema, check_hidden


class DeepFM(Model):
    """FM part plus deep part, both reading the same field embeddings.

    Math, for field embeddings ``e_1 .. e_F`` (shared) and first-order weights ``w_f``::

        y_FM  = sum_f w_f + sum_{i<j} <e_i, e_j>
        y_DNN = MLP(concat(e_1, ..., e_F))          hidden layers, then one output unit
        logit = y_FM + y_DNN                        click probability sigmoid(logit)

    Because both parts read the same ``e_f``, the gradient reaching the embedding table is
    the sum of the FM part's gradient ``sum_{i != f} e_i`` (times dlogit) and the deep
    part's gradient.

    Input: a batch dict of the schema's fields. Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        Sparse, multi and dense fields (a dense field's embedding is its value times its
        vector, in both parts).
    embedding_dim : int
        K, the shared embedding size.
    hidden : sequence of int
        Widths of the deep part's hidden layers, at least one.
    activation : str
        Hidden activation of the deep part.
    dropout : float
        Dropout after each hidden activation, in training mode only.
    init_std : float
        Standard deviation of the normal initial embeddings; first-order weights start at 0.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Attributes
    ----------
    embedding : FieldEmbedding
        The shared embedding.
    interaction : FMInteraction
        The FM part's pairwise term.
    deep : MLP
        The deep part, ending in one output unit whose bias is the model's only bias.

    Notes
    -----
    The paper's FM component ``<w, x> + sum <V_i, V_j> x_i x_j`` has no bias of its own;
    the global bias is the deep part's output bias, as here.

    Reference: H. Guo, R. Tang, Y. Ye, Z. Li and X. He, "DeepFM: A Factorization-Machine
    based Neural Network for CTR Prediction", IJCAI 2017.
    """

    name = "deepfm"

    def __init__(self, schema: Schema, *, embedding_dim=8, hidden=(64, 32), activation="relu",
                 dropout=0.0, init_std=0.01, random_state=None, dtype=np.float64):
        fields = check_field_schema(schema, "DeepFM")
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        hidden = check_hidden(hidden)
        dropout = check_dropout(dropout)
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim, hidden=hidden,
                         activation=activation, dropout=dropout, init_std=init_std)
        rng = check_random_state(random_state)
        self.fields = fields
        self.embedding_dim = embedding_dim

        self.first_order = FieldEmbedding(fields, 1, init_std=0.0, random_state=rng,
                                          dtype=self.dtype)
        self.embedding = FieldEmbedding(fields, embedding_dim, init_std=init_std,
                                        random_state=rng, dtype=self.dtype)
        self.interaction = FMInteraction()
        self.deep = MLP(len(fields) * embedding_dim, hidden, activation=activation,
                        dropout=dropout, out_features=1, random_state=rng, dtype=self.dtype)

    def _forward(self, batch) -> np.ndarray:
        # 1. shared embeddings and first-order weights
        E = self.embedding.forward(batch)                                 # (B, F, K)
        B, F, K = E.shape
        first_order = self.first_order.forward(batch).sum(axis=(1, 2))   # (B,)

        # 2. FM part
        y_fm = first_order + self.interaction.forward(E)                  # (B,)

        # 3. deep part
        y_dnn = self.deep.forward(E.reshape(B, F * K))[:, 0]              # (B,)

        # 4. the logit
        return y_fm + y_dnn                                               # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                   # (B,)
        B, F, K = dlogits.shape[0], len(self.fields), self.embedding_dim

        # 4. -> 3. deep part
        d_E_deep = self.deep.backward(dlogits[:, None]).reshape(B, F, K)  # (B, F, K)

        # 2. FM part
        d_E_fm = self.interaction.backward(dlogits)                       # (B, F, K)

        # 1. the shared embedding receives the sum of both parts' gradients
        input_grads = self.embedding.backward(d_E_fm + d_E_deep)
        d_first_order = np.broadcast_to(dlogits[:, None, None], (B, F, 1))
        return add_input_grads(input_grads, self.first_order.backward(d_first_order))
