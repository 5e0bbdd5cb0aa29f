"""AFM: a factorization machine whose pairwise interactions are weighted by attention."""

from __future__ import annotations

import numpy as np

from ..data.schema import Schema
from ..nn.afm_attention import AFMAttention
from ..nn.base import check_random_state
from ..nn.embedding import FieldEmbedding
from ..nn.pairwise import PairwiseProducts
from .base import Model
from .fm import check_dropout, check_field_schema


class AFM(Model):
    """Attentional factorization machine: bias, first-order term and attended pair products.

    Math, for field embeddings ``v_1 .. v_F`` and first-order weights ``w_1 .. w_F`` (a
    sparse field reads its rows, a dense field scales its vector by its value)::

        u_ij   = v_i * v_j                                for every pair i < j   (B, P, K)
        a_ij   = softmax_ij( h . ReLU(u_ij W + b) )                              (B, P)
        logit  = bias + sum_f w_f + p . sum_ij a_ij u_ij                         (B,)

    Input: a batch dict of the schema's sparse, multi and dense fields. Output: logits (B,).
    After a forward pass, :meth:`attention_weights` returns ``a`` (B, P), and
    ``pair_names[p]`` names pair ``p`` as ``"fieldA x fieldB"``, in the lexicographic
    order of :class:`~minirec.nn.pairwise.PairwiseProducts`.

    Parameters
    ----------
    schema : Schema
        Sparse, multi and dense fields only; a behaviour sequence has no place in AFM.
    embedding_dim : int
        K, the size of every field embedding.
    attention_dim : int
        A, the hidden width of the attention network ("attention factor" in the paper).
    dropout : float
        Dropout on the attention-weighted pair vectors, applied in training mode only.
    init_std : float
        Standard deviation of the normal initial embeddings; the first-order weights and
        the bias start at 0.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Notes
    -----
    The paper writes the first-order and pairwise terms over one-hot features ``x_i``; for
    one-hot fields ``x_i = 1`` and the sums run over the fields, as here. A multi-valued
    field enters as the pooled vector of its ids (see
    :class:`~minirec.nn.embedding.FieldEmbedding`), so products between ids of the same
    field are left out.

    Reference: J. Xiao, H. Ye, X. He, H. Zhang, F. Wu and T.-S. Chua, "Attentional
    Factorization Machines: Learning the Weight of Feature Interactions via Attention
    Networks", IJCAI 2017.
    """

    name = "afm"

    def __init__(self, schema: Schema, *, embedding_dim=8, attention_dim=8, dropout=0.0,
                 init_std=0.01, random_state=None, dtype=np.float64):
        self.fields = check_field_schema(schema, "AFM")
        dropout = check_dropout(dropout)
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim,
                         attention_dim=attention_dim, dropout=dropout, init_std=init_std)
        rng = check_random_state(random_state)
        F = len(self.fields)

        self.embedding = FieldEmbedding(self.fields, embedding_dim, init_std=init_std,
                                        random_state=rng, dtype=self.dtype)
        self.first_order = FieldEmbedding(self.fields, 1, init_std=0.0, random_state=rng,
                                          dtype=self.dtype)
        self.add_param("bias", np.zeros(1, dtype=self.dtype))
        self.pairwise = PairwiseProducts(num_fields=F)
        self.attention = AFMAttention(embedding_dim, attention_dim, dropout=dropout,
                                      random_state=rng, dtype=self.dtype)
        names = [f.name for f in self.fields]
        self.pair_names = [f"{names[i]} x {names[j]}" for i, j in self.pairwise.pairs]

    def _forward(self, batch) -> np.ndarray:
        # 1. field embeddings and first-order weights
        E = self.embedding.forward(batch)                              # (B, F, K)
        first_order = self.first_order.forward(batch).sum(axis=(1, 2))  # (B,)

        # 2. element-wise product of every field pair
        products = self.pairwise.forward(E)                            # (B, P, K)

        # 3. attention-weighted sum of the pairs, projected by p
        interaction = self.attention.forward(products)                 # (B,)

        # 4. the logit
        return self.params["bias"][0] + first_order + interaction     # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                # (B,)
        B = dlogits.shape[0]
        F = len(self.fields)

        # 4. the logit
        self.grads["bias"] += dlogits.sum(keepdims=True)               # (1,)

        # 3. attention
        d_products = self.attention.backward(dlogits)                  # (B, P, K)

        # 2. pair products
        d_E = self.pairwise.backward(d_products)                       # (B, F, K)

        # 1. embeddings; a dense field's value receives a gradient from both uses
        input_grads = self.embedding.backward(d_E)
        d_first_order = np.broadcast_to(dlogits[:, None, None], (B, F, 1))
        for name, grad in self.first_order.backward(d_first_order).items():
            input_grads[name] = input_grads[name] + grad if name in input_grads else grad
        return input_grads

    def attention_weights(self) -> np.ndarray:
        """Return the attention weights ``a`` (B, P) of the last forward pass."""
        if self.attention.weights is None:
            raise ValueError("attention_weights() needs a forward pass first")
        return self.attention.weights.copy()
