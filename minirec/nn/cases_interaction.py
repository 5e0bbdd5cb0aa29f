"""Gradient-check cases for the interaction and attention components.

Each case is ``(name, module, inputs, kwargs)``: float64, built from fixed seeds, ready for
``check_gradients(module, inputs, name=name, **kwargs)``.
"""

from __future__ import annotations

import numpy as np

from .afm_attention import AFMAttention
from .din_attention import DINAttention
from .fm import FactorizationMachine, FMInteraction
from .pairwise import BiInteraction, PairwiseProducts


def _din_cases(rng) -> list:
    # Row 0 is padded after 2 of 4 positions, row 1 has an empty history, row 2 is full.
    B, T, K = 3, 4, 3
    query = rng.standard_normal((B, K))
    keys = rng.standard_normal((B, T, K))
    lengths = np.array([2, 0, 4])
    cases = []
    for activation in ("sigmoid", "dice", "prelu"):
        for normalize in (False, True):
            mode = "softmax" if normalize else "paper"
            module = DINAttention(K, hidden=(5,), activation=activation, normalize=normalize,
                                  random_state=7)
            cases.append((f"DINAttention({activation}, {mode}, padded and empty rows)", module,
                          [query.copy(), keys.copy(), lengths.copy()],
                          {"differentiable": [0, 1]}))

    # Every history empty: the unit never runs and every gradient is exactly 0.
    module = DINAttention(K, hidden=(5,), normalize=True, random_state=7)
    cases.append(("DINAttention(softmax, all rows empty)", module,
                  [query.copy(), keys.copy(), np.zeros(B, dtype=np.int64)],
                  {"differentiable": [0, 1]}))
    return cases


def gradcheck_cases() -> list[tuple[str, object, list, dict]]:
    """Return the gradient-check cases of every component in fm, pairwise and the attentions."""
    rng = np.random.default_rng(20240601)
    B, F, K = 3, 4, 3
    embeddings = rng.standard_normal((B, F, K))

    fm = FactorizationMachine(5, 3, init_std=0.5, random_state=1)
    fm.params["w0"][...] = 0.3
    fm.params["w"][...] = rng.standard_normal(5)

    afm = AFMAttention(K, 4, random_state=2)
    afm.params["b"][...] = rng.normal(0.0, 0.1, size=4)   # some hidden units active, some not
    afm_dropout = AFMAttention(K, 4, dropout=0.3, random_state=3)
    afm_dropout.params["b"][...] = rng.normal(0.0, 0.1, size=4)

    products = rng.standard_normal((B, F * (F - 1) // 2, K))
    cases = [
        ("FMInteraction", FMInteraction(), [embeddings.copy()], {}),
        ("FMInteraction(one field)", FMInteraction(), [embeddings[:, :1].copy()], {}),
        ("FactorizationMachine", fm, [rng.standard_normal((B, 5))], {}),
        ("PairwiseProducts", PairwiseProducts(), [embeddings.copy()], {}),
        ("PairwiseProducts(one field)", PairwiseProducts(), [embeddings[:, :1].copy()], {}),
        ("BiInteraction", BiInteraction(), [embeddings.copy()], {}),
        ("AFMAttention", afm, [products.copy()], {}),
        ("AFMAttention(dropout 0.3)", afm_dropout, [products.copy()], {}),
        ("AFMAttention(batch of one)", AFMAttention(K, 2, random_state=4),
         [products[:1].copy()], {}),
    ]
    return cases + _din_cases(rng)
