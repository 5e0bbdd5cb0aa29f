"""PyTorch versions of minirec's DeepFM, AFM and DIN, for the speed and equivalence benchmarks.

Each reference is built from a minirec model (:func:`build_reference`) and reads its
schema and ``config``, so both sides have the same embedding layout, layer widths and
activations. Gradients come from PyTorch autograd, never from minirec's hand-written
backward passes. Every PyTorch parameter has the dotted name of the minirec parameter it
mirrors (``embedding.table.weight``, ``deep.layers.0.W``), so :func:`copy_weights` copies
one model into the other by name.

Conventions mirrored from minirec (see its docstrings for the math):

- ``Linear`` stores ``W`` as (in, out) and computes ``x @ W + b``;
- an MLP keeps minirec's layer list, ``Linear, activation[, Dropout]`` per hidden width
  and a last ``Linear``, so layer indexes (``layers.2``) agree;
- ``FieldEmbedding`` stacks one vector per field. A sparse field reads row
  ``offset + id`` of one shared table (or of its own table). A multi field sums or
  averages its ids' rows, skipping padding id 0. A dense field scales its own row by
  its value;
- Dice uses the biased batch variance over every leading axis, ``eps = 1e-8`` by default
  and Keras-style momentum for its running statistics;
- DIN's activation unit runs only on the valid (row, position) pairs, so Dice's batch
  statistics there cover valid behaviours only, and padded positions get weight 0.

Dropout uses PyTorch's generator, so runs with dropout > 0 cannot match minirec number
for number. The benchmarks use dropout 0.

Run this file to build the three references on a small synthetic schema and check that
the weights copy across (a smoke test; ``equivalence.py`` compares training steps).
"""

from __future__ import annotations

import sys

import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
    _Module = nn.Module
except ImportError:  # the module stays importable; building a reference needs torch
    torch = nn = F = None
    _Module = object

from minirec.data.schema import DENSE, MULTI, SPARSE

def _torch_dtype(numpy_dtype):
    return getattr(torch, np.dtype(numpy_dtype).name)


def _require_torch():
    if torch is None:
        raise ImportError("the PyTorch reference models need torch, which is not installed")


class Linear(_Module):
    """``y = x @ W + b`` with ``W`` of shape (in, out), as minirec stores it."""

    def __init__(self, in_features, out_features, dtype, bias=True):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(in_features, out_features, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        if x.dim() == 2 and self.b is not None:
            return torch.addmm(self.b, x, self.W)
        y = x @ self.W
        return y if self.b is None else y + self.b

class PReLU(_Module):
    """``x`` for ``x > 0``, ``alpha * x`` otherwise, one slope per feature of the last axis."""

    def __init__(self, num_features, dtype):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(num_features, dtype=dtype))

    def forward(self, x):
        return torch.where(x > 0, x, self.alpha * x)

class Dice(_Module):
    """``s * (alpha + (1 - alpha) * sigmoid((s - mu) / sqrt(var + eps)))``, batch statistics in training."""

    def __init__(self, num_features, dtype, eps=1e-8, momentum=0.99):
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.alpha = nn.Parameter(torch.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", torch.ones(num_features, dtype=dtype))

    def forward(self, s):
        H = self.alpha.shape[0]
        if self.training:
            flat = s.reshape(-1, H)
            mu = flat.mean(dim=0)
            var = ((flat - mu) ** 2).mean(dim=0)           # biased, as in minirec
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mu)
                self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var)
        else:
            mu, var = self.running_mean, self.running_var
        p = torch.sigmoid((s - mu) / torch.sqrt(var + self.eps))
        return s * (self.alpha + (1 - self.alpha) * p)

def make_activation(name, num_features, dtype):
    key = str(name).lower()
    simple = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
              "identity": nn.Identity, "linear": nn.Identity, "none": nn.Identity}
    if key in simple:
        return simple[key]()
    if key == "prelu":
        return PReLU(num_features, dtype)
    if key == "dice":
        return Dice(num_features, dtype)
    raise ValueError(f"no PyTorch reference for activation {name!r}")

