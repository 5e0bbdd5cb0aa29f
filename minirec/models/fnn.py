"""FNN: a factorization-machine-supported neural network, trained in two stages."""

from __future__ import annotations

import numpy as np

from ..data.schema import DENSE, Schema
from ..nn.base import check_positive_int, check_random_state
from ..nn.embedding import FieldEmbedding
from ..nn.mlp import MLP
from .base import Model
from .fm import FM, check_dropout, check_field_schema, check_hidden


class FNN(Model):
    """MLP over per-field dense vectors ``z_f = [w_f, v_f]`` that can start from a trained FM.

    Math, for F fields, each with its own table of (K + 1)-wide rows::

        z_f   = [w_f, v_f1, ..., v_fK]        the field's row (K + 1 values)
        z     = concat(z_1, ..., z_F)                                         (B, F (K + 1))
        logit = MLP(z)                        hidden layers, then one output unit

    Stage one trains an :class:`~minirec.models.fm.FM`. Stage two, :meth:`from_fm`,
    builds an FNN whose row for each id is that FM's first-order weight and latent vector
    ``[w_i, v_i]``, and whose output bias is the FM's ``w0``. Training then fits the MLP
    and fine-tunes the rows. Built directly, ``FNN(schema, ...)`` starts from
    random rows, the baseline that shows what the FM initialisation buys.

    Input: a batch dict of the schema's fields. Output: logits (B,).

    Parameters
    ----------
    schema : Schema
        Sparse, multi and dense fields. A dense field contributes ``x_f * [w_f, v_f]``.
    embedding_dim : int
        K, the latent size of the FM; each field's row has K + 1 values.
    hidden : sequence of int
        Widths of the hidden layers, at least one.
    activation : str
        Hidden activation (see :func:`minirec.nn.activations.make_activation`).
    dropout : float
        Dropout after each hidden activation, in training mode only.
    init_std : float
        Standard deviation of the normal initial rows when they do not come from an FM.
    random_state : None, int or numpy.random.Generator
    dtype : float32 or float64

    Attributes
    ----------
    embedding : FieldEmbedding
        One table per field (``single_table=False``), rows of width K + 1.
    initialized_from : str
        ``"random"`` or ``"fm"``.

    Notes
    -----
    The paper feeds the global bias ``w0`` to the first hidden layer as one more input entry
    of ``z``. A constant input only duplicates the first layer's bias, so here ``w0``
    instead starts the output unit's bias, which begins stage two at the FM's base rate.
    The paper also pre-trains the hidden layers layer by layer (contrastive divergence);
    here they start from Glorot-uniform weights. The paper uses tanh hidden units, the
    default here.

    Reference: W. Zhang, T. Du and J. Wang, "Deep Learning over Multi-field Categorical
    Data: A Case Study on User Response Prediction", ECIR 2016.
    """

    name = "fnn"

    def __init__(self, schema: Schema, *, embedding_dim=8, hidden=(64, 32), activation="tanh",
                 dropout=0.0, init_std=0.01, random_state=None, dtype=np.float64):
        fields = check_field_schema(schema, "FNN")
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        hidden = check_hidden(hidden)
        dropout = check_dropout(dropout)
        super().__init__(schema, dtype=dtype, embedding_dim=embedding_dim, hidden=hidden,
                         activation=activation, dropout=dropout, init_std=init_std)
        rng = check_random_state(random_state)
        self.fields = fields
        self.embedding_dim = embedding_dim
        self.initialized_from = "random"

        self.embedding = FieldEmbedding(fields, embedding_dim + 1, single_table=False,
                                        init_std=init_std, random_state=rng, dtype=self.dtype)
        self.mlp = MLP(len(fields) * (embedding_dim + 1), hidden, activation=activation,
                       dropout=dropout, out_features=1, random_state=rng, dtype=self.dtype)

    @classmethod
    def from_fm(cls, fm, *, hidden=(64, 32), activation="tanh", dropout=0.0,
                random_state=None) -> "FNN":
        """Build stage two from a trained FM: rows ``[w_i, v_i]`` and output bias ``w0``.

        The FNN gets the FM's schema, embedding size and dtype. Raises ValueError if ``fm``
        is not an :class:`~minirec.models.fm.FM` or is untrained (see
        :meth:`load_fm`).
        """
        if not isinstance(fm, FM):
            raise ValueError(
                f"fm must be a trained minirec FM (stage one of FNN), got {type(fm).__name__}"
            )
        model = cls(fm.schema, embedding_dim=fm.embedding_dim, hidden=hidden,
                    activation=activation, dropout=dropout, random_state=random_state,
                    dtype=fm.dtype)
        model.load_fm(fm)
        return model

    def load_fm(self, fm) -> None:
        """Copy a trained FM's ``[w_i, v_i]`` into every row and its ``w0`` into the output bias.

        Raises ValueError if ``fm`` is not an FM, has another schema or embedding size, or
        is untrained. An FM counts as untrained while ``w0`` and every first-order weight
        are still exactly 0, their initial values. Any optimizer step with a non-zero
        gradient moves ``w0``, so a trained FM passes.
        """
        if not isinstance(fm, FM):
            raise ValueError(
                f"fm must be a trained minirec FM (stage one of FNN), got {type(fm).__name__}"
            )
        if fm.schema != self.schema:
            raise ValueError(
                f"fm was built for fields {[f.name for f in fm.schema]}, but this FNN has "
                f"fields {[f.name for f in self.schema]}; the schemas must be equal"
            )
        if fm.embedding_dim != self.embedding_dim:
            raise ValueError(
                f"fm has embedding_dim={fm.embedding_dim}, but this FNN has "
                f"embedding_dim={self.embedding_dim}; they must be equal"
            )
        first_order_weights = [value for _, value, _ in fm.first_order.parameters()]
        if fm.params["w0"][0] == 0 and all(not np.any(value) for value in first_order_weights):
            raise ValueError(
                "fm is untrained (w0 and every first-order weight are still 0): train the FM "
                "first (stage one), then build the FNN from it"
            )

        for field in self.fields:
            rows = 1 if field.kind == DENSE else field.vocab_size
            w_table, w_offset = fm.first_order.table_rows(field.name)
            v_table, v_offset = fm.embedding.table_rows(field.name)
            target, _ = self.embedding.table_rows(field.name)
            weight = target.params["weight"]                                    # (V_f, K + 1)
            weight[:, :1] = w_table.params["weight"][w_offset:w_offset + rows]  # (V_f, 1)
            weight[:, 1:] = v_table.params["weight"][v_offset:v_offset + rows]  # (V_f, K)
        output_layer = self.mlp.layers[-1]
        output_layer.params["b"][...] = fm.params["w0"]
        self.initialized_from = "fm"

    def _forward(self, batch) -> np.ndarray:
        # 1. per-field rows z_f = [w_f, v_f]
        Z = self.embedding.forward(batch)                                 # (B, F, K + 1)
        B, F, K1 = Z.shape

        # 2. concatenate the fields
        z = Z.reshape(B, F * K1)                                          # (B, F (K + 1))

        # 3. hidden layers and the output unit
        return self.mlp.forward(z)[:, 0]                                  # (B,)

    def _backward(self, dlogits) -> dict:
        dlogits = np.asarray(dlogits, dtype=self.dtype)                   # (B,)
        B, F, K1 = dlogits.shape[0], len(self.fields), self.embedding_dim + 1

        # 3. hidden layers and the output unit
        d_z = self.mlp.backward(dlogits[:, None])                         # (B, F (K + 1))

        # 2. -> 1. back to the per-field rows
        return self.embedding.backward(d_z.reshape(B, F, K1))
