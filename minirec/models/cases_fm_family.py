"""Gradient-check cases for FM, FNN, DeepFM, Wide&Deep, Deep Crossing, NFM and MLPModel.

Each case is ``(name, model, inputs, kwargs)``: a float64 model in training mode, built
from fixed seeds, with every parameter set to random values (so no gradient is zero by
construction), and ready for ``check_gradients(model, inputs, name=name, **kwargs)``.
"""

from __future__ import annotations

import numpy as np

from ..data.schema import Field, Schema
from .deep_crossing import DeepCrossing
from .deepfm import DeepFM
from .fm import FM
from .fnn import FNN
from .mlp import MLPModel
from .nfm import NFM
from .wide_deep import WideDeep


def tiny_schema() -> Schema:
    """Two sparse fields, a multi field of width 3 and a dense field."""
    return Schema([
        Field("user", "sparse", vocab_size=4),
        Field("item", "sparse", vocab_size=5),
        Field("tags", "multi", vocab_size=6, max_len=3),
        Field("price", "dense"),
    ])


def tiny_batch() -> dict:
    """Three rows: item 3 repeated, the second row's tag list empty (all padding)."""
    return {
        "user": np.array([2, 3, 2]),
        "item": np.array([3, 4, 3]),
        "tags": np.array([[2, 5, 0], [0, 0, 0], [3, 3, 4]]),
        "price": np.array([0.5, -1.25, 2.0]),
    }


def randomize(model, random_state=0, scale=0.5):
    """Set every parameter of ``model`` to normal values of std ``scale``, in place."""
    rng = np.random.default_rng(random_state)
    for _, value, _ in model.parameters():
        value[...] = rng.normal(0.0, scale, size=value.shape)
    return model


def gradcheck_cases() -> list[tuple[str, object, list, dict]]:
    """Return one or more gradient-check cases per model of the FM family."""
    schema = tiny_schema()
    kwargs = {"differentiable": ["price"], "max_entries": 40}

    trained_fm = randomize(FM(schema, embedding_dim=3, random_state=10), random_state=11)
    models = [
        ("FM", FM(schema, embedding_dim=3, random_state=1)),
        ("FNN", FNN(schema, embedding_dim=3, hidden=(5, 4), random_state=2)),
        ("FNN(from FM)", FNN.from_fm(trained_fm, hidden=(5,), random_state=3)),
        ("DeepFM", DeepFM(schema, embedding_dim=3, hidden=(5, 4), random_state=4)),
        ("DeepFM(dropout 0.3)", DeepFM(schema, embedding_dim=3, hidden=(5,), dropout=0.3,
                                       random_state=5)),
        ("WideDeep", WideDeep(schema, embedding_dim=3, hidden=(5,), random_state=6)),
        ("WideDeep(cross product)", WideDeep(schema, embedding_dim=2, hidden=(4,),
                                             cross_features=[("user", "item")],
                                             random_state=7)),
        ("WideDeep(hashed cross)", WideDeep(schema, embedding_dim=2, hidden=(4,),
                                            cross_features=[("item", "user")], cross_buckets=3,
                                            random_state=8)),
        ("DeepCrossing", DeepCrossing(schema, embedding_dim=2, residual_hidden=(5, 3),
                                      random_state=9)),
        ("NFM", NFM(schema, embedding_dim=3, hidden=(5,), random_state=12)),
        ("NFM(no hidden layer)", NFM(schema, embedding_dim=3, hidden=(), random_state=13)),
        ("NFM(dropout 0.3)", NFM(schema, embedding_dim=3, hidden=(4,), dropout=0.3,
                                 random_state=14)),
        ("MLPModel", MLPModel(schema, embedding_dim=3, hidden=(5, 4), random_state=15)),
    ]
    cases = []
    for index, (name, model) in enumerate(models):
        if name != "FNN(from FM)":
            randomize(model, random_state=100 + index)
        model.train()
        cases.append((name, model, [tiny_batch()], dict(kwargs)))
    return cases