class MLP(_Module):
    """Hidden ``Linear -> activation[ -> Dropout]`` blocks, then an optional output Linear."""

    def __init__(self, in_features, hidden, activation, dropout, out_features, dtype):
        super().__init__()
        layers = []
        width_in = in_features
        for width in hidden:
            layers.append(Linear(width_in, width, dtype))
            layers.append(make_activation(activation, width, dtype))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width_in = width
        if out_features is not None:
            layers.append(Linear(width_in, out_features, dtype))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

class Table(_Module):
    """An embedding table with the single parameter ``weight`` (N, K)."""

    def __init__(self, rows, dim, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, dim, dtype=dtype))

class FieldEmbedding(_Module):
    """One vector per field, stacked to (B, F, K), with minirec's table layout."""

    def __init__(self, fields, dim, dtype, *, single_table=True, pooling="sum"):
        super().__init__()
        self.fields = list(fields)
        self.pooling = pooling
        self.dtype = dtype
        sizes = {f.name: 1 if f.kind == DENSE else int(f.vocab_size) for f in self.fields}
        self.single_table = single_table
        if single_table:
            starts = np.concatenate([[0], np.cumsum([sizes[f.name] for f in self.fields])])
            self.offsets = {f.name: int(s) for f, s in zip(self.fields, starts[:-1])}
            self.table = Table(int(starts[-1]), dim, dtype)
        else:
            self.offsets = {f.name: 0 for f in self.fields}
            self.tables = nn.ModuleDict({f.name: Table(sizes[f.name], dim, dtype)
                                         for f in self.fields})

    def table_rows(self, name):
        table = self.table if self.single_table else self.tables[name]
        return table.weight, self.offsets[name]

    def forward(self, batch):
        columns = []
        for field in self.fields:
            weight, offset = self.table_rows(field.name)
            value = batch[field.name]
            if field.kind == SPARSE:
                columns.append(F.embedding(value + offset, weight))            # (B, K)
            elif field.kind == MULTI:
                mask = value != 0                                              # (B, L)
                scale = mask.to(self.dtype)
                if self.pooling == "mean":
                    count = mask.sum(dim=1, keepdim=True).clamp(min=1)
                    scale = scale / count.to(self.dtype)
                columns.append(F.embedding_bag(value + offset, weight,
                                               per_sample_weights=scale, mode="sum"))
            else:
                x = value.to(self.dtype)
                columns.append(x[:, None] * weight[offset])                    # (B, K)
        return torch.stack(columns, dim=1)                                     # (B, F, K)

class DeepFM(_Module):
    """``sum_f w_f + sum_{i<j} <e_i, e_j> + MLP(concat e)``, one shared embedding."""

    def __init__(self, fields, config, dtype):
        super().__init__()
        K = config["embedding_dim"]
        self.first_order = FieldEmbedding(fields, 1, dtype)
        self.embedding = FieldEmbedding(fields, K, dtype)
        self.deep = MLP(len(fields) * K, config["hidden"], config["activation"],
                        config["dropout"], 1, dtype)

    def forward(self, batch):
        E = self.embedding(batch)                                              # (B, F, K)
        B, F_, K = E.shape
        first_order = self.first_order(batch).sum(dim=(1, 2))                  # (B,)
        total = E.sum(dim=1)                                                   # (B, K)
        pairwise = 0.5 * (total * total - (E * E).sum(dim=1)).sum(dim=1)      # (B,)
        deep = self.deep(E.reshape(B, F_ * K))[:, 0]                           # (B,)
        return first_order + pairwise + deep

class AFMAttention(_Module):
    """``p . sum_ij softmax(h . ReLU(u_ij W + b)) u_ij`` over the pair products."""

    def __init__(self, K, A, dropout, dtype):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(K, A, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(A, dtype=dtype))
        self.h = nn.Parameter(torch.zeros(A, dtype=dtype))
        self.p = nn.Parameter(torch.zeros(K, dtype=dtype))
        self.dropout = nn.Dropout(dropout)

    def forward(self, products):
        hidden = torch.relu(products @ self.W + self.b)                        # (B, P, A)
        weights = torch.softmax(hidden @ self.h, dim=1)                        # (B, P)
        pooled = self.dropout(weights[:, :, None] * products).sum(dim=1)       # (B, K)
        return pooled @ self.p                                                 # (B,)

