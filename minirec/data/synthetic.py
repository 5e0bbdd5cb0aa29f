"""Seeded synthetic worlds whose true click model is known, for lessons and tests.

Each world is a function returning :class:`~minirec.data.dataset.TaskSplits` whose ``truth``
dict contains the planted structure, so a lesson can show that a model found it. ``WORLDS``
maps a world's name to its generator function; every world draws all its random numbers
from one ``random_state``.

Ids follow the library's convention: 0 is padding and 1 is the unknown value, so a field of
``vocab_size`` ids draws its values from ``2 .. vocab_size - 1`` and never uses 0 or 1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..nn.activations import sigmoid
from ..nn.base import check_positive_int, check_random_state
from .dataset import Dataset, TaskSplits
from .schema import Field, Schema

FIRST_ID = 2          # ids 0 (padding) and 1 (unknown) are never drawn
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def _check_non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_field_names(argument: str, names, known: list[str], size: int | None) -> tuple:
    """Return ``names`` as a tuple after checking they are distinct known field names."""
    names = tuple(names)
    if size is not None and len(names) != size:
        raise ValueError(f"{argument} must name {size} fields, got {names!r}")
    for name in names:
        if name not in known:
            raise ValueError(f"{argument} names unknown field {name!r}; fields are {known}")
    if len(set(names)) != len(names):
        raise ValueError(f"{argument} must name distinct fields, got {names!r}")
    return names


def _check_vocab_sizes(vocab_size, n_fields: int) -> dict[str, int]:
    """Return field name -> vocabulary size from one int or one int per field."""
    if isinstance(vocab_size, (int, np.integer)) and not isinstance(vocab_size, bool):
        values = [vocab_size] * n_fields
    else:
        values = list(vocab_size)
        if len(values) != n_fields:
            raise ValueError(f"vocab_size must be an int or a list of n_fields={n_fields} ints, "
                             f"got {vocab_size!r}")
    sizes = {}
    for index, value in enumerate(values):
        value = check_positive_int("vocab_size", value)
        if value < 4:
            raise ValueError(f"vocab_size of field f{index} must be at least 4 (ids 0 and 1 are "
                             f"reserved and each sign needs a value), got {value}")
        sizes[f"f{index}"] = value
    return sizes


def split_rows(n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Shuffle ``range(n_samples)`` and cut it 80/10/10 into train, valid and test rows."""
    order = rng.permutation(n_samples)
    n_train = int(round(SPLIT_FRACTIONS[0] * n_samples))
    n_valid = int(round(SPLIT_FRACTIONS[1] * n_samples))
    return {
        "train": order[:n_train],
        "valid": order[n_train:n_train + n_valid],
        "test": order[n_train + n_valid:],
    }


# --------------------------------------------------------------------------------------
# The click world: first-order effects, planted field pairs and a three-field product.
# Used by FM, FNN, DeepFM, Wide&Deep, Deep Crossing, NFM and the MLP baseline.
# --------------------------------------------------------------------------------------

CLICK_VOCAB_SIZE = 60          # ids of a field outside the product, by default
CLICK_PRODUCT_VOCAB_SIZE = 6   # ids of a product field by default: 4 values, 64 combinations


