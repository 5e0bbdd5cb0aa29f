"""Metrics of click-through-rate models: AUC, log loss, group AUC and RelaImpr.

Every metric takes whole-split arrays (all labels and predictions of the validation or test
set at once). Averaging per-batch AUCs is not the AUC of the split, so :func:`evaluate`
always works on the concatenated predictions.

AUC and group AUC count pairs exactly in int64 arithmetic and divide once at the end. They
run in O(n log n) time because they sort the scores once.
"""

from __future__ import annotations

import numpy as np

from .nn.activations import sigmoid


def _check_labels(labels) -> np.ndarray:
    """Return ``labels`` as a 1-D int64 array of 0 and 1, raising ValueError otherwise."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"labels must be 0/1 numbers or booleans, got dtype {y.dtype}")
    invalid = np.flatnonzero(~((y == 0) | (y == 1)))
    if invalid.size:
        index = invalid[0]
        raise ValueError(f"labels must be 0 or 1, got {y[index]!r} at index {index}")
    return y.astype(np.int64)


def _check_scores(scores, n: int, name: str) -> np.ndarray:
    """Return ``scores`` as a float64 array of shape (n,), raising ValueError on NaN."""
    s = np.asarray(scores)
    if not (np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.floating)
            or s.dtype == bool):
        raise ValueError(f"{name} must be numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if s.shape != (n,):
        raise ValueError(f"{name} must have the labels' shape ({n},), got {s.shape}")
    nan = np.flatnonzero(np.isnan(s))
    if nan.size:
        raise ValueError(f"{name} contains NaN at index {nan[0]}")
    return s


def _run_counts(y_sorted: np.ndarray, run_starts: np.ndarray):
    """Return the positives and negatives (runs,) of each run of tied scores.

    ``y_sorted`` contains the labels sorted by score, and each run starts at an index in
    ``run_starts``.
    """
    n = y_sorted.shape[0]
    pos = np.add.reduceat(y_sorted, run_starts)                        # (runs,)
    neg = np.diff(np.r_[run_starts, n]) - pos                          # (runs,)
    return pos, neg


def _twice_correct_pairs(pos, neg, neg_below):
    """Return twice the correctly ordered (positive, negative) pairs of each run.

    A positive beats every negative with a lower score and ties with the negatives of its
    own run, and a tie counts one half: ``2 * pos * neg_below + pos * neg``.
    """
    return 2 * pos * neg_below + pos * neg


def auc(labels, scores) -> float:
    """Area under the ROC curve, by ranks (the Mann-Whitney U statistic).

    AUC is the probability that a random positive scores higher than a random negative::

        AUC = (#{(i, j): y_i = 1, y_j = 0, s_i > s_j}
               + 0.5 * #{(i, j): y_i = 1, y_j = 0, s_i = s_j}) / (n_pos * n_neg)

    A tie counts one half, so equal scores for every row give 0.5 whatever the label order.

    Parameters
    ----------
    labels : array (n,) of 0/1 (or booleans)
    scores : array (n,)
        Any monotone score: logits or probabilities give the same AUC.

    Raises ValueError when only one class is present, labels are not 0/1, shapes differ or
    scores contain NaN.
    """
    y = _check_labels(labels)
    s = _check_scores(scores, y.shape[0], "scores")
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"AUC needs both classes, got {n_pos} positive and {n_neg} negative labels"
        )

    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    y_sorted = y[order]
    run_starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos, neg = _run_counts(y_sorted, run_starts)                       # (runs,)
    neg_below = np.cumsum(neg) - neg                                   # (runs,)
    twice_correct = _twice_correct_pairs(pos, neg, neg_below)          # (runs,)
    return float(twice_correct.sum() / (2.0 * n_pos * n_neg))


def log_loss(labels, probabilities) -> float:
    """Mean binary cross-entropy ``-mean(y log p + (1 - y) log(1 - p))``, natural log.

    Probabilities are converted to float64 and clipped to ``[eps, 1 - eps]`` with
    ``eps = np.finfo(np.float64).eps`` (about 2.2e-16), so predictions of exactly 0 or 1
    give a finite loss (at most ``-log(eps) = 52 ln 2``, about 36.04, per row). The
    scikit-learn documentation of ``log_loss`` (versions 1.2 and 1.3) describes the same
    clipping, with the eps of the input's dtype.

    Raises ValueError for probabilities outside [0, 1] (or NaN), labels other than 0/1,
    different shapes or empty input.
    """
    y = _check_labels(labels)
    p = _check_scores(probabilities, y.shape[0], "probabilities")
    if y.shape[0] == 0:
        raise ValueError("log_loss needs at least one row, got empty arrays")
    outside = np.flatnonzero((p < 0) | (p > 1))
    if outside.size:
        index = outside[0]
        raise ValueError(
            f"probabilities must lie in [0, 1], got {p[index]!r} at index {index}"
        )

    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    losses = np.where(y == 1, -np.log(p), -np.log(1 - p))              # (n,)
    return float(losses.mean())


def _gauc_or_none(labels, scores, groups):
    """Return (GAUC, number of groups used), or (None, 0) when no group has both classes."""
    y = _check_labels(labels)
    n = y.shape[0]
    s = _check_scores(scores, n, "scores")
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have the labels' shape ({n},), got {g.shape}")
    if np.issubdtype(g.dtype, np.floating) and np.isnan(g).any():
        raise ValueError("groups contains NaN")
    if n == 0:
        return None, 0
    _, codes = np.unique(g, return_inverse=True)
    codes = codes.reshape(-1)

    # 1. Sort by group, then by score, and cut runs of equal (group, score).
    order = np.lexsort((s, codes))
    codes_sorted = codes[order]
    s_sorted = s[order]
    y_sorted = y[order]
    new_group = np.r_[True, codes_sorted[1:] != codes_sorted[:-1]]
    new_score = np.r_[True, s_sorted[1:] != s_sorted[:-1]]
    run_starts = np.flatnonzero(new_group | new_score)

    # 2. Count pairs per run. The negatives below a run are counted within its group only.
    pos, neg = _run_counts(y_sorted, run_starts)                       # (runs,)
    run_is_group_start = new_group[run_starts]                         # (runs,)
    group_first_run = np.flatnonzero(run_is_group_start)               # (groups,)
    run_group = np.cumsum(run_is_group_start) - 1                      # (runs,)
    neg_below_all = np.cumsum(neg) - neg                               # (runs,)
    neg_below = neg_below_all - neg_below_all[group_first_run][run_group]
    twice_correct = _twice_correct_pairs(pos, neg, neg_below)          # (runs,)

    # 3. Sum per group, keep groups with both classes, weight each by its row count.
    group_pos = np.add.reduceat(pos, group_first_run)                  # (groups,)
    group_neg = np.add.reduceat(neg, group_first_run)                  # (groups,)
    group_twice_correct = np.add.reduceat(twice_correct, group_first_run)
    usable = (group_pos > 0) & (group_neg > 0)
    if not usable.any():
        return None, 0
    group_pos = group_pos[usable]
    group_neg = group_neg[usable]
    group_auc = group_twice_correct[usable] / (2.0 * group_pos * group_neg)
    impressions = (group_pos + group_neg).astype(np.float64)
    return float(np.sum(impressions * group_auc) / impressions.sum()), int(usable.sum())


def gauc(labels, scores, groups) -> float:
    """Group AUC: the AUC of each user, weighted by the user's number of impressions.

    ``GAUC = sum_u n_u * AUC_u / sum_u n_u`` over the users ``u`` whose rows contain both a
    click and a non-click. Users with one class only have no AUC and are left out. The
    definition follows "Deep Interest Network for Click-Through Rate Prediction" (Zhou et
    al., 2018), with impressions as the weight.

    Parameters
    ----------
    labels, scores : arrays (n,)
    groups : array (n,)
        The user (any sortable id) of each row.

    Raises ValueError when no user has both classes, and for the input errors of :func:`auc`.
    """
    value, _ = _gauc_or_none(labels, scores, groups)
    if value is None:
        raise ValueError(
            "GAUC is undefined: no group has both a positive and a negative label"
        )
    return value


def rela_impr(auc_model: float, auc_base: float) -> float:
    """RelaImpr in percent: ``((auc_model - 0.5) / (auc_base - 0.5) - 1) * 100``.

    It measures the improvement of a model over a base model relative to a random guesser
    (AUC 0.5), as defined in "Deep Interest Network for Click-Through Rate Prediction"
    (Zhou et al., 2018). Raises ValueError when ``auc_base <= 0.5`` (a base no better than
    random leaves it undefined) or an AUC lies outside [0, 1].
    """
    for name, value in (("auc_model", auc_model), ("auc_base", auc_base)):
        if not (0.0 <= float(value) <= 1.0):
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    if auc_base <= 0.5:
        raise ValueError(f"auc_base must be greater than 0.5, got {auc_base!r}")
    return float(((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0)


def evaluate(labels, predictions, groups=None, *, from_logits: bool = False) -> dict:
    """Compute AUC, log loss and, when possible, GAUC over a whole split.

    Parameters
    ----------
    labels : array (n,) of 0/1
    predictions : array (n,)
        Click probabilities, or logits when ``from_logits=True``.
    groups : array (n,), optional
        The user of each row. ``"gauc"`` is included when groups are given and at least
        one user has both classes.
    from_logits : bool
        If true, the log loss uses ``sigmoid(predictions)`` and AUC ranks the logits
        themselves (a sigmoid rounds large logits to 1.0 and would create ties).

    Returns a dict with ``"auc"``, ``"logloss"`` and possibly ``"gauc"``.
    """
    y = _check_labels(labels)
    scores = _check_scores(predictions, y.shape[0], "predictions")
    if from_logits:
        probabilities = sigmoid(scores)
    else:
        probabilities = scores
        if np.any((scores < 0) | (scores > 1)):
            raise ValueError(
                "predictions must be probabilities in [0, 1]; "
                "pass from_logits=True for logits"
            )
    result = {"auc": auc(y, scores), "logloss": log_loss(y, probabilities)}
    if groups is not None:
        value, _ = _gauc_or_none(y, scores, groups)
        if value is not None:
            result["gauc"] = value
    return result