class AFM(_Module):
    """``bias + sum_f w_f + attention over the products e_i * e_j, i < j``."""

    def __init__(self, fields, config, dtype):
        super().__init__()
        K = config["embedding_dim"]
        self.embedding = FieldEmbedding(fields, K, dtype)
        self.first_order = FieldEmbedding(fields, 1, dtype)
        self.bias = nn.Parameter(torch.zeros(1, dtype=dtype))
        self.attention = AFMAttention(K, config["attention_dim"], config["dropout"], dtype)
        rows, cols = np.triu_indices(len(fields), k=1)     # pairs i < j, lexicographic
        self.rows = torch.from_numpy(rows.astype(np.int64))
        self.cols = torch.from_numpy(cols.astype(np.int64))

    def forward(self, batch):
        E = self.embedding(batch)                                              # (B, F, K)
        first_order = self.first_order(batch).sum(dim=(1, 2))                  # (B,)
        products = E[:, self.rows] * E[:, self.cols]                           # (B, P, K)
        return self.bias[0] + first_order + self.attention(products)

class DINAttention(_Module):
    """Score ``[q, k, q - k, q * k]`` with an MLP on valid positions; pool the keys."""

    def __init__(self, key_dim, hidden, activation, normalize, dtype):
        super().__init__()
        self.normalize = normalize
        self.unit = MLP(4 * key_dim, hidden, activation, 0.0, 1, dtype)

    def forward(self, query, keys, valid):
        B, T, _ = keys.shape
        batch_index, time_index = torch.nonzero(valid, as_tuple=True)          # (N,)
        q_rows = query[batch_index]                                            # (N, D)
        k_rows = keys[batch_index, time_index]                                 # (N, D)
        unit_input = torch.cat([q_rows, k_rows, q_rows - k_rows, q_rows * k_rows], dim=1)
        scores = keys.new_zeros(B, T)
        if batch_index.numel():
            scores = scores.index_put((batch_index, time_index),
                                      self.unit(unit_input)[:, 0])             # (B, T)
        if self.normalize:
            masked = scores.masked_fill(~valid, float("-inf"))
            weights = torch.softmax(masked, dim=1).nan_to_num(0.0)
            weights = torch.where(valid, weights, torch.zeros_like(weights))
        else:
            weights = scores
        return torch.einsum("bt,btd->bd", weights, keys)                      # (B, D)

class DIN(_Module):
    """Candidate fields attend over the behaviour sequences; an MLP scores everything."""

    def __init__(self, schema, config, dtype, *, attention=True):
        super().__init__()
        K = config["embedding_dim"]
        self.sequences = schema.sequence_fields
        self.length_key = self.sequences[0].length
        self.fields = schema.of_kind(SPARSE, MULTI, DENSE)
        names = [f.name for f in self.fields]
        self.candidate_index = [names.index(f.vocab_of) for f in self.sequences]
        self.embedding = FieldEmbedding(self.fields, K, dtype, single_table=False)
        S = len(self.sequences)
        if attention:
            activation = config.get("attention_activation") or config["activation"]
            self.attention = DINAttention(S * K, config["attention_hidden"], activation,
                                          config["attention_normalize"], dtype)
        else:
            self.attention = None
        self.mlp = MLP(len(self.fields) * K + S * K, config["hidden"], config["activation"],
                       config["dropout"], 1, dtype)

    def forward(self, batch):
        E = self.embedding(batch)                                              # (B, F, K)
        B = E.shape[0]
        query = E[:, self.candidate_index, :].reshape(B, -1)                   # (B, S K)
        first = batch[self.sequences[0].name]
        T = first.shape[1]
        lengths = batch[self.length_key]
        valid = torch.arange(T)[None, :] < lengths[:, None]                    # (B, T)
        keys = []
        for f in self.sequences:
            weight, offset = self.embedding.table_rows(f.vocab_of)
            keys.append(F.embedding(batch[f.name] + offset, weight))          # (B, T, K)
        keys = torch.cat(keys, dim=2)                                          # (B, T, S K)
        keys = torch.where(valid[:, :, None], keys, torch.zeros_like(keys))
        if self.attention is not None:
            pooled = self.attention(query, keys, valid)                        # (B, S K)
        else:
            pooled = (keys * valid[:, :, None].to(keys.dtype)).sum(dim=1)      # (B, S K)
        x = torch.cat([E.reshape(B, -1), pooled], dim=1)
        return self.mlp(x)[:, 0]                                               # (B,)


