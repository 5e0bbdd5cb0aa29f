"""Gradient-check cases for AFM, DIN and DINBase.

Each case is ``(name, model, inputs, kwargs)``: a float64 model in training mode with
dropout 0, built from fixed seeds, with every parameter set to random values (so no gradient
is zero by construction), ready for ``check_gradients(model, inputs, name=name, **kwargs)``.
"""

from __future__ import annotations

import numpy as np

from ..data.schema import Field, Schema
from .afm import AFM
from .din import DIN, DINBase
from .cases_fm_family import randomize, tiny_batch, tiny_schema

CHECK_KWARGS = {"differentiable": ["price"], "max_entries": 40}


def tiny_behaviour_schema(max_len: int = 4) -> Schema:
    """User, candidate item and category, a dense price, and item and category histories."""
    return Schema([
        Field("user_id", "sparse", vocab_size=4),
        Field("item_id", "sparse", vocab_size=6),
        Field("category", "sparse", vocab_size=4),
        Field("price", "dense"),
        Field("hist_item_id", "sequence", max_len=max_len, vocab_of="item_id",
              length="hist_length"),
        Field("hist_category", "sequence", max_len=max_len, vocab_of="category",
              length="hist_length"),
    ])


def tiny_behaviour_batch() -> dict:
    """Three rows with histories of width 4.

    Row 0 has 3 valid behaviours, item 3 twice, and item 3 is also row 0's candidate; its
    last position is padding. Row 1 has an empty history (every position padded). Row 2
    has a full history, which contains item 3 too.
    """
    return {
        "user_id": np.array([2, 3, 2]),
        "item_id": np.array([3, 5, 4]),
        "category": np.array([2, 3, 2]),
        "price": np.array([0.5, -1.25, 2.0]),
        "hist_item_id": np.array([[3, 2, 3, 0], [0, 0, 0, 0], [4, 3, 5, 2]]),
        "hist_category": np.array([[2, 3, 2, 0], [0, 0, 0, 0], [2, 2, 3, 3]]),
        "hist_length": np.array([3, 0, 4]),
    }


def gradcheck_cases() -> list[tuple[str, object, list, dict]]:
    """Return the gradient-check cases of AFM, DIN (both weightings, Dice and PReLU) and DINBase."""
    fields = tiny_schema()
    behaviours = tiny_behaviour_schema()
    din_sizes = {"embedding_dim": 2, "hidden": (5, 3), "attention_hidden": (4,)}
    models = [
        ("AFM", AFM(fields, embedding_dim=3, attention_dim=4, random_state=1),
         tiny_batch()),
        ("DIN(dice, paper weights)", DIN(behaviours, activation="dice", random_state=2,
                                         **din_sizes), tiny_behaviour_batch()),
        ("DIN(dice, softmax weights)", DIN(behaviours, activation="dice",
                                           attention_normalize=True, random_state=3,
                                           **din_sizes), tiny_behaviour_batch()),
        ("DIN(prelu, paper weights)", DIN(behaviours, activation="prelu", random_state=4,
                                          **din_sizes), tiny_behaviour_batch()),
        ("DIN(prelu, softmax weights)", DIN(behaviours, activation="prelu",
                                            attention_normalize=True, random_state=5,
                                            **din_sizes), tiny_behaviour_batch()),
        ("DINBase(dice)", DINBase(behaviours, embedding_dim=2, hidden=(5, 3),
                                  activation="dice", random_state=6), tiny_behaviour_batch()),
        ("DINBase(prelu)", DINBase(behaviours, embedding_dim=2, hidden=(4,),
                                   activation="prelu", random_state=7), tiny_behaviour_batch()),
    ]
    one_row = {key: value[1:2].copy() for key, value in tiny_behaviour_batch().items()}
    models += [
        ("AFM(batch of one)", AFM(fields, embedding_dim=2, attention_dim=3, random_state=8),
         {key: value[:1].copy() for key, value in tiny_batch().items()}),
        ("DIN(batch of one, empty history)", DIN(behaviours, random_state=9, **din_sizes),
         one_row),
    ]
    cases = []
    for index, (name, model, batch) in enumerate(models):
        randomize(model, random_state=100 + index)
        model.train()
        cases.append((name, model, [batch], dict(CHECK_KWARGS)))
    return cases
