"""Tests of AUC, log loss, group AUC, RelaImpr and evaluate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.metrics import auc, evaluate, gauc, log_loss, rela_impr


def brute_force_auc(labels, scores):
    """Count every (positive, negative) pair, a tie as one half."""
    positives = [s for y, s in zip(labels, scores) if y == 1]
    negatives = [s for y, s in zip(labels, scores) if y == 0]
    total = 0.0
    for p in positives:
        for n in negatives:
            if p > n:
                total += 1.0
            elif p == n:
                total += 0.5
    return total / (len(positives) * len(negatives))


# ---------------------------------------------------------------- AUC

def test_auc_hand_example():
    # Positives 0.35 and 0.8, negatives 0.1 and 0.4. Pairs: 0.35 > 0.1 yes, 0.35 > 0.4 no,
    # 0.8 beats both: 3 of 4 pairs, AUC = 0.75.
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_auc_hand_example_with_tie():
    # Positives 0.5 and 0.9, negatives 0.2 and 0.5. Pairs: 0.5 > 0.2 (1), 0.5 = 0.5 (1/2),
    # 0.9 beats both (2): 3.5 of 4, AUC = 0.875.
    assert auc([0, 1, 0, 1], [0.2, 0.5, 0.5, 0.9]) == 0.875


@pytest.mark.parametrize("labels", [
    [0, 1], [1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 0, 1], [0, 1, 1, 1, 1, 1, 0],
])
def test_auc_all_equal_scores_is_half(labels):
    assert auc(labels, np.full(len(labels), 0.3)) == 0.5


def test_auc_perfect_and_reversed():
    labels = [0, 0, 1, 1, 1]
    scores = [-2.0, -1.0, 0.5, 3.0, 7.0]
    assert auc(labels, scores) == 1.0
    assert auc(labels, [-s for s in scores]) == 0.0


def test_auc_accepts_booleans_and_logits():
    labels = np.array([False, True, False, True])
    logits = np.array([-3.0, 1.0, 2.0, 5.0])
    # 1 beats -3 only, 5 beats both: 3 of 4.
    assert auc(labels, logits) == 0.75
    assert auc(labels.astype(np.float32), 1 / (1 + np.exp(-logits))) == 0.75


def test_auc_infinite_scores_tie():
    # Positives inf and 0, negatives inf and -inf. Pairs: inf = inf (1/2), inf > -inf (1),
    # 0 < inf (0), 0 > -inf (1): 2.5 of 4 = 0.625.
    assert auc([0, 1, 0, 1], [np.inf, np.inf, -np.inf, 0.0]) == 0.625


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0], []])
def test_auc_one_class_raises(labels):
    with pytest.raises(ValueError, match="both classes"):
        auc(labels, np.zeros(len(labels)))


@pytest.mark.parametrize("labels, scores, match", [
    ([0, 2, 1], [0.1, 0.2, 0.3], "0 or 1"),
    ([0, 0.5, 1], [0.1, 0.2, 0.3], "0 or 1"),
    ([0, np.nan, 1], [0.1, 0.2, 0.3], "0 or 1"),
    ([0, 1, 1], [0.1, 0.2], "shape"),
    ([0, 1, 1], [0.1, np.nan, 0.3], "NaN at index 1"),
    ([[0, 1]], [[0.1, 0.2]], "one-dimensional"),
    (["a", "b"], [0.1, 0.2], "labels"),
])
def test_auc_invalid_input_raises(labels, scores, match):
    with pytest.raises(ValueError, match=match):
        auc(labels, scores)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(-3, 3)), min_size=2, max_size=40)
       .filter(lambda rows: len({y for y, _ in rows}) == 2))
def test_auc_equals_pairwise_count(rows):
    # Scores drawn from seven integers, so ties are frequent.
    labels = [y for y, _ in rows]
    scores = [float(s) for _, s in rows]
    assert auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-15)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(-1e6, 1e6)), min_size=2, max_size=40)
       .filter(lambda rows: len({y for y, _ in rows}) == 2))
def test_auc_equals_pairwise_count_real_scores(rows):
    labels = [y for y, _ in rows]
    scores = [s for _, s in rows]
    assert auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-15)


# ---------------------------------------------------------------- log loss

def test_log_loss_natural_log():
    assert log_loss([1], [0.5]) == pytest.approx(math.log(2), rel=1e-15)
    assert log_loss([0], [0.5]) == pytest.approx(math.log(2), rel=1e-15)


def test_log_loss_hand_example():
    # -(ln 0.8 + ln(1 - 0.4)) / 2 = -(-0.22314 - 0.51083) / 2 = 0.36698...
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(expected, rel=1e-15)


def test_log_loss_finite_at_zero_and_one():
    # p is clipped to [eps, 1 - eps] with eps = 2**-52. A confident wrong prediction costs
    # -ln(eps) = 52 ln 2 = 36.04365...; 1 - (1 - eps) is exactly eps in float64.
    worst = 52 * math.log(2)
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(worst, rel=1e-15)
    best = log_loss([1, 0], [1.0, 0.0])
    assert math.isfinite(best)
    assert 0.0 < best < 1e-15


@pytest.mark.parametrize("labels, probabilities, match", [
    ([0, 1], [-0.1, 0.5], r"\[0, 1\]"),
    ([0, 1], [0.5, 1.5], r"\[0, 1\]"),
    ([0, 1], [0.5, np.nan], "NaN"),
    ([0, 3], [0.5, 0.5], "0 or 1"),
    ([0, 1], [0.5], "shape"),
    ([], [], "at least one row"),
])
def test_log_loss_invalid_input_raises(labels, probabilities, match):
    with pytest.raises(ValueError, match=match):
        log_loss(labels, probabilities)


# ---------------------------------------------------------------- group AUC

def test_gauc_hand_example():
    # User a: labels (1, 0, 0), scores (0.9, 0.2, 0.95): the positive beats 0.2 but not
    #   0.95, so AUC = 0.5 over 3 impressions.
    # User b: labels (0, 1), scores (0.1, 0.3): AUC = 1.0 over 2 impressions.
    # User c: only clicks, left out.
    # GAUC = (3 * 0.5 + 2 * 1.0) / (3 + 2) = 3.5 / 5 = 0.7
    labels = [1, 0, 1, 0, 0, 1, 1]
    scores = [0.9, 0.1, 0.5, 0.2, 0.95, 0.3, 0.6]
    groups = ["a", "b", "c", "a", "a", "b", "c"]
    assert gauc(labels, scores, groups) == pytest.approx(0.7, abs=1e-15)
    assert gauc(labels, scores, [7, 3, 9, 7, 7, 3, 9]) == pytest.approx(0.7, abs=1e-15)


def test_gauc_ties_within_user_only():
    # Equal scores in different users must not tie with each other. User 1: the negative
    # and positive tie at 0.5 (AUC 0.5); user 2: the positive 0.5 beats 0.1 (AUC 1.0).
    labels = [0, 1, 1, 0]
    scores = [0.5, 0.5, 0.5, 0.1]
    groups = [1, 1, 2, 2]
    assert gauc(labels, scores, groups) == pytest.approx(0.75, abs=1e-15)


def test_gauc_no_user_left_raises():
    with pytest.raises(ValueError, match="no group"):
        gauc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], [1, 1, 2, 2])


def test_gauc_groups_shape_raises():
    with pytest.raises(ValueError, match="groups"):
        gauc([1, 0], [0.1, 0.2], [1, 1, 1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(-2, 2), st.integers(0, 4)),
                min_size=1, max_size=50))
def test_gauc_equals_loop_over_users(rows):
    labels = np.array([y for y, _, _ in rows])
    scores = np.array([float(s) for _, s, _ in rows])
    groups = np.array([g for _, _, g in rows])
    weighted, weights = 0.0, 0
    for user in np.unique(groups):
        mask = groups == user
        if len(set(labels[mask])) == 2:
            weighted += mask.sum() * brute_force_auc(labels[mask], scores[mask])
            weights += mask.sum()
    if weights == 0:
        with pytest.raises(ValueError):
            gauc(labels, scores, groups)
    else:
        assert gauc(labels, scores, groups) == pytest.approx(weighted / weights, abs=1e-14)


# ---------------------------------------------------------------- RelaImpr

def test_rela_impr_example():
    # ((0.75 - 0.5) / (0.7 - 0.5) - 1) * 100 = (1.25 - 1) * 100 = 25 percent.
    assert rela_impr(0.75, 0.7) == pytest.approx(25.0, rel=1e-12)
    assert rela_impr(0.7, 0.7) == 0.0
    assert rela_impr(0.6, 0.7) == pytest.approx(-50.0, rel=1e-12)


@pytest.mark.parametrize("auc_model, auc_base, match", [
    (0.7, 0.5, "auc_base"), (0.7, 0.4, "auc_base"), (1.2, 0.7, "auc_model"),
    (0.7, float("nan"), "auc_base"),
])
def test_rela_impr_invalid_raises(auc_model, auc_base, match):
    with pytest.raises(ValueError, match=match):
        rela_impr(auc_model, auc_base)


# ---------------------------------------------------------------- evaluate

def test_evaluate_whole_split():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=300)
    logits = rng.normal(size=300) + labels
    probabilities = 1 / (1 + np.exp(-logits))
    groups = rng.integers(0, 20, size=300)

    result = evaluate(labels, probabilities, groups)

    assert result["auc"] == auc(labels, probabilities)
    assert result["logloss"] == log_loss(labels, probabilities)
    assert result["gauc"] == gauc(labels, probabilities, groups)


def test_evaluate_from_logits():
    labels = np.array([0, 1, 0, 1])
    logits = np.array([-40.0, 40.0, 38.0, 39.0])
    result = evaluate(labels, logits, from_logits=True)
    # sigmoid(38), sigmoid(39) and sigmoid(40) all round to 1.0 in float64, but the AUC
    # ranks the logits: 40 and 39 beat -40, 40 beats 38, 39 beats 38: 4 of 4.
    assert result["auc"] == 1.0
    assert result["logloss"] == pytest.approx(log_loss(labels, 1 / (1 + np.exp(-logits))))
    assert "gauc" not in result


def test_evaluate_without_computable_gauc():
    result = evaluate([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], groups=[1, 2, 3, 4])
    assert set(result) == {"auc", "logloss"}


def test_evaluate_rejects_logits_as_probabilities():
    with pytest.raises(ValueError, match="from_logits"):
        evaluate([0, 1], [-1.0, 2.0])


# ---------------------------------------------------------------- scikit-learn as an oracle

def test_matches_sklearn_on_random_data():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed")
    rng = np.random.default_rng(1)
    for size in (10, 1000):
        labels = rng.integers(0, 2, size=size)
        labels[:2] = [0, 1]
        scores = rng.random(size)
        scores[::7] = np.round(scores[::7], 1)        # some ties
        probabilities = np.concatenate([[0.0, 1.0], rng.random(size - 2)])
        assert auc(labels, scores) == pytest.approx(
            metrics.roc_auc_score(labels, scores), abs=1e-12)
        assert log_loss(labels, probabilities) == pytest.approx(
            metrics.log_loss(labels, probabilities), abs=1e-12)


def test_auc_order_of_rows_irrelevant():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=200)
    scores = rng.integers(0, 10, size=200).astype(float)
    expected = auc(labels, scores)
    for _ in range(3):
        order = rng.permutation(200)
        assert auc(labels[order], scores[order]) == expected
    assert expected == pytest.approx(brute_force_auc(labels, scores), abs=1e-15)