def make_click_world(n_samples: int = 20000, *, n_fields: int = 6, vocab_size=None,
                     embedding_dim: int = 8,
                     planted_pairs: Sequence[tuple[str, str]] = (
                         ("f0", "f1"), ("f0", "f2"), ("f1", "f2")),
                     nonlinear_fields: Sequence[str] | None = None,
                     pair_strength: float = 1.5, first_order_strength: float = 0.5,
                     nonlinear_strength: float = 1.5, nonlinear_offset: float = 0.5,
                     bias: float = 0.0, random_state=0) -> TaskSplits:
    """Draw a click data set from a known logit with pairwise and three-way parts.

    Every row has ``n_fields`` sparse fields ``f0, f1, ...``, each an id drawn uniformly
    from ``2 .. V_f - 1``. The label is ``Bernoulli(sigmoid(logit))`` with::

        logit = b + sum_f w_f[x_f]                                  first-order part
                  + sum_{(i, j) planted} <u_i[x_i], u_j[x_j]>       pairwise part
                  + c * h_a[x_a] * h_b[x_b] * h_c[x_c]              non-linear part

    - first-order part: ``w_f[id] ~ N(0, first_order_strength^2)``;
    - pairwise part: each field of a planted pair has a hidden latent vector per id, with
      entries ``~ N(0, pair_strength / sqrt(embedding_dim))`` in variance, so that each
      planted pair term has standard deviation ``pair_strength`` over random ids. A field
      in two planted pairs uses the same vector in both, as a factorization machine does.
      Unplanted pairs contribute nothing;
    - non-linear part: the three ``nonlinear_fields`` ``a, b, c`` give each id a hidden
      sign ``s[id]`` in ``{-1, +1}`` (half of the ids each) and a factor
      ``h = nonlinear_offset + s``. The product is scaled by ``c = nonlinear_strength``.
      Expanded with ``m = nonlinear_offset``::

          c h_a h_b h_c = c [ m^3 + m^2 (s_a + s_b + s_c)
                              + m (s_a s_b + s_a s_c + s_b s_c) + s_a s_b s_c ]

      The last term, ``three_way = c s_a s_b s_c``, averages to 0 over the ids of any one
      product field (uniform ids, and an even number of ids per product field so that the
      signs balance exactly). It is therefore uncorrelated with every function of fewer
      than three fields, and no model made of first-order and pairwise terms (FM, NFM
      without hidden layers) can express any of it, while hidden layers can. The
      lower-order terms help gradient descent find the signs. With ``m = 0`` the product
      is a pure parity: on a world like the default one but with ``m = 0`` and 30000 rows,
      DeepFM had not found it after 8 epochs for 1 of 6 seeds. With ``m != 0`` the pairs
      of the product fields also carry a pairwise effect (``truth["implied_pairs"]``).

    The defaults give 60 ids in ``f0 .. f2``, 6 in the product fields ``f3 .. f5`` and
    20000 rows. On them, models trained with Adam (lr 0.01, batch 256, 10 epochs, best
    validation epoch kept, embeddings of size 8 started at std 0.3) reached these test
    AUCs over seeds 0-5: FM 0.80-0.84, MLP (32, 16) 0.78-0.79, DeepFM (32, 16) 0.86-0.90.
    The true logits score 0.93-0.94.

    Parameters
    ----------
    n_samples : int
        Rows in total, shuffled and split 80/10/10 into train, valid and test.
    n_fields : int
        Number of sparse fields, named ``f0`` to ``f{n_fields - 1}``.
    vocab_size : None, int or sequence of int
        Ids per field, padding and unknown included, at least 4: one value for every field,
        one per field, or None for 60 in each field and 6 in each product field.
    embedding_dim : int
        Size of the hidden latent vectors of the planted pairs.
    planted_pairs : sequence of (str, str)
        Field pairs with a pairwise interaction.
    nonlinear_fields : sequence of three str, optional
        Fields of the product; by default the last three fields.
    pair_strength, first_order_strength, nonlinear_strength : float
        Scales of the three parts (0 removes a part).
    nonlinear_offset : float
        ``m`` above; 0 makes the non-linear part a pure three-way parity.
    bias : float
        Global logit offset ``b``.
    random_state : None, int or numpy.random.Generator
        Source of every random choice: parameters, ids, labels and the split.

    Returns
    -------
    TaskSplits
        Named ``"click"``. ``truth`` holds ``planted_pairs``, ``nonlinear_fields``,
        ``implied_pairs`` (pairs of product fields, empty when ``m`` or ``c`` is 0),
        ``logits`` (dict split -> true logits), ``parts`` (dict split -> dict of the
        ``first_order``, ``pairwise``, ``nonlinear`` and ``three_way`` arrays; the first
        three add up to ``logits - bias``), ``click_rate`` (dict split -> mean true click
        probability) and ``params`` (``bias``, ``first_order`` dict field -> (V_f,),
        ``latent`` dict field -> (V_f, embedding_dim), ``signs`` dict field -> (V_f,),
        and the arguments that set the scales). Rows 0 and 1 (padding and unknown) of these
        tables are zero and never drawn.
    """
    n_samples = check_positive_int("n_samples", n_samples)
    if n_samples < 10:
        raise ValueError(f"n_samples must be at least 10 to fill three splits, got {n_samples}")
    n_fields = check_positive_int("n_fields", n_fields)
    embedding_dim = check_positive_int("embedding_dim", embedding_dim)
    pair_strength = _check_non_negative("pair_strength", pair_strength)
    first_order_strength = _check_non_negative("first_order_strength", first_order_strength)
    nonlinear_strength = _check_non_negative("nonlinear_strength", nonlinear_strength)
    nonlinear_offset = _check_finite("nonlinear_offset", nonlinear_offset)
    bias = _check_finite("bias", bias)
    rng = check_random_state(random_state)

    names = [f"f{index}" for index in range(n_fields)]
    planted = [_check_field_names("planted_pairs", pair, names, 2) for pair in planted_pairs]
    if len({frozenset(pair) for pair in planted}) != len(planted):
        raise ValueError(f"planted_pairs repeats a pair: {planted}")
    if nonlinear_fields is None and n_fields < 3:
        if nonlinear_strength > 0:
            raise ValueError(f"the non-linear part needs n_fields >= 3, got {n_fields}; "
                             "set nonlinear_strength=0 to draw fewer fields")
        nonlinear_fields = ()
    elif nonlinear_fields is None:
        nonlinear_fields = tuple(names[-3:])
    else:
        nonlinear_fields = _check_field_names("nonlinear_fields", nonlinear_fields, names, 3)
    if vocab_size is None:
        vocab_size = [CLICK_PRODUCT_VOCAB_SIZE if name in nonlinear_fields
                      else CLICK_VOCAB_SIZE for name in names]
    sizes = _check_vocab_sizes(vocab_size, n_fields)

    # 1. hidden parameters, drawn in a fixed order so the seed fixes them all
    first_order = {}
    for name in names:
        weights = np.zeros(sizes[name])
        weights[FIRST_ID:] = first_order_strength * rng.standard_normal(sizes[name] - FIRST_ID)
        first_order[name] = weights
    latent = {}
    scale = np.sqrt(pair_strength) * embedding_dim ** -0.25
    for name in names:
        if any(name in pair for pair in planted):
            vectors = np.zeros((sizes[name], embedding_dim))
            vectors[FIRST_ID:] = scale * rng.standard_normal(
                (sizes[name] - FIRST_ID, embedding_dim))
            latent[name] = vectors
    signs = {}
    for name in nonlinear_fields:
        # Half of the ids (one more when their count is odd) get +1, so the signs are balanced.
        n_values = sizes[name] - FIRST_ID
        values = np.where(np.arange(n_values) < (n_values + 1) // 2, 1.0, -1.0)
        table = np.zeros(sizes[name])
        table[FIRST_ID:] = rng.permutation(values)
        signs[name] = table

    # 2. ids
    ids = {name: rng.integers(FIRST_ID, sizes[name], size=n_samples) for name in names}

    # 3. the logit, part by part
    first_order_part = np.zeros(n_samples)
    for name in names:
        first_order_part += first_order[name][ids[name]]
    pairwise_part = np.zeros(n_samples)
    for left, right in planted:
        pairwise_part += np.sum(latent[left][ids[left]] * latent[right][ids[right]], axis=1)
    product = np.ones(n_samples)
    parity = np.ones(n_samples)
    for name in nonlinear_fields:
        product *= nonlinear_offset + signs[name][ids[name]]
        parity *= signs[name][ids[name]]
    nonlinear_part = nonlinear_strength * product
    logits = bias + first_order_part + pairwise_part + nonlinear_part

    # 4. labels and the split
    labels = (rng.random(n_samples) < sigmoid(logits)).astype(np.float64)
    rows = split_rows(n_samples, rng)

    schema = Schema(Field(name, "sparse", sizes[name]) for name in names)
    columns = {name: ids[name].astype(np.int64) for name in names}
    dataset = Dataset(schema, columns, labels)
    parts = {"first_order": first_order_part, "pairwise": pairwise_part,
             "nonlinear": nonlinear_part, "three_way": nonlinear_strength * parity}
    implied = []
    if nonlinear_strength > 0 and nonlinear_offset != 0:
        a, b, c = nonlinear_fields
        implied = [(a, b), (a, c), (b, c)]
    truth = {
        "planted_pairs": [tuple(pair) for pair in planted],
        "nonlinear_fields": tuple(nonlinear_fields),
        "implied_pairs": implied,
        "logits": {split: logits[index] for split, index in rows.items()},
        "parts": {split: {key: value[index] for key, value in parts.items()}
                  for split, index in rows.items()},
        "click_rate": {split: float(sigmoid(logits[index]).mean())
                       for split, index in rows.items()},
        "params": {
            "bias": bias,
            "first_order": first_order,
            "latent": latent,
            "signs": signs,
            "embedding_dim": embedding_dim,
            "pair_strength": pair_strength,
            "first_order_strength": first_order_strength,
            "nonlinear_strength": nonlinear_strength,
            "nonlinear_offset": nonlinear_offset,
        },
    }
    return TaskSplits("click", dataset.take(rows["train"]), dataset.take(rows["valid"]),
                      dataset.take(rows["test"]), {}, truth)


# Name -> generator function. Other worlds add their own entries below their functions.
WORLDS = {
    "click": make_click_world,
}


# --------------------------------------------------------------------------------------
# The field world: a few planted field pairs among many. Used by AFM (against FM).
# --------------------------------------------------------------------------------------

def make_field_world(n_samples: int = 10000, *, n_fields: int = 10, n_values: int = 20,
                     planted_pairs: Sequence[tuple[str, str]] = (("f0", "f1"), ("f2", "f3")),
                     rank: int = 2, pair_strength: float = 2.0, other_pair_strength: float = 0.0,
                     first_order_strength: float = 0.3, random_state=0) -> TaskSplits:
    """Draw a click data set where only a few named field pairs interact.

    Every row has ``n_fields`` sparse fields ``f0, f1, ...``, each an id drawn uniformly
    from ``n_values`` values (ids ``2 .. n_values + 1``). Every field pair ``(i, j)`` gets
    its own hidden vectors ``u_i^{ij}[id]`` and ``u_j^{ij}[id]`` of size ``rank``, entries
    ``N(0, 1 / rank)``, so each pair term has variance 1 over random ids. The label is
    ``Bernoulli(sigmoid(logit))`` with::

        logit = b + sum_f w_f[x_f]
                + pair_strength       * sum_{(i, j) planted}     <u_i^{ij}[x_i], u_j^{ij}[x_j]>
                + other_pair_strength * sum_{(i, j) not planted} <u_i^{ij}[x_i], u_j^{ij}[x_j]>

    and ``w_f[id] ~ N(0, first_order_strength^2)``. The bias ``b`` centres the logit's
    median at log(0.4 / 0.6), so about 40% of the rows are clicks.

    With the defaults, 2 of the 45 pairs carry the interaction and the other 43 carry
    nothing. A factorization machine weighs every pair alike, so it fits noise on the 43.
    AFM's attention can learn to weigh them down (``tests/test_synthetic_attention.py``
    measures both models on this world).

    Parameters
    ----------
    n_samples : int
        Rows in total, shuffled and split 80/10/10 into train, valid and test.
    n_fields, n_values : int
        Number of sparse fields and of values per field (the vocabulary has two more ids).
    planted_pairs : sequence of (str, str)
        Field pairs with the strong interaction.
    rank : int
        Size of the hidden vectors of a pair.
    pair_strength, other_pair_strength, first_order_strength : float
        Scales of the planted pairs, of every other pair, and of the first-order weights.
    random_state : None, int or numpy.random.Generator
        Source of every random choice: parameters, ids, labels and the split.

    Returns
    -------
    TaskSplits
        Named ``"fields"``. ``truth`` contains ``planted_pairs`` (list of (str, str)),
        ``planted_pair_names`` (``"f0 x f1"``, the spelling of ``AFM.pair_names``),
        ``field_names``, ``logits`` (dict split -> true logits) and ``click_rate`` (dict
        split -> true mean click probability).
    """
    n_samples = check_positive_int("n_samples", n_samples)
    if n_samples < 10:
        raise ValueError(f"n_samples must be at least 10 to fill three splits, got {n_samples}")
    n_fields = check_positive_int("n_fields", n_fields)
    if n_fields < 2:
        raise ValueError(f"n_fields must be at least 2 so that field pairs exist, got {n_fields}")
    n_values = check_positive_int("n_values", n_values)
    rank = check_positive_int("rank", rank)
    pair_strength = _check_non_negative("pair_strength", pair_strength)
    other_pair_strength = _check_non_negative("other_pair_strength", other_pair_strength)
    first_order_strength = _check_non_negative("first_order_strength", first_order_strength)
    names = [f"f{index}" for index in range(n_fields)]
    planted = [tuple(sorted(_check_field_names("planted_pairs", pair, names, 2),
                            key=names.index))
               for pair in planted_pairs]
    if len(set(planted)) != len(planted):
        raise ValueError(f"planted_pairs repeats a pair: {planted}")
    rng = check_random_state(random_state)

    # 1. ids, as value indices 0 .. n_values - 1
    values = rng.integers(0, n_values, size=(n_samples, n_fields))            # (n, F)

    # 2. first-order part
    first_order = rng.normal(0.0, first_order_strength, size=(n_fields, n_values))
    logits = first_order[np.arange(n_fields), values].sum(axis=1)             # (n,)

    # 3. one low-rank interaction per pair; every pair draws its vectors, so changing the
    #    strengths does not change the other random numbers
    for i in range(n_fields):
        for j in range(i + 1, n_fields):
            u_i = rng.normal(0.0, 1.0 / np.sqrt(rank), size=(n_values, rank))
            u_j = rng.normal(0.0, 1.0 / np.sqrt(rank), size=(n_values, rank))
            strength = pair_strength if (names[i], names[j]) in planted else other_pair_strength
            if strength:
                pair_term = np.sum(u_i[values[:, i]] * u_j[values[:, j]], axis=1)   # (n,)
                logits += strength * pair_term

    # 4. labels around a 40% click rate, and the split
    logits += np.log(0.4 / 0.6) - np.median(logits)
    labels = (rng.random(n_samples) < sigmoid(logits)).astype(np.float64)
    rows = split_rows(n_samples, rng)

    schema = Schema(Field(name, "sparse", vocab_size=n_values + FIRST_ID) for name in names)
    columns = {name: (values[:, index] + FIRST_ID).astype(np.int64)
               for index, name in enumerate(names)}
    dataset = Dataset(schema, columns, labels)
    truth = {
        "planted_pairs": planted,
        "planted_pair_names": [f"{left} x {right}" for left, right in planted],
        "field_names": names,
        "logits": {split: logits[index] for split, index in rows.items()},
        "click_rate": {split: float(sigmoid(logits[index]).mean())
                       for split, index in rows.items()},
    }
    return TaskSplits("fields", dataset.take(rows["train"]), dataset.take(rows["valid"]),
                      dataset.take(rows["test"]), {}, truth)


# --------------------------------------------------------------------------------------
# The interest world: a click depends on the behaviours of the candidate's category.
# Used by DIN (against its sum-pooling base model).
# --------------------------------------------------------------------------------------

def _check_fraction(name: str, value) -> float:
    value = _check_non_negative(name, value)
    if value > 1:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return value


def _draw_histories(rng, interests, items_of, item_vectors, max_len: int,
                    taste_sharpness: float) -> np.ndarray:
    """Return each user's time-ordered history of item indices, shape (U, max_len)."""
    n_users, interests_per_user = interests.shape
    dim = item_vectors.shape[1]
    histories = np.empty((n_users, max_len), dtype=np.int64)                  # (U, T)
    for user in range(n_users):
        tastes = rng.normal(0.0, 1.0, size=(interests_per_user, dim))          # (m, d)
        slots = rng.integers(0, interests_per_user, size=max_len)             # (T,)
        for t, slot in enumerate(slots):
            members = items_of[interests[user, slot]]
            scores = taste_sharpness * item_vectors[members] @ tastes[slot]
            weights = np.exp(scores - scores.max())
            histories[user, t] = rng.choice(members, p=weights / weights.sum())
    return histories


def make_interest_world(n_users: int = 300, *, n_items: int = 120, n_categories: int = 8,
                        interests_per_user: int = 3, max_len: int = 10,
                        impressions_per_user: int = 50, dim: int = 4,
                        empty_fraction: float = 0.1, interest_fraction: float = 0.6,
                        taste_sharpness: float = 2.0, similarity_strength: float = 1.0,
                        same_category_strength: float = 2.5, random_state=0) -> TaskSplits:
    """Draw impressions whose click depends only on the history of the candidate's category.

    Every item belongs to one of ``n_categories`` categories (each category gets
    ``n_items / n_categories`` items, rounded) and has a hidden vector ``z ~ N(0, I / dim)``,
    so that ``sqrt(dim) <z, z'>`` has variance 1. Each user has ``interests_per_user``
    interest categories and, in each of them, a taste vector ``t ~ N(0, I)``. A user's
    history of ``max_len`` behaviours picks, for every behaviour, one of the user's interest
    categories uniformly and then an item of that category with probability proportional to
    ``exp(taste_sharpness <z_item, t>)``.

    An impression shows the user a candidate and a prefix of the history of length uniform
    in ``0 .. max_len``; ``empty_fraction`` of the impressions see an empty history. The
    candidate's category is one of the user's interests with probability
    ``interest_fraction`` and uniform otherwise; the item is uniform within the category.
    With ``S`` the visible behaviours of the candidate's category, the label is
    ``Bernoulli(sigmoid(logit))`` with::

        logit = b + same_category_strength * [S not empty]
                  + similarity_strength * mean_{s in S} sqrt(dim) <z_candidate, z_s>

    (the mean is 0 when S is empty) and ``b`` centring the median logit at log(0.3 / 0.7).
    Behaviours of other categories do not enter the logit. A model that sums the whole
    history into one vector mixes them in; DIN's attention can pick out S.

    Parameters
    ----------
    n_users, n_items, n_categories : int
        Sizes of the world; ``n_items`` must be at least ``n_categories``.
    interests_per_user : int
        Interest categories per user, at most ``n_categories``.
    max_len : int
        Length of every user's full history, and the padded width ``T``.
    impressions_per_user : int
        Rows per user; the data set has ``n_users * impressions_per_user`` rows, shuffled
        and split 80/10/10 into train, valid and test.
    dim : int
        Size of the hidden item and taste vectors.
    empty_fraction, interest_fraction : float in [0, 1]
    taste_sharpness, similarity_strength, same_category_strength : float >= 0
    random_state : None, int or numpy.random.Generator
        Source of every random choice: items, users, impressions, labels and the split.

    Returns
    -------
    TaskSplits
        Named ``"interest"``. Fields: ``user_id``, ``item_id``, ``category`` (sparse),
        ``hist_item_id`` (sequence, ``vocab_of="item_id"``), ``hist_category`` (sequence,
        ``vocab_of="category"``), both with length key ``hist_length``; padded positions
        hold id 0. Groups are the user ids. ``truth`` contains ``item_category`` (category id
        of every item id, 0 for ids 0 and 1), ``user_interests`` (user id -> list of
        category ids), ``logits`` and ``click_rate`` (dicts by split as in the click
        world), and ``same_category`` (dict split -> (n, max_len) bool mask of the visible
        behaviours whose category is the candidate's).
    """
    n_users = check_positive_int("n_users", n_users)
    n_items = check_positive_int("n_items", n_items)
    n_categories = check_positive_int("n_categories", n_categories)
    interests_per_user = check_positive_int("interests_per_user", interests_per_user)
    max_len = check_positive_int("max_len", max_len)
    impressions_per_user = check_positive_int("impressions_per_user", impressions_per_user)
    dim = check_positive_int("dim", dim)
    empty_fraction = _check_fraction("empty_fraction", empty_fraction)
    interest_fraction = _check_fraction("interest_fraction", interest_fraction)
    taste_sharpness = _check_non_negative("taste_sharpness", taste_sharpness)
    similarity_strength = _check_non_negative("similarity_strength", similarity_strength)
    same_category_strength = _check_non_negative("same_category_strength",
                                                 same_category_strength)
    if interests_per_user > n_categories:
        raise ValueError(f"interests_per_user={interests_per_user} must be at most "
                         f"n_categories={n_categories}")
    if n_items < n_categories:
        raise ValueError(f"n_items={n_items} must be at least n_categories={n_categories}, "
                         "so that every category has an item")
    n_samples = n_users * impressions_per_user
    if n_samples < 10:
        raise ValueError(f"n_users * impressions_per_user must be at least 10 to fill three "
                         f"splits, got {n_samples}")
    rng = check_random_state(random_state)

    # 1. items: balanced categories and hidden vectors
    item_category = rng.permutation(np.arange(n_items) % n_categories)        # (I,)
    item_vectors = rng.normal(0.0, 1.0 / np.sqrt(dim), size=(n_items, dim))   # (I, d)
    items_of = [np.flatnonzero(item_category == c) for c in range(n_categories)]

    # 2. users: interest categories and one full history each
    interests = np.stack([rng.choice(n_categories, size=interests_per_user, replace=False)
                          for _ in range(n_users)])                            # (U, m)
    histories = _draw_histories(rng, interests, items_of, item_vectors, max_len,
                                taste_sharpness)                               # (U, T)

    # 3. impressions: a visible prefix of the history and a candidate
    users = np.repeat(np.arange(n_users), impressions_per_user)               # (n,)
    lengths = rng.integers(0, max_len + 1, size=n_samples)                    # (n,)
    lengths[rng.random(n_samples) < empty_fraction] = 0
    from_interest = rng.random(n_samples) < interest_fraction                 # (n,)
    slots = rng.integers(0, interests_per_user, size=n_samples)
    candidate_category = np.where(from_interest, interests[users, slots],
                                  rng.integers(0, n_categories, size=n_samples))   # (n,)
    candidate = np.array([rng.choice(items_of[c]) for c in candidate_category])    # (n,)

    # 4. the logit reads only the visible behaviours of the candidate's category
    hist_items = histories[users]                                              # (n, T)
    visible = np.arange(max_len)[None, :] < lengths[:, None]                   # (n, T)
    same = visible & (item_category[hist_items] == candidate_category[:, None])    # (n, T)
    n_same = same.sum(axis=1)                                                  # (n,)
    similarity = np.sqrt(dim) * np.einsum("nd,ntd->nt", item_vectors[candidate],
                                          item_vectors[hist_items])            # (n, T)
    mean_similarity = (similarity * same).sum(axis=1) / np.maximum(n_same, 1)  # (n,)
    logits = same_category_strength * (n_same > 0) + similarity_strength * mean_similarity
    logits += np.log(0.3 / 0.7) - np.median(logits)
    labels = (rng.random(n_samples) < sigmoid(logits)).astype(np.float64)
    rows = split_rows(n_samples, rng)

    # 5. ids: users, items and categories start at FIRST_ID, padded positions hold 0
    columns = {
        "user_id": (users + FIRST_ID).astype(np.int64),
        "item_id": (candidate + FIRST_ID).astype(np.int64),
        "category": (candidate_category + FIRST_ID).astype(np.int64),
        "hist_item_id": np.where(visible, hist_items + FIRST_ID, 0).astype(np.int64),
        "hist_category": np.where(visible, item_category[hist_items] + FIRST_ID,
                                  0).astype(np.int64),
        "hist_length": lengths.astype(np.int64),
    }
    schema = Schema([
        Field("user_id", "sparse", vocab_size=n_users + FIRST_ID),
        Field("item_id", "sparse", vocab_size=n_items + FIRST_ID),
        Field("category", "sparse", vocab_size=n_categories + FIRST_ID),
        Field("hist_item_id", "sequence", max_len=max_len, vocab_of="item_id",
              length="hist_length"),
        Field("hist_category", "sequence", max_len=max_len, vocab_of="category",
              length="hist_length"),
    ])
    dataset = Dataset(schema, columns, labels, groups=columns["user_id"].copy())

    item_category_ids = np.zeros(n_items + FIRST_ID, dtype=np.int64)
    item_category_ids[FIRST_ID:] = item_category + FIRST_ID
    truth = {
        "item_category": item_category_ids,
        "user_interests": {user + FIRST_ID: (interests[user] + FIRST_ID).tolist()
                           for user in range(n_users)},
        "logits": {split: logits[index] for split, index in rows.items()},
        "click_rate": {split: float(sigmoid(logits[index]).mean())
                       for split, index in rows.items()},
        "same_category": {split: same[index] for split, index in rows.items()},
    }
    return TaskSplits("interest", dataset.take(rows["train"]), dataset.take(rows["valid"]),
                      dataset.take(rows["test"]), {}, truth)


WORLDS["fields"] = make_field_world
WORLDS["interest"] = make_interest_world