def build_reference(model):
    """Return the PyTorch reference of a minirec DeepFM, AFM, DIN or DINBase, weights copied.

    The reference has the model's dtype, its config's sizes and activations, and a copy of
    its current weights and Dice buffers.
    """
    _require_torch()
    dtype = _torch_dtype(model.dtype)
    config = model.config
    if model.name == "deepfm":
        reference = DeepFM(list(model.schema.fields), config, dtype)
    elif model.name == "afm":
        reference = AFM(list(model.schema.fields), config, dtype)
    elif model.name in ("din", "din-base"):
        reference = DIN(model.schema, config, dtype, attention=model.name == "din")
    else:
        raise ValueError(f"no PyTorch reference for model {model.name!r}; "
                         "choose deepfm, afm, din or din-base")
    copy_weights(model, reference)
    return reference


def copy_weights(model, reference) -> None:
    """Copy every parameter and buffer of the minirec ``model`` into ``reference`` by name.

    Raises ValueError if the two do not have the same dotted names and shapes.
    """
    _require_torch()
    state = model.state_dict()          # parameters and buffers, by dotted name
    targets = dict(reference.named_parameters())
    targets.update(reference.named_buffers())
    missing = sorted(set(state) - set(targets))
    unexpected = sorted(set(targets) - set(state))
    if missing or unexpected:
        raise ValueError(f"parameter names differ: only in minirec {missing}, "
                         f"only in the reference {unexpected}")
    with torch.no_grad():
        for name, value in state.items():
            target = targets[name]
            if tuple(target.shape) != value.shape:
                raise ValueError(f"{name}: minirec shape {value.shape}, reference shape "
                                 f"{tuple(target.shape)}")
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def to_torch(batch) -> dict:
    """Return a batch dict of NumPy arrays as tensors sharing the same memory."""
    _require_torch()
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in batch.items()}


class TorchTrainer:
    """One PyTorch training step: forward, BCE with logits, backward, ``torch.optim.Adam``."""

    def __init__(self, reference, *, lr=1e-3):
        self.reference = reference
        self.optimizer = torch.optim.Adam(reference.parameters(), lr=lr)

    def step(self, features, labels) -> float:
        batch = to_torch(features)
        target = torch.from_numpy(labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(self.reference(batch), target)
        loss.backward()
        self.optimizer.step()
        return loss.item()


def _smoke() -> int:
    if torch is None:
        print("PyTorch is not installed, so the reference models cannot be built; "
              "nothing to check.")
        return 0
    from minirec.data.schema import Field, Schema
    from minirec.models.base import get_model_class

    flat = Schema([Field("user", SPARSE, 7), Field("item", SPARSE, 9),
                   Field("tags", MULTI, 5, max_len=3), Field("price", DENSE)])
    with_history = Schema([Field("user", SPARSE, 7), Field("item", SPARSE, 9),
                           Field("hist_item", "sequence", max_len=4, vocab_of="item",
                                 length="hist_length")])
    for name, schema in (("deepfm", flat), ("afm", flat), ("din", with_history)):
        model = get_model_class(name)(schema, random_state=0)
        reference = build_reference(model)
        count = sum(p.numel() for p in reference.parameters())
        print(f"{name:7s} {count:6d} parameters copied, "
              f"{len(list(reference.named_parameters()))} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(_smoke())
