"""Cost arithmetic against scikit-learn's confusion matrix and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from fnsearch.costs import (
    CostMatrix,
    bayes_threshold,
    bootstrap_ci,
    confusion_counts,
    cost_per_example,
    crossfit_threshold_costs,
    paired_difference,
    savings,
    theory_weight,
    tune_threshold,
)


def constant(n, fn=5.0, fp=1.0, tp=0.0, tn=0.0):
    return CostMatrix(*(np.full(n, float(v)) for v in (fn, fp, tp, tn)))


@pytest.mark.parametrize("kind", ["random", "all_negative", "all_positive", "perfect"])
def test_confusion_counts_match_sklearn(kind):
    """Check that counts equal sklearn's confusion_matrix(labels=[0, 1]), trivial predictors too."""
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.2).astype(int)
    pred = {
        "random": (rng.random(300) < 0.5).astype(int),
        "all_negative": np.zeros(300, int),
        "all_positive": np.ones(300, int),
        "perfect": y,
    }[kind]
    (tn, fp), (fn, tp) = confusion_matrix(y, pred, labels=[0, 1])
    assert confusion_counts(y, pred) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def test_cost_per_example_from_sklearn_counts():
    """Check that constant costs give (5 FN + 1 FP + 0.5 TP) / n from sklearn's counts."""
    rng = np.random.default_rng(2)
    y = (rng.random(500) < 0.3).astype(int)
    pred = (rng.random(500) < 0.4).astype(int)
    (_, fp), (fn, tp) = confusion_matrix(y, pred, labels=[0, 1])
    got = cost_per_example(y, pred, constant(500, tp=0.5))
    assert got == pytest.approx((5 * fn + fp + 0.5 * tp) / 500)


def test_per_example_costs_sum_row_by_row():
    """Check that per-example costs charge each row its own outcome's cost."""
    y = np.array([1, 1, 0, 0])
    pred = np.array([1, 0, 1, 0])
    c = CostMatrix(
        fn=np.array([9.0, 7.0, 1, 1]),
        fp=np.array([1.0, 1, 3, 1]),
        tp=np.array([2.0, 1, 0, 0]),
        tn=np.array([0.0, 0, 0, 0.5]),
    )
    assert cost_per_example(y, pred, c) == pytest.approx((2 + 7 + 3 + 0.5) / 4)


def test_savings_against_trivial_policies():
    """Check savings = 1 - cost / min(all-negative, all-positive) cost."""
    y = np.array([1] * 30 + [0] * 70)
    c = constant(100)
    # all negative costs 5*30/100 = 1.5, all positive 70/100 = 0.7
    assert savings(0.35, y, c) == pytest.approx(0.5)
    assert savings(0.7, y, c) == pytest.approx(0.0)


def test_theory_weight_and_bayes_threshold():
    """Check w* = (C_FN - C_TP)/(C_FP - C_TN) and p* = (C_FP - C_TN)/((C_FP - C_TN) + (C_FN - C_TP))."""
    c = constant(10, fn=5, fp=1.5, tp=1, tn=0.5)
    assert theory_weight(np.zeros(10), c) == pytest.approx(4.0)
    assert bayes_threshold(c) == pytest.approx(np.full(10, 1.0 / 5.0))


def test_tune_threshold_matches_brute_force():
    """Check that the vectorised sweep finds the cost of the best of all thresholds."""
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.25).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1).round(3)  # rounding makes ties
    c = CostMatrix(
        fn=rng.uniform(2, 8, 400), fp=rng.uniform(0.5, 2, 400), tp=np.zeros(400), tn=np.zeros(400)
    )
    t, cost = tune_threshold(y, scores, c)
    candidates = np.concatenate([np.unique(scores), [2.0]])
    brute = min(cost_per_example(y, scores >= s, c) for s in candidates)
    assert cost == pytest.approx(brute)
    assert cost_per_example(y, scores >= t, c) == pytest.approx(cost)


def test_bootstrap_interval_covers_the_mean_and_is_seeded():
    """Check that the interval brackets the mean, narrows with n and repeats with the seed."""
    rng = np.random.default_rng(4)
    small, large = rng.exponential(size=200), rng.exponential(size=5000)
    lo, hi = bootstrap_ci(small, seed=1)
    assert lo < small.mean() < hi
    assert bootstrap_ci(small, seed=1) == (lo, hi)
    lo2, hi2 = bootstrap_ci(large, seed=1)
    assert hi2 - lo2 < hi - lo


def test_crossfit_threshold_scores_each_group_with_the_others_threshold():
    """Check cross-fitted threshold costs against a brute-force loop over held-out groups."""
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.25).astype(int)
    scores = np.clip(0.3 * y + rng.random(400) * 0.7, 0, 1)
    costs = constant(400)
    groups = np.arange(400) % 4
    got = crossfit_threshold_costs(y, scores, costs, groups)
    for g in range(4):
        out = groups != g
        t, _ = tune_threshold(y[out], scores[out], constant(int(out.sum())))
        inside = ~out
        pred = scores[inside] >= t
        want = np.where(y[inside] == 1, np.where(pred, 0.0, 5.0), np.where(pred, 1.0, 0.0))
        np.testing.assert_allclose(got[inside], want)
    # never better than tuning on the very rows it scores (that is the optimism it removes)
    assert got.mean() >= tune_threshold(y, scores, costs)[1] - 1e-12


def test_paired_difference_is_the_bootstrap_of_row_differences():
    """Check that the paired interval is bootstrap_ci of a - b and narrower than unpaired ones."""
    rng = np.random.default_rng(4)
    shared = rng.exponential(size=500)
    a, b = shared + rng.normal(0, 0.05, 500), shared + 0.02 + rng.normal(0, 0.05, 500)
    d = paired_difference(a, b, seed=1)
    assert d["mean"] == pytest.approx(float((a - b).mean()))
    assert d["ci95"] == list(bootstrap_ci(a - b, seed=1))
    unpaired = np.subtract(*bootstrap_ci(a, seed=1)[::-1])
    assert d["ci95"][1] - d["ci95"][0] < unpaired / 5
    assert d["ci95"][1] < 0  # b is 0.02 dearer on every row, and pairing sees it


def test_training_weights_are_cost_proportionate():
    """Check per-sample weights: positives by C_FN - C_TP, negatives by C_FP - C_TN, mean 1."""
    y = np.array([1, 1, 0, 0, 0])
    c = CostMatrix(
        np.array([10.0, 4, 0, 0, 0]),
        np.array([0.0, 0, 1, 2, 3]),
        np.array([2.0, 1, 0, 0, 0]),
        np.array([0.0, 0, 0, 1, 0]),
        per_example=True,
    )
    w = c.training_weights(y)
    raw = np.array([8.0, 3, 1, 1, 3])
    np.testing.assert_allclose(w, raw / raw.mean())
    assert c.take(np.array([0, 2])).per_example
