"""Deep Crossing: embeddings stacked with dense values, residual units, a scoring layer."""

from __future__ import annotations

import numpy as np

from ..data.schema import Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.embedding import FieldEmbedding
from ..nn.linear import Linear
from ..nn.residual import ResidualUnit
from .base import Model
from .fm import check_field_schema, check_hidden


class DeepCrossing(Model):
    """Embedding, stacking, residual units and a scoring layer.

    Math, for categorical field embeddings ``e_1 .. e_C`` and dense values ``x_1 .. x_D``::

        s     = concat(e_1, ..., e_C, x_1, ..., x_D)          stacking     (B, C K + D)
        s    <- ReLU(s + W1 ReLU(W0 s + b0) + b1)             per residual unit
        logit = s . w + b                                     scoring layer (B,)

    Input: a batch dict of the schema's fields. Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        Sparse, multi and dense fields. Sparse and multi fields are embedded; dense values
        are stacked as they are.
    embedding_dim : int
        K, the size of every categorical field's embedding.
    residual_hidden : sequence of int
        One residual unit per entry, with that inner width; at least one.
    init_std : float
        Standard deviation of the normal initial embeddings.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Notes
    -----
    The paper's embedding layer is ``max(0, W x + b)`` per feature. For a one-hot ``x``
    that is a lookup of a row forced to be non-negative. Here the lookup is plain, because
    the first residual unit can apply any such transform itself. As in the paper, features
    of low dimension (here the dense values) are stacked without an embedding.

    Reference: Y. Shan, T. R. Hoens, J. Jiao, H. Wang, D. Yu and J. C. Mao, "Deep Crossing:
    Web-Scale Modeling without Manually Crafted Combinatorial Features", KDD 2016.
    """

    name = "deep-crossing"

    def __init__(self, schema: Schema, *, embedding_dim=8, residual_hidden=(64, 64),
                 init_std=0.01, random_state=None, dtype=np.float64):
        check_field_schema(schema, "DeepCrossing")
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        residual_hidden = check_hidden(residual_hidden, "residual_hidden")
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim,
                         residual_hidden=residual_hidden, init_std=init_std)
        rng = check_random_state(random_state)
        self.embedding_dim = embedding_dim
        self.categorical_fields = schema.categorical_fields
        self.dense_fields = schema.dense_fields

        if self.categorical_fields:
            self.embedding = FieldEmbedding(self.categorical_fields, embedding_dim,
                                            init_std=init_std, random_state=rng,
                                            dtype=self.dtype)
        else:
            self.embedding = None
        width = len(self.categorical_fields) * embedding_dim + len(self.dense_fields)
        self.stack_width = width
        self.residual_units = [ResidualUnit(width, hidden, random_state=rng, dtype=self.dtype)
                               for hidden in residual_hidden]
        self.scoring = Linear(width, 1, random_state=rng, dtype=self.dtype)

    def _forward(self, batch) -> np.ndarray:
        B = np.shape(batch[self.schema.fields[0].name])[0]
        C, K = len(self.categorical_fields), self.embedding_dim

        # 1. embedding of the categorical fields
        parts = []
        if self.embedding is not None:
            E = self.embedding.forward(batch)                             # (B, C, K)
            parts.append(E.reshape(B, C * K))                             # (B, C K)

        # 2. stacking with the dense values
        for field in self.dense_fields:
            parts.append(batch[field.name].astype(self.dtype)[:, None])   # (B, 1)
        s = np.concatenate(parts, axis=1)                                 # (B, C K + D)

        # 3. residual units
        for unit in self.residual_units:
            s = unit.forward(s)                                           # (B, C K + D)

        # 4. scoring layer
        return self.scoring.forward(s)[:, 0]                              # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                   # (B,)
        B = dlogits.shape[0]
        C, K = len(self.categorical_fields), self.embedding_dim

        # 4. scoring layer
        d_s = self.scoring.backward(dlogits[:, None])                     # (B, C K + D)

        # 3. residual units, last first
        for unit in reversed(self.residual_units):
            d_s = unit.backward(d_s)                                      # (B, C K + D)

        # 2. stacking: dense values take their own columns
        input_grads = {field.name: d_s[:, C * K + index]                  # (B,)
                       for index, field in enumerate(self.dense_fields)}

        # 1. embedding
        if self.embedding is not None:
            self.embedding.backward(d_s[:, :C * K].reshape(B, C, K))
        return input_grads
